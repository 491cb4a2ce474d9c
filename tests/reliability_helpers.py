"Shared pieces of the reliability tests (tests/test_reliability_*.py): pools pointing at the fake server, fast retries, env."
import os
from pathlib import Path
import yaml
from bamas_nb.provider import RetryPolicy

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=2.0)   # three attempts, almost no waiting
MATH_REPLY = 'ACCEPT. The total is \\boxed{150}.'                # a reply every topology can work with

def pool_dict(api_base:str, max_tokens:int=64) -> dict:
    "A two-tier pool whose models both live on the fake server at `api_base`."
    return {'llms': [
        dict(name='strong', model='openai/fake-strong', api_base=api_base, tier=1, in_price=0.27, out_price=1.10, max_tokens=max_tokens),
        dict(name='cheap', model='openai/fake-cheap', api_base=api_base, tier=2, in_price=0.10, out_price=0.40, max_tokens=max_tokens)]}

def write_pool(path, api_base:str, **kw) -> Path:
    "Write `pool_dict(api_base)` as a pool YAML file at `path`."
    p = Path(path); p.write_text(yaml.safe_dump(pool_dict(api_base, **kw))); return p

def cli_env(tmp:Path, **extra) -> dict:
    "Environment for a `bamas` child process that writes nothing outside `tmp` (call cache, user cache) and retries fast."
    return {'BAMAS_CACHE': str(tmp/'calls.sqlite'), 'XDG_CACHE_HOME': str(tmp/'xdg'), 'BAMAS_BACKOFF': '0.01',
            'BAMAS_RECORD': '', 'PYTHONUNBUFFERED': '1', **{k: str(v) for k, v in extra.items()}}

def run_cli(*argv, env=None):
    "`bamas *argv` in this process (what the script runs, without its start-up), `env` added: (exit status, stdout, stderr)."
    import contextlib, io, pytest
    from bamas_nb import cli
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in (env or {}).items(): mp.setenv(k, str(v))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()

def one_line_error(err:str, command:str) -> bool:
    "True when stderr is exactly one line `bamas COMMAND: error: …` and carries no traceback."
    return err.startswith(f'bamas {command}: error: ') and err.count('\n') == 1 and 'Traceback' not in err

# --- a fork server for `bamas` commands ---

_FORK_SERVER = r'''
import json, os, sys, threading, traceback
import tqdm
tqdm.tqdm.monitor_interval = 0                     # no monitor thread: a fork must not inherit a thread's held locks
import bamas_nb.cli, bamas_nb.experience, bamas_nb.topologies, bamas_nb.meter, bamas_nb.tasks
bamas_nb.provider.litellm_module()                      # everything a command needs is imported once, here
for name in sys.argv[1:]: bamas_nb.tasks.load_tasks(name)   # and the data sets it will read are parsed once
print('READY' if threading.active_count() == 1 else f'THREADS {[t.name for t in threading.enumerate()]}', flush=True)
for line in sys.stdin:
    req = json.loads(line)
    if req['op'] == 'start':
        pid = os.fork()
        if pid == 0:
            os.environ.update(req['env'])
            fd = os.open(req['log'], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(fd, 1); os.dup2(fd, 2); os.close(fd)
            try: rc = bamas_nb.cli.main(req['argv'])
            except BaseException: traceback.print_exc(); rc = 99
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(rc)
        print(pid, flush=True)
    elif req['op'] == 'wait':
        print(os.waitpid(req['pid'], 0)[1], flush=True)
'''

class ForkServer:
    """Runs `bamas` commands as forks of one process that imported the package once: each command is a fresh process
    running `bamas_nb.cli.main(argv)` — what the `bamas` script runs — without the seconds of imports per start.
    Used where a test starts a command many times (the kill -9 loop)."""
    def __init__(self, cwd, env:dict, datasets=()):
        import subprocess, sys
        self.proc = subprocess.Popen([sys.executable, '-c', _FORK_SERVER, *datasets], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=cwd, env={**os.environ, **env})
        ready = self.proc.stdout.readline().strip()
        if ready != 'READY': self.proc.kill(); raise RuntimeError(f'fork server not ready (forking is only safe with one thread): {ready}')

    def _ask(self, **req) -> int:
        import json
        self.proc.stdin.write(json.dumps(req) + '\n'); self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def start(self, argv, env:dict, log) -> int:
        "Start `bamas *argv` with `env` added, stdout and stderr appended to `log`; returns its pid."
        return self._ask(op='start', argv=[str(a) for a in argv], env={k: str(v) for k, v in env.items()}, log=str(log))

    def wait(self, pid:int) -> int:
        "Wait for command `pid` to end; returns its wait status (see os.WIFSIGNALED, os.WEXITSTATUS)."
        return self._ask(op='wait', pid=pid)

    def close(self):
        self.proc.stdin.close(); self.proc.wait(30)
