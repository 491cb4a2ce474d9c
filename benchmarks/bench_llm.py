"""Benchmark of the call layer (`bamas_nb.meter`) against a raw litellm call, on a fake OpenAI-compatible server.

1. Overhead per call: the same requests sent with `litellm.completion` directly and through `Meter.call` (no
   cache; then with the sqlite call cache writing every answer), interleaved, against a server that answers
   at once. Reported: median time per call and the difference (target ≤ 2 ms).
2. Throughput: N calls through `Meter.abatch` with 1, 4 and 8 calls in flight against a server that sleeps a
   set latency per request (target: 8 in flight ≥ 6× the serial throughput).

Run: `python benchmarks/bench_llm.py [--calls 300] [--latency 0.25] [--json out.json]`. The server runs in a
child process, so it does not compete with the client for the GIL.
"""
import argparse, asyncio, json, os, statistics, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_openai_server import FakeOpenAIServer
from bamas_nb.core import LLM
from bamas_nb.provider import completion_kwargs, litellm_module, as_messages, sampling_params
from bamas_nb.stores import CallCache
from bamas_nb.meter import Meter

def _llm(srv) -> LLM: return LLM('fake', 'openai/fake', 2, 0.1, 0.4, 64, srv.api_base)

def overhead(n:int) -> dict:
    "Median seconds per call: raw litellm vs Meter.call (no cache, and sqlite cache rw), interleaved."
    lt = litellm_module()
    with FakeOpenAIServer(latency=0.0, completion_tokens=8) as srv, tempfile.TemporaryDirectory() as d:
        llm = _llm(srv)
        meter = Meter(1e12, cache=None)
        cached = Meter(1e12, cache=CallCache(Path(d)/'bench.sqlite', 'rw'))
        def raw(i):
            msgs = as_messages(f'raw {i}')
            lt.completion(**completion_kwargs(llm, msgs, sampling_params(8), 60))
        calls = {'litellm': raw, 'meter': lambda i: meter.call(llm, f'meter {i}', max_tokens=8),
                 'meter+cache': lambda i: cached.call(llm, f'cached {i}', max_tokens=8)}
        for i in range(20):                                # warm up clients and caches
            for f in calls.values(): f(-i - 1)
        times = {k: [] for k in calls}
        for i in range(n):
            for k, f in calls.items():
                t0 = time.perf_counter(); f(i); times[k].append(time.perf_counter() - t0)
        hits = []
        for i in range(min(n, 200)):                       # answered by the cache: no provider at all
            t0 = time.perf_counter(); cached.call(llm, f'cached {i}', max_tokens=8); hits.append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {'calls': n, 'median_ms': {k: round(1e3*v, 3) for k, v in med.items()},
            'overhead_ms': round(1e3*(med['meter'] - med['litellm']), 3),
            'overhead_with_cache_ms': round(1e3*(med['meter+cache'] - med['litellm']), 3),
            'cache_hit_ms': round(1e3*statistics.median(hits), 3)}

def throughput(n:int, latency:float, levels=(1, 4, 8)) -> dict:
    "Calls per second through Meter.abatch with 1, 4 and 8 calls in flight."
    with FakeOpenAIServer(latency=latency, completion_tokens=8) as srv:
        llm = _llm(srv)
        Meter(1e12, cache=None, max_in_flight=8).batch([(llm, f'warm {i}') for i in range(16)], progress=False)
        out = {}
        for k in levels:
            m = Meter(1e12, cache=None, max_in_flight=k)
            reqs = [{'llm': llm, 'messages': f'{k} {i}', 'max_tokens': 8} for i in range(n)]
            t0 = time.perf_counter(); rs = m.batch(reqs, progress=False); dt = time.perf_counter() - t0
            assert all(r.ok for r in rs), [r.error for r in rs if not r.ok][:3]
            out[k] = n/dt
    return {'calls': n, 'latency_s': latency, 'calls_per_s': {k: round(v, 2) for k, v in out.items()},
            'speedup': {k: round(v/out[levels[0]], 2) for k, v in out.items()}}

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--calls', type=int, default=300, help='calls per variant for the overhead measurement')
    ap.add_argument('--throughput-calls', type=int, default=48)
    ap.add_argument('--latency', type=float, default=0.25, help='server latency (s) for the throughput measurement')
    ap.add_argument('--json', default=None, help='also write the results to this file')
    a = ap.parse_args()
    res = {'overhead': overhead(a.calls), 'throughput': throughput(a.throughput_calls, a.latency)}
    o, t = res['overhead'], res['throughput']
    print(f"overhead per call ({o['calls']} calls, median): litellm {o['median_ms']['litellm']:.2f} ms, "
          f"Meter {o['median_ms']['meter']:.2f} ms (+{o['overhead_ms']:.2f} ms), "
          f"Meter + sqlite cache {o['median_ms']['meter+cache']:.2f} ms (+{o['overhead_with_cache_ms']:.2f} ms); cache hit {o['cache_hit_ms']:.2f} ms")
    print(f"throughput ({t['calls']} calls, {t['latency_s']} s latency): " +
          ', '.join(f"{k} in flight {v:.1f} calls/s ({t['speedup'][k]:.1f}x)" for k, v in t['calls_per_s'].items()))
    ok = o['overhead_ms'] <= 2 and t['speedup'][8] >= 6
    print('targets (≤ 2 ms overhead, 8 in flight ≥ 6x serial):', 'met' if ok else 'NOT met')
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
