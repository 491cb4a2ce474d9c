"""Faults from an OpenAI-compatible server (the fake one in benchmarks/, started and stopped here on 127.0.0.1):
every fault is retried a bounded number of times and then recorded as a failed call; unknown cost is charged
from the reservation; a long `generate` run survives faults and says how many calls failed and why."""
import asyncio, json, time
import pytest
from fake_openai_server import FakeOpenAIServer
from reliability_helpers import FAST, MATH_REPLY, write_pool, cli_env
from bamas_nb.core import LLM, call_cost
from bamas_nb.provider import RetryPolicy
from bamas_nb.stores import CallCache
from bamas_nb.meter import Meter
from bamas_nb.experience import ExperienceStore, failures, read_trace, KEY

@pytest.fixture(scope='module')
def server():
    with FakeOpenAIServer(in_process=True) as s: yield s

def llm_at(srv, max_tokens=16) -> LLM: return LLM('fake', 'openai/fake', 2, 0.1, 0.4, max_tokens, srv.api_base)

def call(meter, llm, prompt, mode):
    "One metered call, synchronously or on the asyncio path."
    if mode == 'sync': return meter.call(llm, prompt, max_tokens=8)
    return asyncio.run(meter.acall(llm, prompt, max_tokens=8))

# fault → the error type the failed call is recorded with
RETRYABLE = {'429': 'RateLimitError', '500': 'InternalServerError', '503': 'ServiceUnavailableError',
             'garbage': 'InternalServerError', 'empty': 'BadResponse', 'cut': 'InternalServerError',
             'drop': 'InternalServerError', 'hang': 'Timeout'}

@pytest.mark.parametrize('mode', ['sync', 'async'])
@pytest.mark.parametrize('fault', list(RETRYABLE))
def test_every_fault_is_retried_a_bounded_number_of_times_then_recorded(server, fault, mode):
    llm = llm_at(server)
    m = Meter(1000, cache=None, retry=FAST, timeout=0.5)
    server.set_faults([fault]*5)                                    # more faults than attempts: the call must give up
    t0 = time.monotonic()
    r = call(m, llm, f'{fault} {mode} fails', mode)
    assert not r.ok and r.attempts == FAST.attempts and server.stats()['requests'] == FAST.attempts
    assert r.error.startswith(RETRYABLE[fault] + ': ') and '\n' not in r.error
    assert (r.text, r.cost, m.spent, m.held) == (None, 0, 0, 0)     # a failed attempt is not charged, the hold comes back
    assert m.log[-1] is r and r.reserved > 0                        # recorded in the Meter's log
    assert time.monotonic() - t0 < 10
    server.set_faults([fault]*(FAST.attempts - 1))                  # one attempt fewer: the last one succeeds
    r = call(m, llm, f'{fault} {mode} recovers', mode)
    assert r.ok and r.attempts == FAST.attempts and r.cost > 0 and m.spent == pytest.approx(r.cost)

def test_a_fault_that_would_fail_again_is_not_retried(server):
    server.set_faults([400, 401])
    m = Meter(1000, cache=None, retry=FAST)
    assert [call(m, llm_at(server), f'bad {i}', 'sync').attempts for i in range(2)] == [1, 1]
    assert server.stats()['requests'] == 2 and m.spent == 0

def test_429_waits_as_long_as_retry_after_asks_and_no_longer_than_the_cap(server):
    llm = llm_at(server)
    call(Meter(1000, cache=None), llm, 'warm-up', 'sync')
    server.set_faults(['429:0.8'])
    t0 = time.monotonic(); r = Meter(1000, cache=None, retry=RetryPolicy(3, backoff=0.001)).call(llm, 'rate limited', max_tokens=8)
    assert r.ok and r.attempts == 2 and time.monotonic() - t0 >= 0.8
    server.set_faults(['429:3600'])                                  # a server asking for an hour gets max_backoff
    t0 = time.monotonic(); r = Meter(1000, cache=None, retry=RetryPolicy(3, backoff=0.001, max_backoff=0.2)).call(llm, 'greedy', max_tokens=8)
    assert r.ok and r.attempts == 2 and time.monotonic() - t0 < 5

