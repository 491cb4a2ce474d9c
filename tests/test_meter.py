"The call layer against a fake OpenAI-compatible server: metering, the budget guarantee, retries, cache, recordings, CLI."
import asyncio, importlib.util, json, os, sys, threading, time, warnings
from dataclasses import replace
from pathlib import Path
import pytest
from conftest import ROOT, run_bamas
from bamas_nb.core import LLM, Usage, call_cost, save_pool, Pool
from bamas_nb.provider import RetryPolicy, ByteBound, as_messages, request_key, sampling_params, prompt_bound, completion_kwargs
from bamas_nb.stores import NotRecorded, CallCache, Recording, StoreChain, recording
from bamas_nb.meter import Meter, BudgetExhausted, exact_cost

_spec = importlib.util.spec_from_file_location('fake_openai_server', ROOT/'benchmarks'/'fake_openai_server.py')
fake = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(fake)
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)

@pytest.fixture
def server():
    with fake.FakeOpenAIServer(in_process=True) as s: yield s

def llm_at(srv, **kw) -> LLM:
    return LLM(**{'name': 'fake', 'model': 'openai/fake', 'tier': 2, 'in_price': 0.1, 'out_price': 0.4, 'max_tokens': 64,
                  'api_base': srv.api_base, **kw})

def test_call_is_metered_from_provider_usage(server):
    llm = llm_at(server)
    m = Meter(1000, cache=None)
    r = m.call(llm, 'hello there', max_tokens=16)
    assert r.ok and r.text.split() == ['tok']*16 and r.finish_reason == 'length'
    pt = fake._prompt_tokens(as_messages('hello there'))
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (pt, 16)
    assert r.cost == pytest.approx(call_cost(llm, pt, 16))
    assert r.reserved == pytest.approx(call_cost(llm, ByteBound()(as_messages('hello there')), 16))
    assert (r.prompt_bound, r.bound_method, r.attempts) == (ByteBound()(as_messages('hello there')), 'bytes', 1)
    assert m.spent == pytest.approx(r.cost) and m.held == 0 and m.log == [r]

def test_refusal_sends_nothing(server):
    llm = llm_at(server)
    m = Meter(5, cache=None)
    with pytest.raises(BudgetExhausted) as e: m.call(llm, 'hi')
    assert e.value.needed > 5 and e.value.spent == 0 and e.value.reservation.llm == llm
    assert server.stats()['requests'] == 0 and (m.spent, m.held, len(m.refused)) == (0, 0, 1)

def test_sequential_calls_stop_exactly_when_the_worst_case_no_longer_fits(server):
    llm = llm_at(server)
    worst = Meter(1, cache=None).quote(llm, 'q', max_tokens=16).cost
    m = Meter(3.5*worst, cache=None)
    made = 0
    with pytest.raises(BudgetExhausted):
        while True: m.call(llm, 'q', max_tokens=16); made += 1
    # actual calls cost less than their worst case, so more than 3 fit, but never more than the budget allows
    assert made >= 3 and m.spent <= m.budget and m.spent + worst > m.budget

@pytest.mark.parametrize('faults,ok,attempts', [([429, 500], True, 3), ([503]*5, False, 3), ([400], False, 1),
                                                 (['drop'], True, 2), (['garbage'], True, 2)])
def test_retries(server, faults, ok, attempts):
    m = Meter(1000, cache=None, retry=FAST)
    server.set_faults(faults)
    r = m.call(llm_at(server), 'x', max_tokens=4)
    assert (r.ok, r.attempts) == (ok, attempts)
    assert server.stats()['requests'] == attempts       # litellm's and openai's own retries are off
    assert m.held == 0
    if not ok: assert r.text is None and r.cost == 0 and m.spent == 0 and r.error and m.log[-1] is r

def test_timeout_is_retried(server):
    m = Meter(1000, cache=None, retry=FAST, timeout=1)
    server.set_faults(['hang'])
    t0 = time.monotonic(); r = m.call(llm_at(server), 'x', max_tokens=4)
    assert r.ok and r.attempts == 2 and 1 <= time.monotonic() - t0 < 10

