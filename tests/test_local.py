"The local pool without the real models: weight assembly and pinning, ports, server lifecycle and reuse (with a stand-in server), the balancer, record."
import hashlib, json, os, socket, sys, textwrap
from pathlib import Path
import pytest
from conftest import ROOT, run_bamas
from bamas_nb.core import BamasError, load_pool
from bamas_nb import servers as S
from bamas_nb.weights import LOCAL_MODELS, LocalModel, weight_parts, assemble_weights, verified_weights, gguf_counter_for, models_dir, GGUFTokenCounter
from bamas_nb.balancer import Balancer
from bamas_nb.servers import serve_local, port_is_free, served_models, local_servers
from bamas_nb.record import record

FAKE = ROOT/'benchmarks'/'fake_openai_server.py'

@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    "Logs and models go to a temporary cache directory."
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache')); monkeypatch.delenv('BAMAS_MODELS', raising=False)

@pytest.fixture
def tiny(tmp_path, monkeypatch):
    "A stand-in model whose three parts live in packages on sys.path, like the real ones."
    parts = [os.urandom(5000), os.urandom(3000), b'tail']
    for i, data in enumerate(parts, 1):
        d = tmp_path/'site'/f'tiny_test_part{i}'/'data'; d.mkdir(parents=True)
        (d.parent/'__init__.py').write_text(''); (d/f'part{i:02d}.bin').write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path/'site'))
    whole = b''.join(parts)
    return LocalModel('tiny', 'tiny-alias', 'stand-in', 'tiny-test-part', 3, len(whole), hashlib.sha256(whole).hexdigest(), 8099), whole

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def fake_command(gguf, alias, port, threads, n_ctx, extra=()):
    return [sys.executable, str(FAKE), '--port', str(port), '--model-id', alias, *extra]

def test_pinned_models_match_the_pool_file():
    pool = load_pool(ROOT/'data/pools/local.yaml')
    assert sorted(pool.names) == sorted(LOCAL_MODELS)
    for l in pool:
        m = LOCAL_MODELS[l.name]
        assert (l.model, l.api_base) == (m.model, f'http://127.0.0.1:{m.port}/v1')
        assert len(m.sha256) == 64 and int(m.sha256, 16) and m.size > 100_000_000
    assert LOCAL_MODELS['qwen-1.5b'].parts == 22 and LOCAL_MODELS['qwen-0.5b'].parts == 6

def test_assemble_verifies_and_caches(tiny, tmp_path):
    spec, whole = tiny
    p = assemble_weights(spec, tmp_path/'models')
    assert p.read_bytes() == whole and verified_weights(spec, tmp_path/'models') == p
    mtime = p.stat().st_mtime_ns
    assert assemble_weights(spec, tmp_path/'models') == p and p.stat().st_mtime_ns == mtime   # not rebuilt

def test_a_damaged_file_is_rebuilt(tiny, tmp_path):
    spec, whole = tiny
    p = assemble_weights(spec, tmp_path/'models')
    p.write_bytes(b'x' + whole[1:])
    assert verified_weights(spec, tmp_path/'models') is None
    assert assemble_weights(spec, tmp_path/'models').read_bytes() == whole

def test_hash_mismatch_is_refused_and_leaves_nothing(tiny, tmp_path):
    spec, _ = tiny
    bad = LocalModel(**{**spec.__dict__, 'sha256': 'f'*64})
    with pytest.raises(BamasError, match='are not the expected ones'): assemble_weights(bad, tmp_path/'m')
    assert list((tmp_path/'m').iterdir()) == []

def test_missing_packages_are_named_with_the_fix(tiny):
    spec, _ = tiny
    more = LocalModel(**{**spec.__dict__, 'parts': 8})
    with pytest.raises(BamasError, match=r'tiny-test-part4, tiny-test-part5, tiny-test-part6 and 2 more, which are not installed; install the local extra: CMAKE_ARGS="-DGGML_NATIVE=OFF"'):
        weight_parts(more)