@pytest.mark.parametrize('fault', ['no-usage', 'zero-usage', 'half-usage'])
def test_unknown_usage_is_charged_the_whole_reservation_never_zero(server, fault, tmp_path):
    llm = llm_at(server)
    cache = CallCache(tmp_path/'c.sqlite', 'rw')
    for mode in ('sync', 'async'):
        m = Meter(1000, cache=cache, retry=FAST)
        server.set_faults([fault])
        r = call(m, llm, f'{fault} {mode}', mode)
        assert r.ok and not r.usage_reported and r.attempts == 1
        assert r.cost == pytest.approx(r.reserved) and r.cost == pytest.approx(call_cost(llm, r.prompt_bound, 8)) and r.cost > 0
        assert m.spent == pytest.approx(r.reserved) and m.usage.calls == 1
    assert len(cache) == 0                        # an answer of unknown cost is not cached (a replay could not charge it)

def test_exactly_max_tokens_of_garbage_is_charged_exactly_and_cached_intact(server, tmp_path):
    llm = llm_at(server, max_tokens=48)
    cache = CallCache(tmp_path/'c.sqlite', 'rw')
    m = Meter(1000, cache=cache)
    server.set_faults(['max-garbage'])
    r = m.call(llm, 'say anything')
    assert r.ok and r.usage.completion_tokens == 48 and r.finish_reason == 'length' and r.usage_reported
    assert r.cost == pytest.approx(call_cost(llm, r.usage.prompt_tokens, 48)) and r.cost <= r.reserved
    again = Meter(1000, cache=cache).call(llm, 'say anything')
    assert again.cached and again.text == r.text and again.cost == pytest.approx(r.cost)   # control characters and all

# --- a long generate run under faults ---

MIX = ['429', '500', 'garbage', 'empty', 'cut', 'hang', 'no-usage']

def _grid_under_faults(bamas, tmp_path, srv):
    "A small grid against `srv` with about a third of its requests faulting and two attempts per call."
    pool, out = write_pool(tmp_path/'pool.yaml', srv.api_base), tmp_path/'exp'
    args = ['generate', '--pool', pool, '--dataset', 'mini-math', '--n', 3, '--budgets', '1250,2000', '--out', out,
            '--cache', 'off', '--attempts', 2, '--timeout', 0.5]
    rc, text, err = bamas(*args, env=cli_env(tmp_path))
    assert rc == 0, err
    return ExperienceStore(out).read(), args, out, text, err

def test_generate_keeps_going_under_faults_and_reports_failed_calls(bamas, tmp_path):
    """About a third of all requests fail in one of seven ways; with two attempts per call some calls fail for good.
    The grid still finishes, every failed call is counted in its row and explained by its trace, the command's JSON
    and text say how many failed and why, and a second run finds nothing left to do."""
    with FakeOpenAIServer(completion_tokens=20, text=MATH_REPLY, fault_rate=0.35, fault_mix=MIX, seed=7) as srv:
        df, args, out, text, err = _grid_under_faults(bamas, tmp_path, srv)
        injected = srv.stats()['injected']
        assert len(df) == 3*2*4 and not df.duplicated(list(KEY)).any()            # the run went on to the end
        assert (df.cost <= df.budget).all()
        why = failures(out)
        assert df.failed_calls.sum() > 0 and sum(why.values()) == df.failed_calls.sum()
        assert set(why) <= {'RateLimitError', 'InternalServerError', 'BadResponse', 'Timeout'}, why
        assert sum(injected.values()) > 0 and set(injected) <= set(MIX)
        assert f"{df.failed_calls.sum()} failed calls (" in text and 'failed calls' in err      # final line and progress bar
        srv.set_faults([])
        rc, out_json, err = bamas(*args, '--json', env=cli_env(tmp_path))                  # resume: nothing to redo
        assert rc == 0, err
        assert srv.stats()['requests'] == 0
    r = json.loads(out_json)
    assert r['rows'] == 24 and r['failed_calls'] == df.failed_calls.sum() and r['failures'] == dict(why.most_common())
    assert ExperienceStore(out).read()[list(KEY) + ['cost', 'failed_calls']].equals(df[list(KEY) + ['cost', 'failed_calls']])

