"""Speed of the topology policy. Targets (2 cores): 10 epochs over 100k records ≤ 60 s; planning one task
(embedding + policy + ILP) ≤ 20 ms, 1,000 tasks ≤ 5 s. Run: .venv/bin/python benchmarks/bench_policy.py"""
import statistics, time
from pathlib import Path
import numpy as np, torch
from bamas_nb.core import load_pool, TOPOLOGIES
from bamas_nb.ilp import select_llms, _select
from bamas_nb.policy import Batchable, TrainConfig, train_policy, TaskEmbedder, Policy, PolicyNet

torch.set_num_threads(2)
rng = np.random.default_rng(0)
n, n_tasks = 100_000, 5_000
emb = torch.nn.functional.normalize(torch.randn(n_tasks, 384, generator=torch.Generator().manual_seed(0)), dim=1)
data = Batchable(emb, torch.from_numpy(rng.integers(0, n_tasks, n)), torch.from_numpy(rng.choice([.25, .4375, .625, .8125, 1.], n).astype(np.float32)),
                 torch.from_numpy(rng.integers(0, 4, n)), torch.from_numpy(rng.choice([-1000., 1000.], n).astype(np.float32)), 2000.0,
                 torch.zeros(n), torch.full((n,), 0.25))
t = time.perf_counter(); _, hist = train_policy(data, TrainConfig(epochs=10, batch_size=20_000)); dt = time.perf_counter() - t
print(f"training: 10 epochs over {n:,} records (batch 20,000, {len(hist)} steps): {dt:.2f} s (target ≤ 60 s)")

pool = load_pool(Path(__file__).resolve().parent.parent/'data'/'pools'/'local.yaml')
embedder = TaskEmbedder(); embedder.embed(['warm-up'])          # load the model once, outside the timing
policy = Policy(PolicyNet(), 2000.0, embedder)
budgets = [500, 875, 1250, 1625, 2000]
texts = [f"Task {i}: a shop sells {i % 97} pens at {i % 13 + 1} dollars each; how much for {i % 7 + 2} of them?" for i in range(1000)]

def plan(text, budget): return select_llms(pool, budget), policy.choose(text, budget)
times = []
for i, text in enumerate(texts[:200]):
    t = time.perf_counter(); plan(text, budgets[i % 5]); times.append(time.perf_counter() - t)
print(f"planning one new task (embedding + policy + ILP): median {statistics.median(times)*1e3:.1f} ms, p90 {sorted(times)[180]*1e3:.1f} ms (target ≤ 20 ms)")

_select.cache_clear(); embedder2 = TaskEmbedder(); embedder2.embed(['warm-up']); policy2 = Policy(PolicyNet(), 2000.0, embedder2)
t = time.perf_counter()
bs = [budgets[i % 5] for i in range(1000)]
probs = policy2.probs(texts, bs)                                  # one batched embedding + forward pass
sels = [select_llms(pool, b) for b in bs]
print(f"planning 1,000 new tasks in a batch: {time.perf_counter() - t:.2f} s (target ≤ 5 s)")
