"""A small OpenAI-compatible chat server for benchmarks and fault-injection tests (no model, no network).

It answers `POST /v1/chat/completions` after sleeping a set latency, with a canned reply of a set number of
completion tokens (capped by the request's `max_tokens`) and a `usage` block. Faults can be queued: each
request takes the next fault from the queue until it is empty, then requests succeed again. A fault rate can
also be set: each request without a queued fault then draws one from a mix with that probability (seeded, so a
run in a fixed order sees the same faults).

Faults (`FAULTS`):
- an HTTP status such as `429`, `500`, `503`: a JSON error body; `429` carries `Retry-After: 0`, `429:1.5` asks
  the client to wait 1.5 s;
- `hang`: sleep past any client timeout;
- `garbage`: 200 with a body that is not JSON (malformed JSON);
- `empty`: a valid reply whose `choices` list is empty;
- `no-usage`: a valid reply without `usage`; `zero-usage`: usage of zero tokens; `half-usage`: only `prompt_tokens`;
- `cut`: the headers announce the whole body, half of it is sent, then the connection is closed (a response
  stream cut half-way; with `"stream": true` the event stream stops half-way, without `[DONE]`);
- `drop`: close the connection without answering;
- `max-garbage`: exactly `max_tokens` completion tokens of random bytes-as-text (any characters, control
  characters included), usage reporting exactly `max_tokens`;
- `echo-auth`: 401 whose error message repeats the request's `Authorization` header, as a careless provider
  might (for secret-leak tests).

The server remembers every distinct `Authorization` header it received (`stats()['auth']`), so a test can check
which key, if any, reached it.

From Python (the server runs in a child process by default, so it never competes with the client for the GIL):

    with FakeOpenAIServer(latency=0.2, completion_tokens=16) as srv:
        litellm.completion(model='openai/fake', api_base=srv.api_base, api_key='x', messages=[...])
        srv.set_faults([429, 500]); srv.stats()   # {'requests': ..., 'faults_left': ..., 'max_in_flight': ..., 'injected': ...}
        srv.set_faults([], fault_rate=0.2, fault_mix=['429', '500', 'empty'], seed=1)

From a shell: `python benchmarks/fake_openai_server.py --port 8199 --latency 0.25`.
"""
from __future__ import annotations
import argparse, json, os, random, socket, subprocess, sys, threading, time, urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ['FAULTS', 'FakeOpenAIServer', 'serve']

FAULTS = ('429', '500', '503', 'hang', 'garbage', 'empty', 'no-usage', 'zero-usage', 'half-usage', 'cut', 'drop', 'max-garbage',
          'echo-auth')
SETTINGS = ('latency', 'completion_tokens', 'prompt_tokens', 'text', 'fault_rate', 'fault_mix', 'seed')

class _State:
    def __init__(self, latency=0.0, completion_tokens=16, prompt_tokens=None, text=None, faults=(), model_id='fake',
                 fault_rate=0.0, fault_mix=('429', '500'), seed=0):
        self.latency, self.completion_tokens, self.prompt_tokens, self.text = latency, completion_tokens, prompt_tokens, text
        self.faults, self.model_id, self.lock = [str(f) for f in faults], model_id, threading.Lock()
        self.fault_rate, self.fault_mix, self.rng = fault_rate, [str(f) for f in fault_mix], random.Random(seed)
        self.requests = self.in_flight = self.max_in_flight = 0
        self.injected, self.auth = Counter(), set()

    def set(self, key, value):
        with self.lock:
            if key == 'seed': self.rng = random.Random(value)
            elif key == 'fault_mix': self.fault_mix = [str(f) for f in value]
            else: setattr(self, key, value)

    def next_fault(self, auth=None):
        with self.lock:
            self.requests += 1
            if auth: self.auth.add(auth)
            if self.faults: f = self.faults.pop(0)
            elif self.fault_rate and self.rng.random() < self.fault_rate: f = self.rng.choice(self.fault_mix)
            else: return None
            self.injected[f.split(':')[0]] += 1
            return f

    def enter(self):
        with self.lock: self.in_flight += 1; self.max_in_flight = max(self.max_in_flight, self.in_flight)
    def leave(self):
        with self.lock: self.in_flight -= 1

