"""A small OpenAI-compatible chat server for benchmarks and fault-injection tests (no model, no network).

It answers `POST /v1/chat/completions` after sleeping a set latency, with a canned reply of a set number of
completion tokens (capped by the request's `max_tokens`) and a `usage` block. Faults can be queued: each
request takes the next fault from the queue until it is empty, then requests succeed again.

Faults: an HTTP status such as 429, 500 or 503 (JSON error body, `Retry-After: 0` on 429), `hang` (sleep past
any client timeout), `garbage` (200 with a body that is not JSON), `no-usage` (a valid reply without `usage`),
`drop` (close the connection without answering).

From Python (the server runs in a child process by default, so it never competes with the client for the GIL):

    with FakeOpenAIServer(latency=0.2, completion_tokens=16) as srv:
        litellm.completion(model='openai/fake', api_base=srv.api_base, api_key='x', messages=[...])
        srv.set_faults([429, 500]); srv.stats()   # {'requests': ..., 'faults_left': ..., 'max_in_flight': ...}

From a shell: `python benchmarks/fake_openai_server.py --port 8199 --latency 0.25`.
"""
from __future__ import annotations
import argparse, json, os, socket, subprocess, sys, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ['FakeOpenAIServer', 'serve']

class _State:
    def __init__(self, latency=0.0, completion_tokens=16, prompt_tokens=None, text=None, faults=(), model_id='fake'):
        self.latency, self.completion_tokens, self.prompt_tokens, self.text = latency, completion_tokens, prompt_tokens, text
        self.faults, self.model_id, self.lock = list(faults), model_id, threading.Lock()
        self.requests = self.in_flight = self.max_in_flight = 0

    def next_fault(self):
        with self.lock:
            self.requests += 1
            return str(self.faults.pop(0)) if self.faults else None

    def enter(self):
        with self.lock: self.in_flight += 1; self.max_in_flight = max(self.max_in_flight, self.in_flight)
    def leave(self):
        with self.lock: self.in_flight -= 1

def _prompt_tokens(messages) -> int:
    "A plausible prompt size: about 4 bytes per token plus 4 tokens of template per message (always < the byte bound)."
    return sum(4 + len(str(m.get('content', '')).encode()) // 4 for m in messages) + 3

def _make_handler(state:_State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        disable_nagle_algorithm = True   # headers and body go out at once (no 40 ms delayed-ACK stall)
        def log_message(self, *a): pass

        def _send(self, code, body:bytes, ctype='application/json', headers=()):
            self.send_response(code)
            self.send_header('Content-Type', ctype); self.send_header('Content-Length', str(len(body)))
            for k, v in headers: self.send_header(k, v)
            self.end_headers(); self.wfile.write(body)

        def _json(self, code, obj, headers=()): self._send(code, json.dumps(obj).encode(), headers=headers)

        def do_GET(self):
            if self.path.rstrip('/') in ('/v1/models', '/models'):
                return self._json(200, {'object': 'list', 'data': [{'id': state.model_id, 'object': 'model', 'owned_by': 'bench'}]})
            if self.path == '/admin/stats':
                with state.lock: return self._json(200, {'requests': state.requests, 'faults_left': len(state.faults),
                                                         'max_in_flight': state.max_in_flight})
            if self.path in ('/health', '/'): return self._json(200, {'status': 'ok'})
            self._json(404, {'error': {'message': f'no route {self.path}'}})

        def do_POST(self):
            n = int(self.headers.get('Content-Length') or 0)
            body = json.loads(self.rfile.read(n) or b'{}')
            if self.path == '/admin/faults':
                with state.lock: state.faults = [str(f) for f in body.get('faults', [])]
                for k in ('latency', 'completion_tokens', 'prompt_tokens', 'text'):
                    if k in body: setattr(state, k, body[k])
                if body.get('reset_count'):
                    with state.lock: state.requests = state.max_in_flight = 0
                return self._json(200, {'ok': True})
            if self.path.rstrip('/') not in ('/v1/chat/completions', '/chat/completions'):
                return self._json(404, {'error': {'message': f'no route {self.path}'}})
            state.enter()
            try: self._complete(body)
            finally: state.leave()

        def _complete(self, body):
            fault = state.next_fault()
            if fault == 'hang': time.sleep(3600); return
            if fault == 'drop':
                self.close_connection = True
                try: self.connection.shutdown(socket.SHUT_RDWR)
                except OSError: pass
                return
            if state.latency: time.sleep(state.latency)
            if fault and fault.isdigit():
                code = int(fault)
                return self._json(code, {'error': {'message': f'injected fault {code}', 'type': 'fake', 'code': code}},
                                  headers=[('Retry-After', '0')] if code == 429 else ())
            if fault == 'garbage': return self._send(200, b'<html>not json</html>', ctype='application/json')
            msgs = body.get('messages', [])
            ct = min(int(body.get('max_tokens') or 1 << 30), state.completion_tokens)
            text = state.text if state.text is not None else ' '.join(['tok'] * ct)
            pt = state.prompt_tokens if state.prompt_tokens is not None else _prompt_tokens(msgs)
            resp = {'id': 'chatcmpl-fake', 'object': 'chat.completion', 'created': 0, 'model': body.get('model', 'fake'),
                    'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': text},
                                 'finish_reason': 'length' if ct == body.get('max_tokens') else 'stop'}]}
            if fault != 'no-usage': resp['usage'] = {'prompt_tokens': pt, 'completion_tokens': ct, 'total_tokens': pt + ct}
            self._json(200, resp)
    return Handler