def test_redo_failed_runs_exactly_the_runs_that_had_failed_calls_again(bamas, tmp_path):
    """Once the faults stop, `--redo-failed` runs the rows that had failed calls again, and only those: their new
    rows and traces replace the old ones, the other rows stay as they were, and no run appears twice."""
    with FakeOpenAIServer(completion_tokens=20, text=MATH_REPLY, fault_rate=0.35, fault_mix=MIX, seed=7) as srv:
        df, args, out, _, _ = _grid_under_faults(bamas, tmp_path, srv)
        hit = set(df.trace_id[df.failed_calls > 0])
        assert hit and len(hit) < len(df)
        srv.set_faults([], fault_rate=0.0)                                        # the outage is over
        rc, out_json, err = bamas(*args, '--redo-failed', '--json', env=cli_env(tmp_path))
        assert rc == 0, err
        assert srv.stats()['requests'] > 0
    r, after = json.loads(out_json), ExperienceStore(out).read()
    assert r['rows'] == 24 and r['failed_calls'] == 0 and r['failures'] == {}
    assert len(after) == 24 and not after.duplicated(list(KEY)).any() and after.failed_calls.sum() == 0
    assert (after.cost <= after.budget).all()
    kept = lambda d: d[~d.trace_id.isin(hit)].sort_values(list(KEY)).reset_index(drop=True)
    assert kept(after).equals(kept(df))
    for tid in hit: assert not any(t['note'].startswith('failed') for t in read_trace(out, tid))
    ExperienceStore(out).consolidate()
    merged = ExperienceStore(out).read().sort_values(list(KEY)).reset_index(drop=True)
    assert merged.equals(after.sort_values(list(KEY)).reset_index(drop=True))
    assert len((out/'traces'/'traces.jsonl').read_text().splitlines()) == 24
    assert failures(out) == {}

def test_unknown_usage_in_a_generated_row_is_charged_not_zero(bamas, tmp_path):
    "A provider that never reports usage: every row's cost is the sum of its calls' reservations, never zero."
    with FakeOpenAIServer(completion_tokens=20, text=MATH_REPLY, fault_rate=1.0, fault_mix=['no-usage']) as srv:
        pool, out = write_pool(tmp_path/'pool.yaml', srv.api_base), tmp_path/'exp'
        rc, _, err = bamas('generate', '--pool', pool, '--dataset', 'mini-math', '--n', 1, '--budgets', '1250', '--topologies',
                           'linear,feedback', '--out', out, '--cache', 'off', '--json', env=cli_env(tmp_path))
        assert rc == 0, err
    df = ExperienceStore(out).read()
    assert len(df) == 2 and (df.calls > 0).all() and (df.cost > 0).all() and (df.cost <= df.budget).all()
    for tid in df.trace_id:
        turns = read_trace(out, tid)
        assert all(t['cost'] == pytest.approx(t['reserved']) for t in turns if t['reply'] is not None)

def test_a_stream_cut_half_way_cannot_reach_the_meter(server):
    """The fake server can cut an event stream half-way (no [DONE]); the Meter never streams — a stream carries no usage
    to meter — so what it can meet is a response body cut half-way, which is retried above ('cut')."""
    import httpx
    body = {'model': 'fake', 'messages': [{'role': 'user', 'content': 'hi'}], 'stream': True, 'max_tokens': 8}
    server.set_faults(['cut'])
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream('POST', f'{server.api_base}/chat/completions', json=body) as r:
        lines = []
        for line in r.iter_lines(): lines.append(line)
    assert lines and 'data: [DONE]' not in lines
    with pytest.raises(Exception, match="parameter 'stream' is not allowed"): Meter(100, cache=None).call(llm_at(server), 'hi', stream=True)