def test_failure_error_is_one_clean_line(server):
    server.set_faults([503]*3)
    r = Meter(1000, cache=None, retry=FAST).call(llm_at(server), 'x', max_tokens=4)
    assert r.error.startswith('ServiceUnavailableError: ') and 'litellm.' not in r.error and '\n' not in r.error

def test_missing_usage_is_charged_the_reservation_and_not_cached(server, tmp_path):
    cache = CallCache(tmp_path/'c.sqlite', 'rw')
    m = Meter(1000, cache=cache)
    server.set_faults(['no-usage'])
    r = m.call(llm_at(server), 'x', max_tokens=8)
    assert r.ok and not r.usage_reported and r.cost == pytest.approx(r.reserved) and len(cache) == 0

def test_over_reporting_provider_is_flagged(server):
    server.set_faults([], prompt_tokens=100_000)
    m = Meter(1e9, cache=None)
    with pytest.warns(UserWarning, match='more than the'): r = m.call(llm_at(server), 'x', max_tokens=4)
    assert len(m.violations) == 1 and m.spent == pytest.approx(r.cost)

def test_cache_answers_repeat_calls_and_charges_them(server, tmp_path):
    llm = llm_at(server)
    m = Meter(1000, cache=CallCache(tmp_path/'c.sqlite', 'rw'))
    a, b = m.call(llm, 'same', max_tokens=8), m.call(llm, 'same', max_tokens=8)
    c = m.call(llm, 'same', max_tokens=8, temperature=0.5)      # other sampling parameters: another call
    assert (a.cached, b.cached, c.cached) == (False, True, False) and b.text == a.text
    assert server.stats()['requests'] == 2
    assert m.usage.cached_calls == 1 and m.usage.cached_cost == pytest.approx(b.cost) and m.spent == pytest.approx(a.cost + b.cost + c.cost)
    # the endpoint is not part of the identity: the same model elsewhere is answered from the cache
    moved = replace(llm, api_base='http://127.0.0.1:9/v1')
    assert m.call(moved, 'same', max_tokens=8).cached

def test_replay_only_cache_never_calls(server, tmp_path):
    m = Meter(1000, cache=CallCache(tmp_path/'c.sqlite', 'replay'))
    with pytest.raises(NotRecorded, match='bamas record'): m.call(llm_at(server), 'x')
    assert server.stats()['requests'] == 0 and m.held == 0

def test_cache_mode_off_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv('BAMAS_CACHE', str(tmp_path/'env.sqlite')); monkeypatch.setenv('BAMAS_CACHE_MODE', 'replay')
    c = CallCache()
    assert (c.path, c.mode) == (tmp_path/'env.sqlite', 'replay')
    assert Meter(10).cache.replay_only and Meter(10, cache=None).cache.stores == []

def test_recording_round_trip_and_replay_without_server(tmp_path):
    path = tmp_path/'r.jsonl'
    with fake.FakeOpenAIServer(in_process=True) as srv:
        llm = llm_at(srv)
        r1 = Meter(1000, cache=Recording(path, 'rw')).call(llm, [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'é?'}], max_tokens=5)
    lines = path.read_text(encoding='utf-8').splitlines()
    assert len(lines) == 1 and list(json.loads(lines[0])) == ['key', 'model', 'params', 'messages', 'prompt_bound', 'bound_method', 'response']
    assert 'é?' in lines[0] and 'api_base' not in lines[0] and '127.0.0.1' not in lines[0]
    m = Meter(1000, cache=Recording(path, 'replay'))         # the server is gone
    r2 = m.call(llm, [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'é?'}], max_tokens=5)
    assert (r2.text, r2.usage, r2.replayed, r2.cached) == (r1.text, r1.usage, True, False)

