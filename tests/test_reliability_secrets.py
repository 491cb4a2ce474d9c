"""Secrets: API keys from the environment never end up in traces, caches, experience tables, recordings or logs.

Fake keys are planted in the environment, and a pool has one model behind an address that does not look local
(`127.1`, which is 127.0.0.1), so litellm really sends `OPENAI_API_KEY` to the fake server — which sometimes answers
401 with the key repeated in its error message, as careless providers do. The call, generate and record paths then
run (the command line — once as the installed script, otherwise in this process — and the Python API), and every
file they wrote, plus what they printed, is searched for the keys. The test also checks that the key did travel and come back, so an empty search means something."""
import json, secrets
from pathlib import Path
import pandas as pd, pyarrow.parquet as pq
import pytest, yaml
from fake_openai_server import FakeOpenAIServer
from reliability_helpers import MATH_REPLY, cli_env, run_cli
from bamas_nb.core import load_pool
from bamas_nb.provider import RetryPolicy
from bamas_nb.stores import CallCache, recording
from bamas_nb.meter import Meter

OPENAI_KEY = f'sk-test-PLANTED-{secrets.token_hex(12)}'
OTHER_KEY = f'PLANTED-deepseek-{secrets.token_hex(8)}'          # no known key shape: only its value gives it away
KEYS = {'OPENAI_API_KEY': OPENAI_KEY, 'DEEPSEEK_API_KEY': OTHER_KEY}
LEAKS = [k.encode() for k in KEYS.values()] + [OPENAI_KEY[-16:].encode(), OTHER_KEY[-12:].encode()]   # whole or in part

def pool_file(path, port) -> Path:
    llms = [dict(name='remote', model='openai/fake-remote', api_base=f'http://127.1:{port}/v1', tier=1, in_price=0.27, out_price=1.10, max_tokens=64),
            dict(name='local', model='openai/fake-local', api_base=f'http://127.0.0.1:{port}/v1', tier=2, in_price=0.10, out_price=0.40, max_tokens=64)]
    path.write_text(yaml.safe_dump({'llms': llms})); return path

def leaks_in(root:Path, texts=()) -> list[str]:
    "Every file under `root` (and every text in `texts`) that holds a planted key; Parquet is searched decoded as well."
    found = []
    for p in sorted(root.rglob('*')):
        if not p.is_file(): continue
        blobs = [p.read_bytes()]
        if p.suffix == '.parquet': blobs.append(pq.read_table(p).to_pandas().to_json().encode())
        if any(k in b for b in blobs for k in LEAKS): found.append(str(p.relative_to(root)))
    return found + [f'printed output #{i}' for i, t in enumerate(texts) if any(k in t.encode() for k in LEAKS)]

def test_planted_keys_never_reach_any_artifact(tmp_path, bamas):
    env = {**cli_env(tmp_path, BAMAS_ATTEMPTS=2, BAMAS_RECORDINGS=tmp_path/'recordings'), **KEYS}
    printed = []
    with FakeOpenAIServer(completion_tokens=24, text=MATH_REPLY, fault_rate=0.3, fault_mix=['echo-auth', '500', 'max-garbage'], seed=5) as srv:
        pool = pool_file(tmp_path/'pool.yaml', srv.port)
        (tmp_path/'prompt.txt').write_text('What is 6 times 7?')
        # 1. bamas call: an answer recorded to a recording, then a call whose 401 repeats the key
        srv.set_faults([], fault_rate=0)
        call = ['call', '--pool', pool, '--llm', 'remote', '--budget', 1000, '--prompt-file', tmp_path/'prompt.txt', '--json']
        rc, out, err = run_cli(*call, '--cache-file', tmp_path/'recordings'/'call.jsonl', '--cache', 'rw', env=env); printed += [out, err]
        assert rc == 0, err
        srv.set_faults(['echo-auth'], reset_count=False, fault_rate=0)
        (tmp_path/'prompt.txt').write_text('What is 6 times 8?')
        rc, out, err = run_cli(*call, env=env); printed += [out, err]
        assert rc == 2 and 'AuthenticationError' in out and '[redacted]' in out, out       # the key came back, and was blanked
        # 2. bamas generate, math and code, with faults (keys echoed in errors) among the calls
        srv.set_faults([], reset_count=False, fault_rate=0.3)
        gen = ['generate', '--pool', pool, '--dataset', 'mini-math', '--n', 2, '--budgets', '1250,2000', '--out', tmp_path/'exp-math', '--json']
        rc, out, err = bamas(*gen, env=env); printed += [out, err]
        assert rc == 0, err
        # model-written code that prints the whole environment, graded in the sandbox
        srv.set_faults([], reset_count=False, fault_rate=0, text="```python\nimport os\nprint(dict(os.environ))\nraise SystemExit(repr(dict(os.environ)))\n```")
        rc, out, err = run_cli('generate', '--pool', pool, '--dataset', 'mini-code', '--n', 1, '--budgets', 1250, '--topologies', 'linear',
                             '--out', tmp_path/'exp-code', '--json', env=env); printed += [out, err]
        assert rc == 0, err
        # 3. the Python API: a recording with BAMAS_RECORD=1, the call cache, a failing remote call
        with pytest.MonkeyPatch.context() as mp:
            for k, v in {**env, 'BAMAS_RECORD': '1'}.items(): mp.setenv(k, str(v))
            llms = load_pool(pool)
            srv.set_faults(['echo-auth', 'echo-auth'], reset_count=False, text=MATH_REPLY)
            m = Meter(1e4, cache=[recording('api-record'), CallCache()], retry=RetryPolicy(1))
            replies = [m.call(llms['remote'], 'one'), m.call(llms['local'], 'two'), m.call(llms['remote'], 'three')]
            printed += [json.dumps([r.to_dict() for r in replies])]
        st = srv.stats()
    assert f'Bearer {OPENAI_KEY}' in st['auth'] and st['injected'].get('echo-auth', 0) >= 3   # the key was sent and echoed back
    assert not any('PLANTED' in a for a in st['auth'] if a != f'Bearer {OPENAI_KEY}')        # and only to the remote model
    assert any('failed: AuthenticationError' in line for p in (tmp_path/'exp-math'/'traces').glob('*.jsonl') for line in p.read_text().splitlines())
    written = [p for p in tmp_path.rglob('*') if p.is_file()]
    kinds = {p.suffix for p in written}
    assert {'.parquet', '.jsonl', '.sqlite'} <= kinds, kinds                                    # tables, traces, recordings, caches
    assert (tmp_path/'recordings'/'call.jsonl').exists() and (tmp_path/'recordings'/'api-record.jsonl').exists()
    assert leaks_in(tmp_path, printed) == []

def test_the_search_finds_a_planted_key(tmp_path):
    "The search itself works: a key written anywhere — plain, in an sqlite page, inside a Parquet column — is found."
    (tmp_path/'a.log').write_text(f'oops {OPENAI_KEY}')
    (tmp_path/'b.txt').write_text('clean')
    pd.DataFrame({'reason': [f'echo {OTHER_KEY}']*50}).to_parquet(tmp_path/'c.parquet')
    CallCache(tmp_path/'d.sqlite', 'rw').put({'key': 'k', 'model': 'm', 'response': {'text': OPENAI_KEY[-16:]}})
    found = leaks_in(tmp_path)
    assert found[:2] == ['a.log', 'c.parquet'] and found[2:] and all(f.startswith('d.sqlite') for f in found[2:]), found
