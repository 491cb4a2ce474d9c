"""Grow the committed experience tables one task at a time, taking the tables in turn (resumable: rerun to go on).

These tables hold runs of the topologies as they were on 2026-12-03 (before the redesign of notebook 04, 256-token
cap, pool data/pools/local-256.yaml); runs of the current topologies belong in new tables (see data/experience/pilot-v2),
not in these. With servers for the local models running (`bamas serve-local`), from the repository root:

    python scripts/grow.py --n 100
    python scripts/grow.py --benchmark --n 20   # the test tables first, on the benchmark grid only (below)
    python scripts/grow.py --report        # the size table of data/experience/README.md (no servers needed)
    python scripts/grow.py --repair        # redo the benchmark-grid runs that no longer replay (below)

Runs on the test tables also go into data/recordings/04_benchmarks.jsonl (the recording is consulted first, so runs
it already holds cost nothing). Round k adds the k-th task of each table's seeded sample (seed 0, the same order `bamas generate --n k` uses), so
every table grows evenly and an interruption costs at most the runs in flight. Each round is exactly

    bamas generate --pool data/pools/local-256.yaml --dataset DS --split SPLIT --n k --out data/experience/DS-SPLIT \
        --budgets 500,875,1250,1625,2000 --topologies TOPOLOGIES

With --benchmark, only the three test tables grow, and only on the grid of the topologies notebook's benchmark
table (budgets 500, 1250, 2000 × the four topologies: 12 of a task's 35 runs), so that table reaches its 20 tasks
about three times sooner; a later plain run fills in the rest of each task's grid (runs already made are skipped).

With --repair, each test table's benchmark-grid runs are replayed from the recording, and the runs that do not
replay as they were made (a call missing, or a different outcome) are run again: the recording answers what it
holds, the servers the rest, and the new row replaces the old. Such runs came from two identical calls in flight
at once before the call layer shared one answer between them (see data/experience/README.md).
"""
import argparse, sys, time
from concurrent.futures import ThreadPoolExecutor
from bamas_nb.core import load_pool, TOPOLOGIES
from bamas_nb.stores import default_cache, recording, NotRecorded
from bamas_nb.tasks import load_tasks, get_task
from bamas_nb.ilp import select_llms
from bamas_nb.runs import BASELINES
from bamas_nb.topologies import run_topology
from bamas_nb.experience import ExperienceStore, generate

BUDGETS = (500, 875, 1250, 1625, 2000)
BENCH_BUDGETS = (500, 1250, 2000)  # the benchmark grid of the test tables (--benchmark)
TABLES = {  # name: (data set, split, strategies)
    'gsm8k-test': ('gsm8k', 'test', TOPOLOGIES + BASELINES),
    'mbpp-test': ('mbpp', 'test', TOPOLOGIES + BASELINES),
    'math500-test': ('math500', 'test', TOPOLOGIES + BASELINES),
    'gsm8k-train': ('gsm8k', 'train', TOPOLOGIES),
    'mbpp-train': ('mbpp', 'train', TOPOLOGIES),
}

_REC = []

def cache_for(name):
    "Test tables also write every call into the benchmark recording, which nbs/04_topologies.ipynb replays (one object: one lock)."
    if name.endswith('-test'):
        if not _REC: _REC.append(recording('04_benchmarks', mode='rw'))
        return [_REC[0], default_cache()]
    return 'default'

def report(names) -> str:
    "The README's size table: per table, tasks (complete ones in brackets), runs, accuracy, mean cost, over budget, dates."
    lines = ['| table | tasks (complete) | runs | accuracy over all runs | mean cost (µ$) | over budget | runs made |',
             '|---|---:|---:|---:|---:|---:|---|']
    for name in names:
        df = ExperienceStore(f"data/experience/{name}").read()
        if not len(df): lines.append(f"| `{name}` | 0 | 0 | — | — | 0 | — |"); continue
        per_task = len(BUDGETS) * len(TABLES[name][2])
        complete = int((df.groupby('task_id').size() == per_task).sum())
        days = sorted({d[:10] for d in df.created_at})
        when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
        lines.append(f"| `{name}` | {df.task_id.nunique()} ({complete}) | {len(df)} | {df.correct.mean():.1%} | "
                     f"{df.cost.mean():,.1f} | {int((df.cost > df.budget).sum())} | {when} |")
    bench = {name: n_bench(name) for name in names if name.endswith('-test')}
    if bench: lines += ['', 'Tasks with the whole benchmark grid (budgets 500, 1250, 2000 × 4 topologies): '
                        + ', '.join(f"`{k}` {v}" for k, v in bench.items()) + '.']
    return '\n'.join(lines)