def _prompt_tokens(messages) -> int:
    "A plausible prompt size: about 4 bytes per token plus 4 tokens of template per message (always < the byte bound)."
    return sum(4 + len(str(m.get('content', '')).encode()) // 4 for m in messages) + 3

def _garbage(n_tokens:int, rng:random.Random) -> str:
    "`n_tokens` 'tokens' of random characters: ASCII, control characters, accents, CJK, emoji, lone surrogates escaped."
    pools = [(0x20, 0x7e), (0x00, 0x1f), (0xa0, 0x24f), (0x4e00, 0x9fff), (0x1f300, 0x1f64f)]
    out = []
    for _ in range(n_tokens):
        lo, hi = rng.choice(pools)
        out.append(''.join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
    return ''.join(out)

def _make_handler(state:_State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        disable_nagle_algorithm = True   # headers and body go out at once (no 40 ms delayed-ACK stall)
        def log_message(self, *a): pass

        def _send(self, code, body:bytes, ctype='application/json', headers=(), cut=False):
            self.send_response(code)
            self.send_header('Content-Type', ctype); self.send_header('Content-Length', str(len(body)))
            for k, v in headers: self.send_header(k, v)
            self.end_headers()
            if not cut: return self.wfile.write(body)
            self.wfile.write(body[:len(body)//2]); self.wfile.flush()
            self._hang_up()

        def _hang_up(self):
            self.close_connection = True
            try: self.connection.shutdown(socket.SHUT_RDWR)
            except OSError: pass

        def _json(self, code, obj, headers=(), cut=False): self._send(code, json.dumps(obj).encode(), headers=headers, cut=cut)

        def do_GET(self):
            if self.path.rstrip('/') in ('/v1/models', '/models'):
                return self._json(200, {'object': 'list', 'data': [{'id': state.model_id, 'object': 'model', 'owned_by': 'bench'}]})
            if self.path == '/admin/stats':
                with state.lock: return self._json(200, {'requests': state.requests, 'faults_left': len(state.faults),
                                                         'max_in_flight': state.max_in_flight, 'injected': dict(state.injected),
                                                         'auth': sorted(state.auth)})
            if self.path in ('/health', '/'): return self._json(200, {'status': 'ok'})
            self._json(404, {'error': {'message': f'no route {self.path}'}})

        def do_POST(self):
            n = int(self.headers.get('Content-Length') or 0)
            body = json.loads(self.rfile.read(n) or b'{}')
            if self.path == '/admin/faults':
                with state.lock: state.faults = [str(f) for f in body.get('faults', [])]
                for k in SETTINGS:
                    if k in body: state.set(k, body[k])
                if body.get('reset_count'):
                    with state.lock: state.requests = state.max_in_flight = 0; state.injected.clear(); state.auth.clear()
                return self._json(200, {'ok': True})
            if self.path.rstrip('/') not in ('/v1/chat/completions', '/chat/completions'):
                return self._json(404, {'error': {'message': f'no route {self.path}'}})
            state.enter()
            try: self._complete(body)
            finally: state.leave()

        def _complete(self, body):
            fault = state.next_fault(self.headers.get('Authorization'))
            if fault == 'hang': time.sleep(3600); return
            if fault == 'drop': return self._hang_up()
            if state.latency: time.sleep(state.latency)
            if fault and fault.split(':')[0].isdigit():
                code, _, wait = fault.partition(':')
                return self._json(int(code), {'error': {'message': f'injected fault {code}', 'type': 'fake', 'code': int(code)}},
                                  headers=[('Retry-After', wait or '0')] if code == '429' else ())
            if fault == 'echo-auth':
                msg = f"Incorrect API key provided: {self.headers.get('Authorization', '(none)')}"
                return self._json(401, {'error': {'message': msg, 'type': 'invalid_request_error', 'code': 'invalid_api_key'}})
            if fault == 'garbage': return self._send(200, b'{"id": "chatcmpl-fake", "choices": [<html>not json', ctype='application/json')
            msgs, cap = body.get('messages', []), int(body.get('max_tokens') or 1 << 30)
            pt = state.prompt_tokens if state.prompt_tokens is not None else _prompt_tokens(msgs)
            if fault == 'max-garbage':
                with state.lock: rng = random.Random(state.rng.random())
                ct, text = cap, _garbage(cap, rng)
            else:
                ct = min(cap, state.completion_tokens)
                text = state.text if state.text is not None else ' '.join(['tok'] * ct)
            if body.get('stream'): return self._stream(body, text, pt, ct, cap, cut=fault == 'cut')
            choices = [] if fault == 'empty' else [{'index': 0, 'message': {'role': 'assistant', 'content': text},
                                                    'finish_reason': 'length' if ct == cap else 'stop'}]
            resp = {'id': 'chatcmpl-fake', 'object': 'chat.completion', 'created': 0, 'model': body.get('model', 'fake'), 'choices': choices}
            if fault == 'zero-usage': resp['usage'] = {'prompt_tokens': 0, 'completion_tokens': 0, 'total_tokens': 0}
            elif fault == 'half-usage': resp['usage'] = {'prompt_tokens': pt}
            elif fault != 'no-usage': resp['usage'] = {'prompt_tokens': pt, 'completion_tokens': ct, 'total_tokens': pt + ct}
            self._json(200, resp, cut=fault == 'cut')

        def _stream(self, body, text, pt, ct, cap, cut=False):
            "Server-sent events, one chunk per word; `cut` stops half-way and hangs up."
            words = text.split(' ')
            chunk = lambda delta, fin=None: {'id': 'chatcmpl-fake', 'object': 'chat.completion.chunk', 'created': 0,
                                             'model': body.get('model', 'fake'),
                                             'choices': [{'index': 0, 'delta': delta, 'finish_reason': fin}]}
            events = [chunk({'role': 'assistant', 'content': ''})] + [chunk({'content': w + ' '}) for w in words]
            events.append(chunk({}, 'length' if ct == cap else 'stop') | {'usage': {'prompt_tokens': pt, 'completion_tokens': ct,
                                                                                     'total_tokens': pt + ct}})
            self.send_response(200)
            self.send_header('Content-Type', 'text/event-stream'); self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            def emit(data:bytes):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n"); self.wfile.flush()
            for i, e in enumerate(events):
                if cut and i >= len(events)//2: return self._hang_up()
                emit(f"data: {json.dumps(e)}\n\n".encode())
            emit(b"data: [DONE]\n\n"); self.wfile.write(b"0\r\n\r\n")
    return Handler

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        "A client that hangs up mid-answer (a timeout, a killed process) is normal here; anything else is printed."
        if not isinstance(sys.exc_info()[1], ConnectionError): super().handle_error(request, client_address)

def serve(port=0, host='127.0.0.1', ready=None, **kw):
    "Run the server in this process until interrupted; `ready(port)` is called once it listens."
    srv = _Server((host, port), _make_handler(_State(**kw)))
    srv.daemon_threads = True
    if ready: ready(srv.server_address[1])
    try: srv.serve_forever(poll_interval=0.05)
    finally: srv.server_close()

class FakeOpenAIServer:
    "Start/stop the fake server from Python (a child process by default; `in_process=True` runs it in a thread)."
    def __init__(self, latency=0.0, completion_tokens=16, prompt_tokens=None, text=None, faults=(), port=0,
                 in_process=False, model_id='fake', fault_rate=0.0, fault_mix=('429', '500'), seed=0):
        self.kw = dict(latency=latency, completion_tokens=completion_tokens, prompt_tokens=prompt_tokens, text=text,
                       faults=[str(f) for f in faults], model_id=model_id)
        self.chaos = dict(fault_rate=fault_rate, fault_mix=[str(f) for f in fault_mix], seed=seed)
        self.port, self.in_process, self.proc, self._srv = port, in_process, None, None

    @property
    def api_base(self): return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        if self.in_process:
            self._srv = _Server(('127.0.0.1', self.port), _make_handler(_State(**self.kw, **self.chaos)))
            self._srv.daemon_threads = True
            self.port = self._srv.server_address[1]
            threading.Thread(target=self._srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
            return self
        args = [sys.executable, os.path.abspath(__file__), '--port', str(self.port), '--latency', str(self.kw['latency']),
                '--completion-tokens', str(self.kw['completion_tokens']), '--model-id', self.kw['model_id']]
        if self.kw['prompt_tokens'] is not None: args += ['--prompt-tokens', str(self.kw['prompt_tokens'])]
        if self.kw['text'] is not None: args += ['--text', self.kw['text']]
        if self.kw['faults']: args += ['--faults', ','.join(self.kw['faults'])]
        if self.chaos['fault_rate']:
            args += ['--fault-rate', str(self.chaos['fault_rate']), '--fault-mix', ','.join(self.chaos['fault_mix']),
                     '--seed', str(self.chaos['seed'])]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith('PORT '): self.stop(); raise RuntimeError(f'fake server did not start: {line!r}')
        self.port = int(line.split()[1])
        return self

    def _admin(self, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r: return json.loads(r.read())

    def set_faults(self, faults, reset_count=True, **settings):
        "Queue `faults` for the next requests (and optionally change latency, completion_tokens, prompt_tokens, text, fault_rate, fault_mix, seed)."
        bad = sorted(set(settings) - set(SETTINGS))
        if bad: raise TypeError(f"unknown setting(s) {', '.join(bad)}; known: {', '.join(SETTINGS)}")
        return self._admin('/admin/faults', {'faults': [str(f) for f in faults], 'reset_count': reset_count, **settings})

    def stats(self) -> dict: return self._admin('/admin/stats')

    def stop(self):
        if self._srv: self._srv.shutdown(); self._srv.server_close(); self._srv = None
        if self.proc:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
            self.proc.stdout.close(); self.proc = None

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--latency', type=float, default=0.0, help='seconds to sleep before answering')
    ap.add_argument('--completion-tokens', type=int, default=16)
    ap.add_argument('--prompt-tokens', type=int, default=None, help='fixed prompt_tokens in usage (default: estimated)')
    ap.add_argument('--text', default=None)
    ap.add_argument('--faults', default='', help=f"comma-separated faults for the first requests; any of {', '.join(FAULTS)}")
    ap.add_argument('--fault-rate', type=float, default=0.0, help='probability that a request draws a fault from --fault-mix')
    ap.add_argument('--fault-mix', default='429,500', help='comma-separated faults drawn at --fault-rate')
    ap.add_argument('--seed', type=int, default=0, help='seed of the fault draws')
    ap.add_argument('--model-id', default='fake', help='the model id /v1/models lists')
    a = ap.parse_args()
    def ready(port): print(f'PORT {port}', flush=True)
    try: serve(a.port, ready=ready, latency=a.latency, completion_tokens=a.completion_tokens, prompt_tokens=a.prompt_tokens,
               text=a.text, faults=[f for f in a.faults.split(',') if f], model_id=a.model_id, fault_rate=a.fault_rate,
               fault_mix=[f for f in a.fault_mix.split(',') if f], seed=a.seed)
    except KeyboardInterrupt: pass