def serve(port=0, host='127.0.0.1', ready=None, **kw):
    "Run the server in this process until interrupted; `ready(port)` is called once it listens."
    srv = ThreadingHTTPServer((host, port), _make_handler(_State(**kw)))
    srv.daemon_threads = True
    if ready: ready(srv.server_address[1])
    try: srv.serve_forever(poll_interval=0.05)
    finally: srv.server_close()

class FakeOpenAIServer:
    "Start/stop the fake server from Python (a child process by default; `in_process=True` runs it in a thread)."
    def __init__(self, latency=0.0, completion_tokens=16, prompt_tokens=None, text=None, faults=(), port=0,
                 in_process=False, model_id='fake'):
        self.kw = dict(latency=latency, completion_tokens=completion_tokens, prompt_tokens=prompt_tokens, text=text,
                       faults=[str(f) for f in faults], model_id=model_id)
        self.port, self.in_process, self.proc, self._srv = port, in_process, None, None

    @property
    def api_base(self): return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        if self.in_process:
            self._srv = ThreadingHTTPServer(('127.0.0.1', self.port), _make_handler(_State(**self.kw)))
            self._srv.daemon_threads = True
            self.port = self._srv.server_address[1]
            threading.Thread(target=self._srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
            return self
        args = [sys.executable, os.path.abspath(__file__), '--port', str(self.port), '--latency', str(self.kw['latency']),
                '--completion-tokens', str(self.kw['completion_tokens']), '--model-id', self.kw['model_id']]
        if self.kw['prompt_tokens'] is not None: args += ['--prompt-tokens', str(self.kw['prompt_tokens'])]
        if self.kw['text'] is not None: args += ['--text', self.kw['text']]
        if self.kw['faults']: args += ['--faults', ','.join(self.kw['faults'])]
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
        "Queue `faults` for the next requests (and optionally change latency, completion_tokens, prompt_tokens, text)."
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
    ap.add_argument('--faults', default='', help='comma-separated faults for the first requests, e.g. 429,500,hang')
    ap.add_argument('--model-id', default='fake', help='the model id /v1/models lists')
    a = ap.parse_args()
    def ready(port): print(f'PORT {port}', flush=True)
    try: serve(a.port, ready=ready, latency=a.latency, completion_tokens=a.completion_tokens, prompt_tokens=a.prompt_tokens,
               text=a.text, faults=[f for f in a.faults.split(',') if f], model_id=a.model_id)
    except KeyboardInterrupt: pass