def n_bench(name) -> int:
    "How many tasks of a test table hold all 12 runs of the benchmark grid."
    df = ExperienceStore(f"data/experience/{name}").read()
    if not len(df): return 0
    df = df[df.budget.isin(BENCH_BUDGETS) & df.topology.isin(TOPOLOGIES)]
    return int((df.groupby('task_id').size() == len(BENCH_BUDGETS) * len(TOPOLOGIES)).sum())

def grid_rows(name):
    "The rows of a test table's tasks that hold the whole benchmark grid, only their grid runs."
    df = ExperienceStore(f"data/experience/{name}").read()
    if not len(df): return df
    df = df[df.budget.isin(BENCH_BUDGETS) & df.topology.isin(TOPOLOGIES)]
    full = df.groupby('task_id').trace_id.transform('size') == len(BENCH_BUDGETS) * len(TOPOLOGIES)
    return df[full]

def unreplayable(name, pool) -> list[str]:
    "Trace ids of the benchmark-grid runs of a test table that do not replay from the recording as they were made."
    ds = TABLES[name][0]
    rec, bad = recording('04_benchmarks', mode='replay'), []
    for r in grid_rows(name).itertuples():
        try: o = run_topology(r.topology, get_task(ds, r.task_id), select_llms(pool, r.budget), r.budget, cache=rec)
        except NotRecorded: bad.append(r.trace_id); continue
        if (o.correct, o.calls, round(o.cost, 6)) != (r.correct, r.calls, round(r.cost, 6)): bad.append(r.trace_id)
    return bad

def repair(names, pool, concurrency):
    "Run again the benchmark-grid runs that do not replay; prints what it found and what it redid."
    for name in names:
        bad = unreplayable(name, pool)
        print(f"{name}: {len(bad)} of {len(grid_rows(name))} grid runs do not replay", flush=True)
        if not bad: continue
        df = ExperienceStore(f"data/experience/{name}").read()
        ids = sorted(set(df[df.trace_id.isin(bad)].task_id))
        t0 = time.time()
        generate([get_task(TABLES[name][0], i) for i in ids], BENCH_BUDGETS, TOPOLOGIES, pool, f"data/experience/{name}",
                 cache=cache_for(name), concurrency=concurrency, progress=False, redo=bad)
        still = unreplayable(name, pool)
        print(f"{name}: redid {len(bad)} runs in {time.time() - t0:,.0f} s; {len(still)} still do not replay", flush=True)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=100, help='grow every table to this many tasks')
    p.add_argument('--start', type=int, default=1, help='first round (rounds already complete are skipped anyway)')
    p.add_argument('--tables', default=','.join(TABLES), help='comma-separated subset of ' + ', '.join(TABLES))
    p.add_argument('--pool', default='data/pools/local-256.yaml')
    p.add_argument('--concurrency', type=int, default=2, help='runs in flight (per table with --tables-at-once)')
    p.add_argument('--tables-at-once', action='store_true',
                   help="grow a round's tables side by side, so that one table's last slow runs do not leave the servers idle")
    p.add_argument('--benchmark', action='store_true',
                   help='grow only the test tables, on the benchmark grid (budgets 500, 1250, 2000 × the four topologies)')
    p.add_argument('--report', action='store_true', help='print the size table of the tables and stop')
    p.add_argument('--repair', action='store_true', help='redo the benchmark-grid runs of the test tables that do not replay from the recording, and stop')
    args = p.parse_args(argv)
    names = [t.strip() for t in args.tables.split(',') if t.strip()]
    if (bad := [t for t in names if t not in TABLES]): sys.exit(f"unknown table(s) {', '.join(bad)}; choose from {', '.join(TABLES)}")
    if args.report: return print(report(names))
    if args.repair: return repair([t for t in names if t.endswith('-test')], load_pool(args.pool), args.concurrency)
    if args.benchmark: names = [t for t in names if t.endswith('-test')]
    budgets = BENCH_BUDGETS if args.benchmark else BUDGETS
    pool = load_pool(args.pool)
    def grow(k, name):
        ds, split, strategies = TABLES[name]
        if args.benchmark: strategies = TOPOLOGIES
        t0 = time.time()
        df = generate(load_tasks(ds, split, n=k), budgets, strategies, pool, f"data/experience/{name}",
                      cache=cache_for(name), concurrency=args.concurrency, progress=False)
        print(f"round {k} {name}: {df.task_id.nunique()} tasks, {len(df)} runs, {time.time() - t0:,.0f} s this round", flush=True)
    for k in range(args.start, args.n + 1):
        if not args.tables_at_once:
            for name in names: grow(k, name)
            continue
        for name in names: load_tasks(*TABLES[name][:2], n=1)   # read the data files here first: concurrent first reads can fail
        with ThreadPoolExecutor(len(names)) as ex:
            for f in [ex.submit(grow, k, name) for name in names]: f.result()

if __name__ == '__main__': main()