def test_refusals_are_recorded_and_replayed_identically(tmp_path, monkeypatch):
    path = tmp_path/'r.jsonl'
    llm = LLM('big', 'openai/big', 1, 0.27, 1.10, 256, 'http://127.0.0.1:9/v1')
    from bamas_nb import provider as P
    monkeypatch.setitem(P.TOKEN_COUNTERS, 'openai/big', lambda msgs: 40)   # an exact counter while recording ...
    with pytest.raises(BudgetExhausted) as live: Meter(100, cache=Recording(path, 'rw')).call(llm, 'q')
    monkeypatch.delitem(P.TOKEN_COUNTERS, 'openai/big')                   # ... none when replaying
    with pytest.raises(BudgetExhausted) as replay: Meter(100, cache=Recording(path, 'replay')).call(llm, 'q')
    assert replay.value.needed == live.value.needed == pytest.approx(0.27*40 + 1.10*256)

def test_recording_refuses_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv('SOME_PROVIDER_API_KEY', 'abcdefghijkl0123456789')
    rec = Recording(tmp_path/'r.jsonl', 'rw')
    e = {'key': 'k', 'model': 'm', 'params': {}, 'messages': [{'role': 'user', 'content': 'my key is abcdefghijkl0123456789'}]}
    with pytest.raises(Exception, match=r'contains the value of \$SOME_PROVIDER_API_KEY'): rec.put(e)
    with pytest.raises(Exception, match="matching 'sk-"): rec.put({**e, 'messages': [{'role': 'user', 'content': 'sk-' + 'a1'*15}]})
    assert not (tmp_path/'r.jsonl').exists() or (tmp_path/'r.jsonl').read_text() == ''

