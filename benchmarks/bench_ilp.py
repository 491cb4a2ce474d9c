"""Speed of LLM selection (the ILP). Target: ≤ 20 ms per selection on a 2-core machine.

Prints the median time of one uncached selection, and the time for 1,000 budgets drawn from the paper's grid
with and without the memo. Run: .venv/bin/python benchmarks/bench_ilp.py"""
import random, statistics, time
from pathlib import Path
from bamas_nb.core import load_pool
from bamas_nb.ilp import select_llms, _select

pools = Path(__file__).resolve().parent.parent/'data'/'pools'
pool = load_pool(pools/'paper.yaml')
rng = random.Random(0)

times = []
for _ in range(200):
    _select.cache_clear()
    b = rng.uniform(400, 3000)
    t = time.perf_counter(); select_llms(pool, b); times.append(time.perf_counter() - t)
print(f"one selection, uncached: median {statistics.median(times)*1e3:.1f} ms, p90 {sorted(times)[int(.9*len(times))]*1e3:.1f} ms (target ≤ 20 ms)")

for label, budgets in [('1,000 budgets from the grid 500/875/1250/1625/2000', [rng.choice([500, 875, 1250, 1625, 2000]) for _ in range(1000)]),
                       ('1,000 distinct random budgets', [rng.uniform(400, 3000) for _ in range(1000)])]:
    _select.cache_clear()
    t = time.perf_counter()
    for b in budgets: select_llms(pool, b)
    dt = time.perf_counter() - t
    print(f"{label}: {dt:.2f} s in all, {dt:.3f} ms mean per selection (memo hits: {_select.cache_info().hits})")
