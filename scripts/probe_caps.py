"""Measure how long the local models' finished answers are, per model, data set and prompt: the basis of the token caps.

Each model solves the first `--n` tasks of each pilot data set (the seeded samples the experience tables use) with
a generous cap, at temperature 0, through the metered call layer; every call is recorded in
`data/recordings/04_caps.jsonl`, which the topologies notebook replays to derive the caps. Prints, per model and
data set, how many replies finished, and the median, 90th and 95th percentile of finished completion lengths.

    python scripts/probe_caps.py --n 16 --cap 1200
"""
import argparse, json, statistics
from concurrent.futures import ThreadPoolExecutor
from bamas_nb.core import load_pool
from bamas_nb.stores import recording
from bamas_nb.meter import Meter
from bamas_nb.runs import PROMPTS, HEAD
from bamas_nb.experience import pilot_tasks

def messages(task):
    user = PROMPTS['solve'][task.kind].format(head=HEAD[task.kind].format(task=task.text), entry=task.entry_point or 'solution')
    return [{'role': 'system', 'content': PROMPTS['system'][task.kind].format()}, {'role': 'user', 'content': user}]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=16); ap.add_argument('--cap', type=int, default=1200)
    ap.add_argument('--pool', default='data/pools/local.yaml'); ap.add_argument('--in-flight', type=int, default=4)
    a = ap.parse_args()
    pool, rec = load_pool(a.pool), recording('04_caps', mode='rw')
    jobs = [(llm, ds, t) for ds, ts in pilot_tasks(a.n).items() for t in ts for llm in pool]
    def one(job):
        llm, ds, t = job
        r = Meter(1e9, cache=rec).call(llm, messages(t), max_tokens=a.cap)
        return llm.name, ds, t, r
    with ThreadPoolExecutor(a.in_flight) as ex: res = list(ex.map(one, jobs))
    for (name, ds) in sorted({(n, d) for n, d, _, _ in res}):
        rs = [(t, r) for n, d, t, r in res if (n, d) == (name, ds)]
        done = sorted(r.usage.completion_tokens for _, r in rs if r.finish_reason == 'stop')
        q = lambda p: done[min(len(done) - 1, int(p*len(done)))] if done else None
        right = sum(t.grade(r.text).correct for t, r in rs)
        print(json.dumps({'llm': name, 'dataset': ds, 'n': len(rs), 'finished': len(done), 'correct': right,
                          'median': statistics.median(done) if done else None, 'p90': q(0.9), 'p95': q(0.95), 'max': done[-1] if done else None}), flush=True)

if __name__ == '__main__': main()