def test_models_dir_env(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv('BAMAS_MODELS', str(tmp_path/'elsewhere'))
    spec, whole = tiny
    assert models_dir() == tmp_path/'elsewhere' and assemble_weights(spec).parent == tmp_path/'elsewhere'

def test_no_counter_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv('BAMAS_MODELS', str(tmp_path/'empty'))
    assert gguf_counter_for('openai/gpt-4.1-nano') is None
    assert gguf_counter_for(LOCAL_MODELS['qwen-0.5b'].model) is None

def test_serve_lifecycle_with_a_stand_in_server():
    port = free_port()
    lp = serve_local(['qwen-0.5b'], ports={'qwen-0.5b': port}, gguf={'qwen-0.5b': 'unused.gguf'}, command=fake_command)
    with lp:
        assert lp.endpoints == {'qwen-0.5b': f'http://127.0.0.1:{port}/v1'}
        assert served_models(lp.endpoints['qwen-0.5b']) == ['qwen2.5-coder-0.5b-instruct']
        assert lp.pool()['qwen-0.5b'].api_base == f'http://127.0.0.1:{port}/v1' and lp.pool().names == ['qwen-0.5b']
        proc = lp.servers[0].proc
        assert proc.poll() is None and not port_is_free(port)
    assert proc.poll() is not None and port_is_free(port)

def test_reuse_keeps_a_running_server(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('fake_openai_server', FAKE); fake = importlib.util.module_from_spec(spec); spec.loader.exec_module(fake)
    port = free_port()
    with fake.FakeOpenAIServer(port=port, model_id='qwen2.5-coder-0.5b-instruct') as srv:
        with pytest.raises(BamasError, match=f'port {port} for qwen-0.5b is busy \\(a server for qwen2.5-coder-0.5b-instruct answers there\\)'):
            serve_local(['qwen-0.5b'], ports={'qwen-0.5b': port}, command=fake_command).start()
        with serve_local(['qwen-0.5b'], ports={'qwen-0.5b': port}, reuse=True, command=fake_command) as lp:
            assert lp.servers[0].reused and lp.servers[0].proc is None
        assert served_models(srv.api_base) == ['qwen2.5-coder-0.5b-instruct']    # still running
        assert srv.stats()['requests'] == 0                                        # no warm-up on a reused server

def test_a_server_that_dies_is_reported_with_its_log():
    def dying(gguf, alias, port, threads, n_ctx): return [sys.executable, '-c', 'import sys; print("cannot load model"); sys.exit(3)']
    with pytest.raises(BamasError, match=r'(?s)exited with status 3 while starting.*cannot load model'):
        serve_local(['qwen-0.5b'], ports={'qwen-0.5b': free_port()}, gguf={'qwen-0.5b': 'x.gguf'}, command=dying).start()

def test_a_failed_first_request_stops_everything():
    p1, p2 = free_port(), free_port()
    def cmd(gguf, alias, port, threads, n_ctx): return fake_command(gguf, alias, port, threads, n_ctx, ['--faults', '500'] if port == p2 else [])
    lp = serve_local(['qwen-1.5b', 'qwen-0.5b'], ports={'qwen-1.5b': p1, 'qwen-0.5b': p2}, gguf={'qwen-1.5b': 'a', 'qwen-0.5b': 'b'}, command=cmd)
    with pytest.raises(BamasError, match='the server for qwen-0.5b failed its first request'): lp.start()
    assert all(s.proc is None for s in lp.servers) and port_is_free(p1) and port_is_free(p2)

def test_missing_engine_names_the_fix(monkeypatch):
    real = S.importlib.util.find_spec
    monkeypatch.setattr(S.importlib.util, 'find_spec', lambda n, *a: None if n == 'llama_cpp' else real(n, *a))
    with pytest.raises(BamasError, match=r"llama-cpp-python's server is not installed \(missing llama_cpp[^)]*\); install the local extra"):
        serve_local(['qwen-0.5b'], ports={'qwen-0.5b': free_port()}).start()

def test_unknown_names_and_options():
    with pytest.raises(BamasError, match='unknown local model'): serve_local(['qwen-7b'])
    with pytest.raises(BamasError, match='ports/gguf given for qwen-1.5b, which is not served'): serve_local(['qwen-0.5b'], ports={'qwen-1.5b': 1})
    with pytest.raises(BamasError, match=r'threads must be a whole number ≥ 1, got 0'): serve_local(['qwen-0.5b'], threads=0)

def test_servers_share_the_cores_by_default():
    "Two servers never ask for more threads together than the machine has cores (unless there is 1 core)."
    cores = len(os.sched_getaffinity(0))
    two, one = serve_local(), serve_local(['qwen-0.5b'])
    assert [s.threads for s in two.servers] == [max(1, cores // 2)] * 2 and one.servers[0].threads == cores
    assert serve_local(threads=3).servers[0].threads == 3

def test_cli_serve_local_errors():
    rc, out, err = run_bamas('serve-local', '--only', 'qwen-0.5b', '--port', 'qwen-0.5b=abc')
    assert rc == 2 and 'expects NAME=PORT with a number' in err
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); s.listen(); port = s.getsockname()[1]
        rc, out, err = run_bamas('serve-local', '--only', 'qwen-0.5b', '--port', f'qwen-0.5b={port}', '--json')
    assert rc == 2 and f'port {port} for qwen-0.5b is busy' in json.loads(out)['error']

def test_local_servers_of_a_pool():
    "The pool's local models on loopback ports: none for an API pool; to be started where nothing answers."
    from dataclasses import replace
    from bamas_nb.core import Pool
    local = load_pool(ROOT/'data/pools/local.yaml')
    assert local_servers(load_pool(ROOT/'data/pools/paper.yaml')) is None
    assert local_servers(Pool(tuple(replace(l, api_base='https://api.example.com/v1') for l in local), source='test')) is None
    ports = {'qwen-1.5b': free_port(), 'qwen-0.5b': free_port()}
    ls = local_servers(Pool(tuple(replace(l, api_base=f"http://127.0.0.1:{ports[l.name]}/v1") for l in local), source='test'))
    assert ls.reused == [] and ls.started == ['qwen-1.5b', 'qwen-0.5b'] and [s.port for s in ls.pool.servers] == list(ports.values())
    assert ls.pool.reuse is True

def test_local_servers_refuse_a_stranger_on_the_port(tmp_path):
    from dataclasses import replace
    from bamas_nb.core import Pool
    from fake_openai_server import FakeOpenAIServer
    local = load_pool(ROOT/'data/pools/local.yaml')
    with FakeOpenAIServer(in_process=True, model_id='another-model') as other:
        pool = Pool(tuple(replace(l, api_base=other.api_base) for l in local if l.name == 'qwen-0.5b'), source='test')
        with pytest.raises(BamasError, match=f'port {other.port} for qwen-0.5b is busy \\(a server for another-model answers there\\)'):
            local_servers(pool, patience=5)

def _stats(port) -> dict:
    with S.urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/stats", timeout=10) as r: return json.loads(r.read())

def test_replicas_behind_a_balancer_share_the_calls():
    "Two stand-in replicas of qwen-1.5b behind its port: concurrent metered calls reach both, and everything stops after."
    from concurrent.futures import ThreadPoolExecutor
    from bamas_nb.meter import Meter
    port = free_port()
    def slow(gguf, alias, port, threads, n_ctx): return fake_command(gguf, alias, port, threads, n_ctx, ['--latency', '0.3'])
    lp = serve_local(['qwen-1.5b'], ports={'qwen-1.5b': port}, gguf={'qwen-1.5b': 'a.gguf'}, replicas={'qwen-1.5b': 2}, command=slow)
    assert [s.port for s in lp.servers] == [port + 1000, port + 2000]
    with lp:
        assert lp.endpoints == {'qwen-1.5b': f'http://127.0.0.1:{port}/v1'} and served_models(lp.endpoints['qwen-1.5b']) == ['qwen2.5-coder-1.5b-instruct']
        llm = lp.pool()['qwen-1.5b']
        with ThreadPoolExecutor(4) as ex: replies = list(ex.map(lambda i: Meter(2000, cache=None).call(llm, f'question {i}'), range(4)))
        assert all(r.ok and r.usage.completion_tokens > 0 for r in replies)
        assert [_stats(s.port)['requests'] for s in lp.servers] == [3, 3]          # warm-up + 2 calls each
        body = json.dumps({'model': 'x', 'messages': [{'role': 'user', 'content': 'hi'}], 'max_tokens': 4, 'stream': True}).encode()
        req = S.urllib.request.Request(f"{llm.api_base}/chat/completions", data=body, headers={'Content-Type': 'application/json'})
        with S.urllib.request.urlopen(req, timeout=10) as r: streamed = r.read().decode()
        assert streamed.count('data: ') >= 2 and streamed.rstrip().endswith('data: [DONE]')   # a stream passes through whole
        procs = [s.proc for s in lp.servers]
    assert all(p.poll() is not None for p in procs) and all(port_is_free(q) for q in (port, port + 1000, port + 2000))

def test_a_replica_that_is_gone_gets_a_502_naming_it():
    from fake_openai_server import FakeOpenAIServer
    dead = free_port()
    with FakeOpenAIServer(in_process=True) as live, Balancer(free_port(), [live.api_base[:-3], f'http://127.0.0.1:{dead}'], name='m') as bal:
        assert served_models(bal.api_base) == ['fake']                                          # the live one's turn
        req = S.urllib.request.Request(f"{bal.api_base}/models")
        with pytest.raises(S.urllib.error.HTTPError) as e: S.urllib.request.urlopen(req, timeout=10)   # the dead one's turn
        assert e.value.code == 502 and f'balancer for m: backend http://127.0.0.1:{dead} failed' in e.value.read().decode()
    assert port_is_free(bal.port)

def test_cli_replicas_errors():
    rc, out, err = run_bamas('serve-local', '--replicas', 'qwen-1.5b=two')
    assert rc == 2 and '--replicas expects NAME=N with a whole number, got qwen-1.5b=two' in err
    rc, out, err = run_bamas('serve-local', '--only', 'qwen-0.5b', '--replicas', 'qwen-1.5b=2', '--json')
    assert rc == 2 and 'replicas given for qwen-1.5b, which is not served' in json.loads(out)['error']

TARGET = '''
import sys
sys.path.insert(0, {bench!r})
from fake_openai_server import FakeOpenAIServer
from bamas_nb.core import LLM
from bamas_nb.stores import recording
from bamas_nb.meter import Meter
def test_calls():
    with FakeOpenAIServer(in_process=True) as s:
        llm = LLM('f', 'openai/fake', 1, 0.1, 0.4, 8, s.api_base)
        m = Meter(100, cache=recording('test_rec_target'))
        assert all(m.call(llm, q).ok for q in {questions!r})
    assert {fail!r} is False
'''

def test_record_refreshes_a_recording(tmp_path, monkeypatch):
    monkeypatch.setenv('BAMAS_RECORDINGS', str(tmp_path/'recs'))
    t = tmp_path/'test_rec_target.py'
    t.write_text(TARGET.format(bench=str(ROOT/'benchmarks'), questions=['b', 'a', 'c'], fail=False))
    [res] = record([t], fresh=True, serve=False)
    rec = tmp_path/'recs'/'test_rec_target.jsonl'
    assert (res['answers_before'], res['answers_after'], res['recording']) == (0, 3, 'data/recordings/test_rec_target.jsonl')
    keys = [json.loads(l)['key'] for l in rec.read_text().splitlines()]
    assert keys == sorted(keys)                                               # tidied
    t.write_text(TARGET.format(bench=str(ROOT/'benchmarks'), questions=['a'], fail=False))
    assert record([t], fresh=True, serve=False)[0]['answers_after'] == 1      # --fresh drops answers no longer asked for
    before = rec.read_text()
    t.write_text(TARGET.format(bench=str(ROOT/'benchmarks'), questions=['z'], fail=True))
    with pytest.raises(BamasError, match='failed while recording \\(its recording is unchanged; the 1 answers of this attempt are kept'):
        record([t], fresh=True, serve=False)
    part = tmp_path/'recs'/'test_rec_target.jsonl.partial'
    assert rec.read_text() == before and not (tmp_path/'recs'/'test_rec_target.jsonl.bak').exists()
    assert [json.loads(l)['messages'][-1]['content'] for l in part.read_text().splitlines()] == ['z']    # kept
    t.write_text(TARGET.format(bench=str(ROOT/'benchmarks'), questions=['z'], fail=False))
    assert record([t], fresh=True, serve=False)[0]['answers_after'] == 1 and not part.exists()   # used, then removed

def test_a_failed_first_recording_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv('BAMAS_RECORDINGS', str(tmp_path/'recs'))
    t = tmp_path/'test_rec_target.py'
    t.write_text(TARGET.format(bench=str(ROOT/'benchmarks'), questions=['a'], fail=True))
    for fresh in (False, True):
        with pytest.raises(BamasError, match='failed while recording'): record([t], fresh=fresh, serve=False)
        assert not (tmp_path/'recs'/'test_rec_target.jsonl').exists()

def test_record_rejects_other_files(tmp_path):
    (tmp_path/'notes.txt').write_text('x')
    with pytest.raises(BamasError, match='not a notebook'): record([tmp_path/'notes.txt'], serve=False)

def test_token_counters_load_one_at_a_time(tmp_path, monkeypatch):
    # llama-cpp-python points fds 1 and 2 at /dev/null while it loads a model; two loads at once can leave stdout
    # there for good. Every counter load takes one lock: however many threads load, the loads never overlap.
    # A stand-in llama_cpp module does the same fd swap, so that this runs without llama-cpp-python too.
    import threading, time, types
    state, lock = {'now': 0, 'most': 0}, threading.Lock()
    class SlowLoad:
        def __init__(self, path, **kw):
            saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)                                     # what the real constructor does around its C calls
            try:
                with lock: state['now'] += 1; state['most'] = max(state['most'], state['now'])
                time.sleep(0.1)
                with lock: state['now'] -= 1
            finally: os.dup2(saved, 1); os.close(saved); os.close(null)
            self.metadata = {}                                  # no chat template: the counter then refuses the file
        def close(self): pass
    fake = types.ModuleType('llama_cpp'); fake.Llama = SlowLoad
    fake.llama_chat_format = types.ModuleType('llama_cpp.llama_chat_format')
    monkeypatch.setitem(sys.modules, 'llama_cpp', fake)
    monkeypatch.setitem(sys.modules, 'llama_cpp.llama_chat_format', fake.llama_chat_format)
    stdout_before = os.fstat(1)
    counters = [GGUFTokenCounter(tmp_path/f'm{i}.gguf') for i in range(4)]
    errors, start = [], threading.Barrier(4)
    def count(c):
        start.wait()
        try: c([{'role': 'user', 'content': 'hi'}])
        except BamasError as e: errors.append(str(e))
    ts = [threading.Thread(target=count, args=(c,)) for c in counters]
    for t in ts: t.start()
    for t in ts: t.join()
    assert state['most'] == 1 and len(errors) == 4 and all('no chat template' in e for e in errors)
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (stdout_before.st_dev, stdout_before.st_ino)   # stdout is where it was
