"""Load: 1,000 tasks through the asynchronous call path with 16 calls in flight against the fake server — no deadlock,
memory flat, throughput reported (benchmarks/load_test.py makes the same run and prints its figures) — and a batch
under hangs and server errors that still comes back whole, with nothing left held."""
import asyncio
import pytest
from fake_openai_server import FakeOpenAIServer
from load_test import run_load
from bamas_nb.core import LLM
from bamas_nb.provider import RetryPolicy
from bamas_nb.meter import Meter

def test_1000_tasks_16_in_flight_no_deadlock_flat_memory():
    r = run_load(tasks=1000, in_flight=16, latency=0.05, timeout=120)     # a deadlock raises TimeoutError here
    print(f"\nload: {r}")
    assert r['ok'] == r['server_requests'] == 1000
    assert 8 <= r['server_max_in_flight'] <= 16                         # concurrent, and never more than asked
    assert r['rss_growth_mb'] < 20, r                                   # memory flat between 100 and 1,000 calls
    assert r['held'] == 0 and r['spent'] <= r['budget']
    assert r['calls_per_s'] > 16                                        # far above one call at a time (1/latency = 20/s)

def test_a_batch_under_hangs_and_errors_finishes_and_releases_everything():
    with FakeOpenAIServer(latency=0.01, fault_rate=0.2, fault_mix=['hang', '500', 'cut'], seed=3) as srv:
        llm = LLM('fake', 'openai/fake', 2, 0.1, 0.4, 64, srv.api_base)
        m = Meter(1e6, cache=None, max_in_flight=16, timeout=0.5, retry=RetryPolicy(2, backoff=0.01))
        async def go(): return await asyncio.wait_for(m.abatch([(llm, f'q{i}') for i in range(200)], progress=False), 60)
        replies = asyncio.run(go())
        st = srv.stats()
    failed = [r for r in replies if not r.ok]
    assert len(replies) == 200 and st['injected'].get('hang', 0) > 0 and failed       # some calls did fail for good
    assert {r.error.split(':')[0] for r in failed} <= {'Timeout', 'InternalServerError'}
    assert m.held == 0 and m.spent == pytest.approx(sum(r.cost for r in replies))
    # (the server's own in-flight count is no bound here: it keeps counting the hung requests the client gave up on)