def test_local_servers_never_get_the_real_key(monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-real-key-should-not-leak-000000')
    kw = completion_kwargs(LLM('l', 'openai/x', 1, 0, 0, 8, 'http://127.0.0.1:8092/v1'), [], {}, 5)
    assert kw['api_key'] == 'no-key-needed' and kw['max_retries'] == 0

def test_request_key_normalisation():
    m = as_messages('hi')
    assert request_key('a', m, sampling_params(8, 0)) == request_key('a', m, sampling_params(8, 0.0))
    assert request_key('a', m, sampling_params(8, 0, top_p=1)) == request_key('a', m, sampling_params(8, 0.0, top_p=1.0))
    assert len({request_key('a', m, sampling_params(8)), request_key('b', m, sampling_params(8)),
                request_key('a', as_messages('hi '), sampling_params(8)), request_key('a', m, sampling_params(8), sample=2)}) == 4

@pytest.mark.parametrize('bad', [dict(stream=True), dict(n=2), dict(tools=[]), dict(api_key='x'), dict(extra_headers={'a': 'b'}), dict(timeout=3)])
def test_unmeterable_params_are_refused(server, bad):
    with pytest.raises(Exception, match='is not allowed'): Meter(100, cache=None).call(llm_at(server), 'x', **bad)

def test_max_tokens_above_the_pool_cap_is_refused(server):
    with pytest.raises(Exception, match=r'max_tokens must be an integer in 1..64'): Meter(100, cache=None).call(llm_at(server), 'x', max_tokens=65)

def test_concurrent_batch_never_overspends_and_is_bounded():
    with fake.FakeOpenAIServer(latency=0.2) as srv:
        llm = llm_at(srv)
        worst = Meter(1, cache=None).quote(llm, 'q00', max_tokens=16).cost
        m = Meter(7.5*worst, cache=None, max_in_flight=3)
        replies = m.batch([{'llm': llm, 'messages': f'q{i:02d}', 'max_tokens': 16} for i in range(20)], progress=False)
        st = srv.stats()
    assert [r.refused for r in replies] == [False]*7 + [True]*13      # in issue order, whatever the timing
    assert st['requests'] == 7 and st['max_in_flight'] <= 3
    assert m.spent <= m.budget and m.held == 0 and m.spent == pytest.approx(sum(r.cost for r in replies))

def test_threads_share_one_budget():
    # every reservation must happen before the first call settles (a settled call frees what it did not use):
    # the threads start together and the server holds each answer for a second, ample even on a busy machine
    with fake.FakeOpenAIServer(latency=1.0) as srv:
        llm = llm_at(srv)
        worst = Meter(1, cache=None).quote(llm, 'q', max_tokens=16).cost
        m = Meter(5.5*worst, cache=None)
        out, start = [], threading.Barrier(12)
        def agent():
            start.wait()
            try: out.append(m.call(llm, 'q', max_tokens=16))
            except BudgetExhausted as e: out.append(e)
        ts = [threading.Thread(target=agent) for _ in range(12)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert sum(isinstance(o, BudgetExhausted) for o in out) == 7 and srv.stats()['requests'] == 5
    assert m.spent <= m.budget and m.held == 0

def test_sync_batch_works_inside_a_running_event_loop(server):
    m = Meter(1000, cache=None)
    async def inside(): return m.batch([(llm_at(server), 'a'), (llm_at(server), 'b')], progress=False)
    assert [r.ok for r in asyncio.run(inside())] == [True, True]

def test_eight_in_flight_is_much_faster_than_serial():
    with fake.FakeOpenAIServer(latency=0.25) as srv:
        llm = llm_at(srv)
        def run(k, n=16):
            m = Meter(1e6, cache=None, max_in_flight=k)
            t0 = time.perf_counter(); rs = m.batch([(llm, f'p{k}-{i}') for i in range(n)], progress=False)
            assert all(r.ok for r in rs)
            return n/(time.perf_counter() - t0)
        run(8, 16); run(8, 16)                      # warm up litellm's async clients and connections
        serial = run(1, 8)
        assert max(run(8, 32), run(8, 32)) >= 4*serial   # 8x in theory; ≥ 6x measured by benchmarks/bench_llm.py

def test_an_interrupt_releases_the_hold():
    class Interrupting:
        def complete(self, *a): raise KeyboardInterrupt
    m = Meter(1000, cache=None, provider=Interrupting())
    with pytest.raises(KeyboardInterrupt): m.call(LLM('x', 'openai/x', 1, 1, 1, 8), 'hi')
    assert (m.held, m.spent) == (0, 0)

def test_a_bug_in_the_provider_propagates():
    class Buggy:
        def complete(self, *a): raise ZeroDivisionError
    m = Meter(1000, cache=None, provider=Buggy())
    with pytest.raises(ZeroDivisionError): m.call(LLM('x', 'openai/x', 1, 1, 1, 8), 'hi')
    assert m.held == 0

def test_sqlite_cache_under_concurrent_processes(tmp_path):
    import concurrent.futures
    with concurrent.futures.ProcessPoolExecutor(4) as ex:
        assert all(n >= 0 for n in ex.map(_fill, [(str(tmp_path/'c.sqlite'), i) for i in range(8)]))
    c = CallCache(tmp_path/'c.sqlite')
    assert len(c) == 8*40 and c.get('k3-7')['response']['text'] == 'k3-7'

def _fill(args):
    path, w = args
    c = CallCache(path, 'rw')
    for i in range(40): c.put({'key': f'k{w}-{i}', 'model': 'm', 'response': {'text': f'k{w}-{i}'}})
    return len(c)

def test_recording_concurrent_appenders(tmp_path):
    import concurrent.futures
    with concurrent.futures.ProcessPoolExecutor(4) as ex: list(ex.map(_append, [(str(tmp_path/'r.jsonl'), w) for w in range(4)]))
    lines = (tmp_path/'r.jsonl').read_text().splitlines()
    assert len(lines) == 4*30 + 10 and all(json.loads(l) for l in lines)   # 10 shared keys written once

def _append(args):
    path, w = args
    r = Recording(path, 'rw')
    for i in range(30): r.put({'key': f'w{w}-{i}', 'model': 'm', 'response': {'text': 'x'*500}})
    for i in range(10): r.put({'key': f'shared-{i}', 'model': 'm', 'response': {'text': 'y'}})

# --- the command line ---

def _pool_file(tmp_path, srv) -> Path:
    return save_pool(Pool((llm_at(srv),)), tmp_path/'pool.yaml')

def test_cli_call_json(tmp_path):
    with fake.FakeOpenAIServer() as srv:
        pf = _pool_file(tmp_path, srv); (tmp_path/'p.txt').write_text('Say hi.')
        rc, out, err = run_bamas('call', '--pool', pf, '--llm', 'fake', '--budget', 100, '--prompt-file', tmp_path/'p.txt',
                                 '--max-tokens', 8, '--cache', 'off', '--json')
    assert rc == 0, err
    r = json.loads(out)
    assert r['refused'] is False and r['answer'] == ' '.join(['tok']*8)
    assert set(r['usage']) == {'prompt_tokens', 'completion_tokens'} and r['usage']['completion_tokens'] == 8
    assert r['cost'] <= r['reserved'] and r['remaining'] == pytest.approx(100 - r['cost'])

def test_cli_call_refused_is_exit_0(tmp_path):
    with fake.FakeOpenAIServer() as srv:
        pf = _pool_file(tmp_path, srv); (tmp_path/'p.json').write_text(json.dumps([{'role': 'user', 'content': 'hi'}]))
        rc, out, err = run_bamas('call', '--pool', pf, '--llm', 'fake', '--budget', 1, '--prompt-file', tmp_path/'p.json', '--cache', 'off', '--json')
        assert srv.stats()['requests'] == 0
    r = json.loads(out)
    assert rc == 0 and r['refused'] is True and r['reason'].startswith('budget exhausted') and r['reserved'] > 1 and r['cost'] == 0

def test_cli_call_errors_are_non_zero(tmp_path):
    (tmp_path/'p.txt').write_text('hi')
    pool = save_pool(Pool((LLM('down', 'openai/x', 1, 0.1, 0.4, 8, 'http://127.0.0.1:9/v1'),)), tmp_path/'pool.yaml')
    rc, out, err = run_bamas('call', '--pool', pool, '--llm', 'down', '--budget', 100, '--prompt-file', tmp_path/'p.txt', '--cache', 'off',
                             '--timeout', 2, '--json')
    assert rc == 2 and 'failed after 4 attempt(s)' in json.loads(out)['error']
    rc, out, err = run_bamas('call', '--pool', pool, '--llm', 'nope', '--budget', 100, '--prompt-file', tmp_path/'p.txt')
    assert rc == 2 and "unknown LLM 'nope'" in err
    rc, out, err = run_bamas('call', '--pool', pool, '--llm', 'down', '--budget', 100, '--prompt-file', tmp_path/'p.txt',
                             '--cache-file', tmp_path/'empty.jsonl')
    assert rc == 2 and 'no recorded answer' in err

def test_cli_call_replays_the_notebook_recording():
    rec = recording('02_llm', 'replay')
    e = next(x for x in rec.entries() if 'response' in x and x['model'].endswith('1.5b-instruct'))
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        (Path(d)/'m.json').write_text(json.dumps(e['messages']))
        rc, out, err = run_bamas('call', '--pool', ROOT/'data/pools/local.yaml', '--llm', 'qwen-1.5b', '--budget', 2000, '--prompt-file',
                                 Path(d)/'m.json', '--max-tokens', e['params']['max_tokens'], '--cache-file', rec.path, '--json')
    r = json.loads(out)
    assert rc == 0 and r['answer'] == e['response']['text'] and r['replayed'] and r['usage']['prompt_tokens'] == e['response']['prompt_tokens']

# --- identical calls in flight: one goes to the provider, the others wait for its answer ---

class Slow:
    "A provider that takes `delay` seconds, numbers its answers, and fails the calls listed in `fail` (1-based)."
    def __init__(self, delay=0.3, fail=()):
        self.calls, self.delay, self.fail, self.lock, self.now, self.most = 0, delay, set(fail), threading.Lock(), 0, 0
    def complete(self, llm, messages, params, timeout):
        with self.lock: self.calls += 1; n = self.calls; self.now += 1; self.most = max(self.most, self.now)
        time.sleep(self.delay)
        with self.lock: self.now -= 1
        if n in self.fail: raise TimeoutError(f'call {n} timed out')
        return {'text': f'answer {n}', 'finish_reason': 'stop', 'prompt_tokens': 10, 'completion_tokens': 2}
    async def acomplete(self, *a): return await asyncio.to_thread(self.complete, *a)

TINY = LLM('x', 'openai/x', 1, 1, 1, 8)
ONCE = RetryPolicy(attempts=1, backoff=0.0, max_backoff=0.0)

def in_threads(n, fn):
    start, out = threading.Barrier(n), [None]*n
    def go(i): start.wait(); out[i] = fn()
    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    return out

def test_identical_calls_in_flight_share_one_recorded_answer(tmp_path):
    rec, p = Recording(tmp_path/'r.jsonl', 'rw'), Slow()
    out = in_threads(4, lambda: Meter(1000, cache=rec, provider=p).call(TINY, 'same'))
    assert p.calls == 1 and {r.text for r in out} == {'answer 1'}
    assert sorted(r.replayed for r in out) == [False, True, True, True]
    assert len((tmp_path/'r.jsonl').read_text().splitlines()) == 1
    # and a replay of any of the four runs gives what it got live
    assert Meter(1000, cache=Recording(tmp_path/'r.jsonl', 'replay')).call(TINY, 'same').text == 'answer 1'

def test_different_calls_are_not_held_up(tmp_path):
    p = Slow(delay=0.5)
    cache = CallCache(tmp_path/'c.sqlite', 'rw')
    msgs = iter(['a', 'b', 'c']); lock = threading.Lock()
    def one():
        with lock: q = next(msgs)
        return Meter(1000, cache=cache, provider=p).call(TINY, q)
    out = in_threads(3, one)
    assert p.calls == 3 and len({r.text for r in out}) == 3 and p.most == 3      # all three were in flight together

def test_when_the_leader_fails_a_waiting_call_goes_live(tmp_path):
    p, cache = Slow(fail={1}), CallCache(tmp_path/'c.sqlite', 'rw')
    meters = [Meter(1000, cache=cache, retry=ONCE, provider=p) for _ in range(2)]
    slot = iter(meters); lock = threading.Lock()
    def one():
        with lock: m = next(slot)
        return m.call(TINY, 'q')
    out = in_threads(2, one)
    assert p.calls == 2 and sorted(r.ok for r in out) == [False, True]
    assert [r.text for r in out if r.ok] == ['answer 2']
    assert [m.held for m in meters] == [0, 0]

def test_without_a_writable_store_nothing_is_shared():
    p = Slow()
    out = in_threads(2, lambda: Meter(1000, cache=None, provider=p).call(TINY, 'q'))
    assert p.calls == 2 and {r.text for r in out} == {'answer 1', 'answer 2'}

def test_a_cancelled_waiter_leaves_the_call_in_flight_alone(tmp_path):
    p, cache = Slow(delay=0.5), CallCache(tmp_path/'c.sqlite', 'rw')
    m = Meter(1000, cache=cache, provider=p)
    async def main():
        lead = asyncio.create_task(m.acall(TINY, 'q'))
        await asyncio.sleep(0.05)
        waiter, other = asyncio.create_task(m.acall(TINY, 'q')), asyncio.create_task(m.acall(TINY, 'q'))
        await asyncio.sleep(0.05); waiter.cancel()
        with pytest.raises(asyncio.CancelledError): await waiter
        return await lead, await other
    first, second = asyncio.run(main())
    assert p.calls == 1 and first.text == second.text == 'answer 1' and second.cached
    assert m.held == 0

def test_waiting_calls_hold_their_reservation(tmp_path):
    # a call waiting for an identical one is already reserved: the budget guarantee does not depend on the sharing
    p = Slow(delay=0.5)
    m = Meter(1000, cache=CallCache(tmp_path/'c.sqlite', 'rw'), provider=p)
    worst = m.quote(TINY, 'q').cost
    seen = []
    def watch():
        time.sleep(0.25); seen.append(m.held)
    w = threading.Thread(target=watch); w.start()
    in_threads(2, lambda: m.call(TINY, 'q')); w.join()
    assert seen[0] == pytest.approx(2*worst) and m.held == 0 and p.calls == 1
