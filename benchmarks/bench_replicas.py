"""Does a second server process for the strong model speed up the grid? Replays real grid requests against both set-ups.

llama-cpp-python answers one request at a time, and the experience grid sends most of its decoding time to the
1.5B model (in `data/recordings/04_benchmarks.jsonl` the two models write about as many tokens, and the 1.5B
model writes them 2-3 times slower). This script serves the local pool on spare ports, once as usual (one
process per model) and once with `replicas={'qwen-1.5b': 2}` (two one-thread processes behind a balancer), and
sends the same real requests — `--requests` temperature-0 calls spread evenly over that recording, with their own
messages and parameters, `max_tokens` capped — with `--concurrency` in flight, as grow.py does. It prints one
JSON line per set-up: wall seconds, completion tokens per second, and how many answers are the recorded answer
(or its beginning, when the cap cut it).

    python benchmarks/bench_replicas.py --requests 12 --max-tokens 96 --concurrency 3
"""
import argparse, json, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from bench_slots import free_port
from bamas_nb.weights import LOCAL_MODELS
from bamas_nb.servers import serve_local

REC = Path(__file__).resolve().parent.parent/'data'/'recordings'/'04_benchmarks.jsonl'
ALIAS = {spec.model: (name, spec.alias) for name, spec in LOCAL_MODELS.items()}

def requests(n):
    "`n` temperature-0 requests spread evenly over the recording (so both models appear as often as in the grid)."
    rows = [r for r in map(json.loads, REC.open()) if r['params'].get('temperature') == 0.0 and r['model'] in ALIAS]
    return rows[::max(1, len(rows) // n)][:n]

def ask(api_base, alias, r, max_tokens):
    body = {'model': alias, 'messages': r['messages'], **r['params'], 'max_tokens': min(max_tokens, r['params'].get('max_tokens', max_tokens))}
    req = urllib.request.Request(f"{api_base}/chat/completions", data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=900) as f: out = json.loads(f.read())
    return out['choices'][0]['message']['content'], out['usage']['completion_tokens']

def run_setup(reps, rows, max_tokens, concurrency):
    ports = {n: free_port() for n in LOCAL_MODELS}
    with serve_local(ports=ports, replicas={'qwen-1.5b': reps}) as lp:
        ends = lp.endpoints
        def one(r):
            name, alias = ALIAS[r['model']]
            text, toks = ask(ends[name], alias, r, max_tokens)
            return toks, r['response']['text'].startswith(text)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as ex: res = list(ex.map(one, rows))
        wall = time.perf_counter() - t0
    toks = sum(t for t, _ in res)
    return {'qwen-1.5b processes': reps, 'threads per process': lp.servers[0].threads, 'requests': len(rows),
            'of which qwen-1.5b': sum(ALIAS[r['model']][0] == 'qwen-1.5b' for r in rows), 'max_tokens': max_tokens,
            'concurrency': concurrency, 'seconds': round(wall, 1), 'tok_per_s': round(toks / wall, 2),
            'same answer as recorded': f"{sum(ok for _, ok in res)}/{len(res)}"}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--requests', type=int, default=12)
    ap.add_argument('--max-tokens', type=int, default=96)
    ap.add_argument('--concurrency', type=int, default=3)
    ap.add_argument('--replicas', default='1,2', help='qwen-1.5b processes per set-up, in order')
    a = ap.parse_args()
    rows = requests(a.requests)
    for reps in map(int, a.replicas.split(',')): print(json.dumps(run_setup(reps, rows, a.max_tokens, a.concurrency)), flush=True)

if __name__ == '__main__': main()
