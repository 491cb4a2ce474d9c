"""The live pilot of the topologies: every topology and baseline on the pilot tasks at two budgets, on the local pool.

Tasks are `bamas_nb.experience.pilot_tasks()` (30 GSM8K-train, 30 MBPP-train, 20 MATH problems outside MATH500),
taken in turn across the data sets and run in groups of one task per data set, both budgets and all seven
strategies per group, so a pilot stopped at any point covers the data sets and budgets evenly. Rows go to the
experience table `data/experience/pilot-v2` as runs finish; running the command again resumes where it stopped.
Start the local models first (`bamas serve-local`). Prints the table's progress per group.

    python scripts/pilot.py --budgets 1000,2400 --concurrency 4
"""
import argparse, sys, time
from bamas_nb.core import BUDGETS, TOPOLOGIES, load_pool, parse_budgets
from bamas_nb.experience import ExperienceStore, generate, interleave, pilot_tasks
from bamas_nb.runs import BASELINES

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pool', default='data/pools/local.yaml')
    ap.add_argument('--out', default='data/experience/pilot-v2')
    ap.add_argument('--budgets', default=f"{BUDGETS[1]},{BUDGETS[3]}", help='comma-separated budgets in µ$')
    ap.add_argument('--concurrency', type=int, default=4, help='runs in flight')
    ap.add_argument('--group', type=int, default=3, help='tasks per group (one per data set)')
    a = ap.parse_args()
    pool, budgets = load_pool(a.pool), parse_budgets(a.budgets)
    tasks, strategies = interleave(pilot_tasks()), list(TOPOLOGIES) + list(BASELINES)
    for i in range(0, len(tasks), a.group):
        t0 = time.time()
        generate(tasks[i:i + a.group], budgets, strategies, pool, a.out, concurrency=a.concurrency, progress=False)
        df = ExperienceStore(a.out).read()
        print(f"group {i // a.group + 1}: {df.task_id.nunique()} tasks, {len(df)} runs, accuracy {df.correct.mean():.1%}, "
              f"cut off {df.truncated.fillna(False).mean():.1%}, over budget {(df.cost > df.budget).sum()}, {time.time() - t0:.0f} s",
              file=sys.stderr, flush=True)

if __name__ == '__main__': main()
