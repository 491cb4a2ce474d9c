"""Draw the fixed sample of real grid requests that `bench_throughput.py` replays, and write it to `benchmarks/data/`.

The sample is taken task by task, as the grid sends them: `--tasks` tasks of the test tables (seeded), and from each
task `--per-task` temperature-0 requests of its recorded runs, spread over roles and both models. Every request
keeps its messages and sampling parameters as recorded, the task it belongs to (so its answer can be graded) and
the role it played in its run.

    python benchmarks/throughput_sample.py --tasks 8 --per-task 6 --seed 0
"""
import argparse, json, random
from collections import defaultdict
from pathlib import Path
from bamas_nb.experience import ExperienceStore, _trace_lines

ROOT = Path(__file__).resolve().parent.parent
REC = ROOT/'data'/'recordings'/'04_benchmarks.jsonl'
OUT = ROOT/'benchmarks'/'data'/'throughput_requests.jsonl'
TABLES = {'gsm8k': 'gsm8k-test', 'mbpp': 'mbpp-test', 'math500': 'math500-test'}
ANSWER_ROLES = {'solve', 'improve', 'revise', 'aggregate', 'finish', 'chat'}   # replies the task's grader can judge

def prompts_by_task(table:str) -> dict:
    "task id -> {user prompt: role} from the traces of a test table."
    path = ROOT/'data'/'experience'/table
    task_of = dict(zip(*(lambda df: (df.trace_id, df.task_id))(ExperienceStore(path).read())))
    out = defaultdict(dict)
    for line in _trace_lines(path).values():
        d = json.loads(line)
        for t in d['trace']:
            if t['reply'] is not None: out[task_of[d['trace_id']]].setdefault(t['prompt'], t['role'])
    return out

def draw(n_tasks:int, per_task:int, seed:int) -> list[dict]:
    rng = random.Random(seed)
    entries = defaultdict(list)                               # user prompt -> recorded temperature-0 entries
    for e in map(json.loads, REC.open(encoding='utf-8')):
        if 'response' in e and e['params'].get('temperature') == 0.0: entries[e['messages'][-1]['content']].append(e)
    sample, quota = [], {'gsm8k': n_tasks*3//8, 'mbpp': n_tasks*3//8}
    quota['math500'] = n_tasks - sum(quota.values())
    for ds, k in quota.items():
        by_task = prompts_by_task(TABLES[ds])
        tasks = sorted(t for t, ps in by_task.items() if sum(p in entries for p in ps) >= per_task)
        for tid in rng.sample(tasks, k):
            found = [(role, e) for p, role in by_task[tid].items() for e in entries.get(p, [])]
            by_role = defaultdict(list)
            for role, e in found: by_role[(role, e['model'])].append(e)
            groups = sorted(by_role)
            rng.shuffle(groups)
            picked = []
            while len(picked) < per_task and any(by_role[g] for g in groups):   # round robin over (role, model)
                for g in groups:
                    if by_role[g] and len(picked) < per_task: picked.append((g[0], by_role[g].pop(rng.randrange(len(by_role[g])))))
            sample += [{'task_id': tid, 'dataset': ds, 'role': role, 'model': e['model'], 'params': e['params'],
                        'messages': e['messages'], 'recorded': e['response']['text']} for role, e in picked]
    return sample

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tasks', type=int, default=8); ap.add_argument('--per-task', type=int, default=6)
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--out', default=str(OUT))
    a = ap.parse_args()
    rows = draw(a.tasks, a.per_task, a.seed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows), encoding='utf-8')
    models = defaultdict(int)
    for r in rows: models[r['model'].split('/')[-1]] += 1
    print(f"{len(rows)} requests from {len({r['task_id'] for r in rows})} tasks -> {a.out}; "
          f"by model {dict(models)}; roles {sorted({r['role'] for r in rows})}")

if __name__ == '__main__': main()
