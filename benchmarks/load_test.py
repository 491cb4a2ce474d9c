"""Load test of the asynchronous call path: N tasks, each one metered call (`Meter.acall`), with K calls in flight
against the fake OpenAI-compatible server (a child process, so it does not compete with the client for the GIL).

Reported: wall time, throughput (calls per second), the most requests the server saw at once, the resident memory
(RSS) of this process after the first 10 % of the calls and at the end, and its peak while the calls ran (sampled
every 20 ms; `ru_maxrss` is the peak over the whole process, imports included). A deadlock shows as a timeout.

Run: `python benchmarks/load_test.py [--tasks 1000] [--in-flight 16] [--latency 0.05] [--json out.json]`.
`tests/test_reliability_load.py` runs the same function and checks the figures.
"""
import argparse, asyncio, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import psutil
from fake_openai_server import FakeOpenAIServer
from bamas_nb.core import LLM
from bamas_nb.meter import Meter

MB = 2**20

async def _drive(meter:Meter, llm:LLM, n:int, early:int, timeout:float) -> tuple[list, dict]:
    "All `n` calls at once (the Meter lets `max_in_flight` through); RSS after `early` calls, at the end, and its peak."
    proc, rss, done, stop = psutil.Process(), {'peak': 0}, 0, asyncio.Event()
    async def sample():
        while not stop.is_set():
            rss['peak'] = max(rss['peak'], proc.memory_info().rss)
            try: await asyncio.wait_for(stop.wait(), 0.02)
            except asyncio.TimeoutError: pass
    async def one(i):
        nonlocal done
        r = await meter.acall(llm, f'Task {i}: add {i} and {i + 1}.', max_tokens=16, sample=i)
        done += 1
        if done == early: rss['early'] = proc.memory_info().rss
        return r
    sampler = asyncio.create_task(sample())
    try: replies = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout)
    finally: stop.set(); await sampler
    rss['end'] = proc.memory_info().rss
    return replies, rss

def run_load(tasks:int=1000, in_flight:int=16, latency:float=0.05, timeout:float=300.0) -> dict:
    "Run the load test; returns its figures (raises asyncio.TimeoutError on a deadlock)."
    with FakeOpenAIServer(latency=latency, completion_tokens=16) as srv:
        llm = LLM('fake', 'openai/fake', 2, 0.1, 0.4, 64, srv.api_base)
        Meter(1e9, cache=None, max_in_flight=in_flight).batch([(llm, f'warm-up {i}') for i in range(2*in_flight)], progress=False)
        srv.set_faults([])                                                # reset the request counters
        meter = Meter(1e9, cache=None, max_in_flight=in_flight)
        t0 = time.perf_counter()
        replies, rss = asyncio.run(_drive(meter, llm, tasks, max(1, tasks//10), timeout))
        wall = time.perf_counter() - t0
        st = srv.stats()
    return {'tasks': tasks, 'in_flight': in_flight, 'latency_s': latency, 'ok': sum(r.ok for r in replies), 'wall_s': round(wall, 2),
            'calls_per_s': round(tasks/wall, 1), 'ideal_calls_per_s': round(in_flight/latency, 1), 'server_requests': st['requests'],
            'server_max_in_flight': st['max_in_flight'], 'rss_early_mb': round(rss['early']/MB, 1), 'rss_end_mb': round(rss['end']/MB, 1),
            'rss_growth_mb': round((rss['end'] - rss['early'])/MB, 1), 'rss_peak_mb': round(rss['peak']/MB, 1),
            'ru_maxrss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, 1),
            'spent': round(meter.spent, 3), 'budget': meter.budget, 'held': meter.held}

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tasks', type=int, default=1000); ap.add_argument('--in-flight', type=int, default=16)
    ap.add_argument('--latency', type=float, default=0.05, help="the server's seconds per answer")
    ap.add_argument('--json', default=None, help='also write the figures to this file')
    a = ap.parse_args()
    r = run_load(a.tasks, a.in_flight, a.latency)
    print(f"{r['tasks']:,} tasks, {r['in_flight']} in flight (server saw at most {r['server_max_in_flight']}), {r['latency_s']} s per answer: "
          f"{r['wall_s']} s, {r['calls_per_s']} calls/s (ideal {r['ideal_calls_per_s']}); {r['ok']:,} ok")
    print(f"RSS {r['rss_early_mb']} MB after {r['tasks']//10:,} calls, {r['rss_end_mb']} MB at the end (growth {r['rss_growth_mb']} MB), "
          f"peak {r['rss_peak_mb']} MB while calling; ru_maxrss {r['ru_maxrss_mb']} MB")
    if a.json: Path(a.json).write_text(json.dumps(r, indent=1))
