"""`bamas generate` killed with SIGKILL at random points, at least 20 times, then resumed: the final table has exactly
the keys (and results) of an uninterrupted run, no duplicates and no torn records, and the call cache stays readable.

The commands run against the fake OpenAI-compatible server with a short latency, so a kill can land anywhere: while
the table is read, between calls, while a part or its traces are written, while the call cache is written. One kill
hit the real `bamas` script; the rest hit forks of one process that imported the package once (the same
`bamas_nb.cli.main`), which keeps each start to a fraction of a second instead of seconds of imports."""
import json, os, random, signal, sqlite3, subprocess, time
from pathlib import Path
import pandas as pd, pyarrow.parquet as pq
from conftest import ROOT, BAMAS
from fake_openai_server import FakeOpenAIServer
from reliability_helpers import MATH_REPLY, write_pool, cli_env, ForkServer
from bamas_nb.core import load_pool
from bamas_nb.stores import CallCache
from bamas_nb.tasks import load_tasks
from bamas_nb.experience import ExperienceStore, generate, read_trace, KEY, SCHEMA

KILLS, REAL_SCRIPT_KILLS = 21, 1
N_TASKS, BUDGETS = 4, (1250, 2000)
RESULT = list(KEY) + ['correct', 'cost', 'calls', 'stopped_by_budget', 'feasible', 'failed_calls', 'selection', 'extracted']

def state(pid) -> str|None:
    "The process state letter from /proc (None once it is gone): 'Z' means it already exited."
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, IndexError): return None

def check_table(out: Path, cache: Path):
    "What must hold after any kill: every part and trace line whole, no key twice, the call cache sound."
    raw = [pq.read_table(p) for p in out.glob('part-*.parquet')]                 # raises on a torn part
    assert all(t.schema.names == SCHEMA.names for t in raw)
    if raw: assert not pd.concat([t.to_pandas() for t in raw]).duplicated(list(KEY)).any(), 'a run was written twice'
    for p in (out/'traces').glob('*.jsonl'):
        for line in p.read_text(encoding='utf-8').splitlines(): json.loads(line)      # raises on a torn line
    if cache.exists():
        with sqlite3.connect(cache) as db: assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
        assert len(CallCache(cache, 'replay')) >= 0                                   # opens and counts through the library

def test_kill_9_at_random_points_then_resume(tmp_path):
    rng = random.Random(20260101)
    out, cache, log = tmp_path/'exp', tmp_path/'calls.sqlite', tmp_path/'generate.log'
    env = cli_env(tmp_path)
    with FakeOpenAIServer(latency=0.0, completion_tokens=20, text=MATH_REPLY) as srv:
        pool = write_pool(tmp_path/'pool.yaml', srv.api_base)
        argv = ['generate', '--pool', pool, '--dataset', 'mini-math', '--n', N_TASKS, '--budgets', ','.join(map(str, BUDGETS)),
                '--out', out, '--concurrency', 2, '--json']

        # the reference: the same grid, uninterrupted, with its own call cache
        t0 = time.perf_counter()
        ref = generate(load_tasks('mini-math', n=N_TASKS), BUDGETS, ['linear', 'star', 'feedback', 'planner'], load_pool(pool),
                       tmp_path/'ref', cache=CallCache(tmp_path/'ref.sqlite', 'rw'), concurrency=2, progress=False)
        t_ref = time.perf_counter() - t0
        assert len(ref) == N_TASKS*len(BUDGETS)*4
        srv.set_faults([], latency=0.15)      # calls now take a while: kills land among calls and writes, not only at start-up

        kills, finished, working, points = 0, 0, 0, []
        # 1. the real console script, killed once it has started working
        for _ in range(REAL_SCRIPT_KILLS):
            with open(log, 'a') as f:
                p = subprocess.Popen([str(BAMAS), *map(str, argv)], cwd=ROOT, env={**os.environ, **env}, stdout=f, stderr=f)
            n0 = len(list(out.glob('part-*.parquet')))
            deadline = time.monotonic() + 120
            while len(list(out.glob('part-*.parquet'))) == n0 and p.poll() is None and time.monotonic() < deadline: time.sleep(0.05)
            time.sleep(rng.uniform(0, 0.5))
            if p.poll() is None: p.send_signal(signal.SIGKILL); kills += 1; working += 1
            assert p.wait(30) in (-signal.SIGKILL, 0)
            check_table(out, cache)

        t_real = time.perf_counter() - t0 - t_ref
        # 2. forks of the fork server, killed after a random delay: during start-up, reading, calling, writing
        fs = ForkServer(ROOT, env, datasets=['mini-math'])
        try:
            max_delay = 0.6         # adapted so that kills keep landing while work is left: shorter after a run that finished
            for i in range(200):
                if kills >= KILLS: break
                left = len(ref) - len(ExperienceStore(out).read())
                pid = fs.start(argv, env, log)
                delay = rng.uniform(0, max_delay)
                time.sleep(delay)
                if state(pid) not in (None, 'Z'):
                    os.kill(pid, signal.SIGKILL); kills += 1; points.append(round(delay, 2)); working += left > 0
                    max_delay = min(0.8, 1.1*max_delay)
                else: max_delay *= 0.7
                status = fs.wait(pid)
                if os.WIFSIGNALED(status): assert os.WTERMSIG(status) == signal.SIGKILL
                else: assert os.WEXITSTATUS(status) == 0, log.read_text()[-2000:]; finished += 1
                check_table(out, cache)
            done_before_resume = len(ExperienceStore(out).read())
            # 3. resume, uninterrupted
            status = fs.wait(fs.start(argv, env, log))
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, log.read_text()[-2000:]
        finally: fs.close()

    assert kills >= KILLS
    check_table(out, cache)
    df = ExperienceStore(out).read()
    key = lambda d: d[RESULT].assign(cost=d.cost.round(6)).sort_values(list(KEY)).reset_index(drop=True)   # sums in any order
    assert set(map(tuple, df[list(KEY)].values)) == set(map(tuple, ref[list(KEY)].values))
    assert not df.duplicated(list(KEY)).any() and len(df) == len(ref)
    diff = key(df).compare(key(ref))
    assert diff.empty, diff.to_string()                                   # same results as the uninterrupted run
    assert all(read_trace(out, t) for t in df.trace_id[df.feasible])     # every run keeps its trace
    assert len(CallCache(cache, 'replay')) > 0
    print(f"\nkill -9 loop: {kills} kills ({REAL_SCRIPT_KILLS} of the bamas script; {working} while runs were left), {finished} "
          f"commands finished before their kill, {done_before_resume}/{len(ref)} runs done before the final resume; uninterrupted reference "
          f"{t_ref:.1f} s, real-script kills {t_real:.1f} s; kill delays (s) {sorted(points)}")
