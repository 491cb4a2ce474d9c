"""Two local servers on one small CPU: how many threads each, and may they run at the same time?

Experience generation keeps two runs in flight, so the 1.5B and the 0.5B server are often asked at the same
moment. llama.cpp's worker threads busy-wait between steps; with 2 threads per server on a 2-core machine, four
spinning threads share two cores. This script serves both models (llama-cpp-python, the engine the tables use)
and sends each the same real GSM8K prompts, one request after another per server, in three set-ups:

- `concurrent`: both servers work at once, each with `--threads` threads (what grow.py did);
- `serialized`: the same servers, but a lock lets only one of them work at a time;
- `concurrent` again with 1 thread per server (`--pair-threads 1`).

It prints one JSON line per set-up: wall seconds, completion tokens per second over both servers, and each
server's own figure. A request that takes longer than `--request-timeout` counts as unfinished.

    python benchmarks/bench_pair.py --requests 3 --max-tokens 64
"""
import argparse, json, threading, time
from concurrent.futures import ThreadPoolExecutor
from bench_slots import free_port, post, wait_ready
from bamas_nb.weights import assemble_weights, LOCAL_MODELS
from bamas_nb.servers import server_command
from bamas_nb.tasks import load_tasks
from bamas_nb.runs import PROMPTS
import subprocess

MODELS = ('qwen-1.5b', 'qwen-0.5b')

def start(name, threads):
    spec, port = LOCAL_MODELS[name], free_port()
    proc = subprocess.Popen(server_command(assemble_weights(name), spec.alias, port, threads, 4096),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return spec.alias, port, proc

def run_setup(label, threads, serialize, prompts, max_tokens, timeout):
    servers = {n: start(n, threads) for n in MODELS}
    lock = threading.Lock() if serialize else None
    def body(alias, p):
        return {'model': alias, 'messages': [{'role': 'system', 'content': PROMPTS['system']['math']},
                                             {'role': 'user', 'content': p}], 'max_tokens': max_tokens, 'temperature': 0}
    def one_server(name):
        alias, port, _ = servers[name]
        toks, busy, unfinished = 0, 0.0, 0
        for p in prompts:
            if lock: lock.acquire()
            t0 = time.perf_counter()
            try: toks += post(port, body(alias, p), timeout=timeout)['usage']['completion_tokens']
            except Exception: unfinished += 1
            finally:
                busy += time.perf_counter() - t0
                if lock: lock.release()
        return name, toks, busy, unfinished
    try:
        for n in MODELS: post(servers[n][1], body(servers[n][0], 'Say OK.'))      # warm-up, one at a time
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(MODELS)) as ex: results = list(ex.map(one_server, MODELS))
        wall = time.perf_counter() - t0
    finally:
        for _, _, proc in servers.values(): proc.terminate(); proc.wait(30)
    total = sum(r[1] for r in results)
    return {'setup': label, 'threads_per_server': threads, 'requests_per_server': len(prompts), 'max_tokens': max_tokens,
            'seconds': round(wall, 1), 'tok_per_s': round(total / wall, 2),
            **{f"{n}_tok_per_s_while_busy": round(t / b, 2) if b else None for n, t, b, _ in results},
            'unfinished': sum(r[3] for r in results)}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--requests', type=int, default=3, help='prompts per server')
    ap.add_argument('--max-tokens', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2, help='threads per server in the first two set-ups')
    ap.add_argument('--pair-threads', type=int, default=1, help='threads per server in the third set-up')
    ap.add_argument('--request-timeout', type=float, default=300)
    ap.add_argument('--setups', default='concurrent,serialized,pair', help='which set-ups, in order')
    a = ap.parse_args()
    prompts = [PROMPTS['solve']['math'].format(task=t.text) for t in load_tasks('gsm8k', 'test', n=a.requests, seed=1)]
    plan = {'concurrent': (a.threads, False), 'serialized': (a.threads, True), 'pair': (a.pair_threads, False)}
    for s in a.setups.split(','):
        threads, serialize = plan[s]
        label = 'serialized' if serialize else 'concurrent'
        print(json.dumps(run_setup(label, threads, serialize, prompts, a.max_tokens, a.request_timeout)), flush=True)

if __name__ == '__main__': main()
