"Experience generation end to end through litellm against a fake OpenAI-compatible server: rows, resumption, storage."
import json, re, sys
from pathlib import Path
import pandas as pd, pytest, yaml
sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'benchmarks'))
from fake_openai_server import FakeOpenAIServer
from bamas_nb.core import TOPOLOGIES, BamasError, load_pool
from bamas_nb.tasks import load_tasks
from bamas_nb.experience import generate, ExperienceStore, KEY, read_trace, SCHEMA

@pytest.fixture(scope='module')
def server():
    with FakeOpenAIServer(latency=0.0, completion_tokens=20, text='ACCEPT. The total is \\boxed{150}.') as srv: yield srv

@pytest.fixture
def pool_file(server, tmp_path):
    llms = [dict(name='strong', model='openai/fake-strong', api_base=server.api_base, tier=1, in_price=0.27, out_price=1.10, max_tokens=64),
            dict(name='cheap', model='openai/fake-cheap', api_base=server.api_base, tier=2, in_price=0.10, out_price=0.40, max_tokens=64)]
    p = tmp_path/'pool.yaml'; p.write_text(yaml.safe_dump({'llms': llms})); return p

@pytest.fixture(scope='module')
def tasks(): return load_tasks('mini-math', n=2, seed=0)

def test_grid_rows_and_resume(pool_file, tasks, tmp_path):
    pool, out = load_pool(pool_file), tmp_path/'exp'
    df = generate(tasks, [100, 300, 1250], TOPOLOGIES, pool, out, cache=None, concurrency=2, progress=False)
    assert len(df) == 2*3*4 and not df.duplicated(list(KEY)).any()
    assert not df[df.budget == 100].feasible.any()                 # no team fits 100 µ$
    assert (df.cost <= df.budget).all() and df[df.feasible].calls.min() >= 1
    assert list(pd.read_parquet(next(out.glob('part-*.parquet'))).columns) == SCHEMA.names
    assert read_trace(out, df.trace_id[df.feasible].iloc[0])[0]['role'] == 'solve'
    n_parts = len(list(out.glob('part-*.parquet')))
    again = generate(tasks, [100, 300, 1250], TOPOLOGIES, pool, out, cache=None, progress=False)
    assert len(again) == len(df) and len(list(out.glob('part-*.parquet'))) == n_parts     # nothing redone
    for p in sorted(out.glob('part-*.parquet'))[:3]: p.unlink()
    resumed = generate(tasks, [100, 300, 1250], TOPOLOGIES, pool, out, cache=None, progress=False)
    assert len(resumed) == len(df) and not resumed.duplicated(list(KEY)).any()
    ExperienceStore(out).consolidate()
    assert sorted(p.name for p in out.glob('*.parquet')) == ['table.parquet'] and len(ExperienceStore(out).read()) == len(df)

def test_temp_files_never_count(pool_file, tasks, tmp_path):
    out = tmp_path/'exp'
    generate(tasks[:1], [1250], ['linear'], load_pool(pool_file), out, cache=None, progress=False)
    (out/'.part-x.parquet.abc.tmp').write_bytes(b'half a file')     # what a kill -9 mid-write leaves
    assert len(ExperienceStore(out).read()) == 1

def test_corrupt_part_is_named(pool_file, tasks, tmp_path):
    out = tmp_path/'exp'
    generate(tasks[:1], [1250], ['linear'], load_pool(pool_file), out, cache=None, progress=False)
    (out/'part-99999999999999999999-zzzzzz.parquet').write_bytes(b'junk')
    with pytest.raises(BamasError, match='part-99999999999999999999-zzzzzz.parquet: not a readable experience part'): ExperienceStore(out).read()

def test_generate_cli(bamas, pool_file, tmp_path):
    rc, out, err = bamas('generate', '--pool', pool_file, '--dataset', 'mini-math', '--n', '1', '--budgets', '500,1250',
                         '--topologies', 'linear,feedback', '--out', tmp_path/'e', '--cache', 'off', '--consolidate', '--json')
    assert rc == 0, err
    r = json.loads(out)
    assert r['rows'] == 4 and r['over_budget'] == 0 and (tmp_path/'e'/'table.parquet').exists()
    rc, out, err = bamas('generate', '--pool', pool_file, '--dataset', 'mini-math', '--budgets', '500,-1', '--out', tmp_path/'f', '--json')
    assert rc == 2 and json.loads(out)['error'].startswith('--budgets: budget must be > 0')
    rc, out, err = bamas('generate', '--pool', pool_file, '--dataset', 'mini-math', '--topologies', 'mesh', '--out', tmp_path/'f', '--json')
    assert rc == 2 and 'unknown topology' in json.loads(out)['error']

def test_ray_backend_on_a_local_instance(pool_file, tasks, tmp_path):
    ray = pytest.importorskip('ray')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        df = generate(tasks, [100, 1250], ['linear', 'feedback'], load_pool(pool_file), tmp_path/'exp', cache=None, backend='ray', progress=False)
    finally: ray.shutdown()
    local = generate(tasks, [100, 1250], ['linear', 'feedback'], load_pool(pool_file), tmp_path/'exp-local', cache=None, progress=False)
    cols = ['task_id', 'budget', 'topology', 'correct', 'cost', 'calls', 'feasible']
    key = lambda d: d[cols].sort_values(cols[:3]).reset_index(drop=True)
    assert len(df) == 2*2*2 and key(df).equals(key(local))          # same rows as the local backend

@pytest.fixture
def grow(pool_file, tmp_path):
    "Run scripts/grow.py in `tmp_path` (tables, recording and call cache there) against the fake server."
    try: load_tasks('gsm8k', 'test', n=1); load_tasks('math500', 'test', n=1)
    except Exception as e: pytest.skip(f'benchmark data not found: {e}')
    import os, subprocess
    script = Path(__file__).resolve().parent.parent/'scripts'/'grow.py'
    env = {**os.environ, 'BAMAS_RECORDINGS': str(tmp_path/'rec'), 'BAMAS_CACHE': str(tmp_path/'calls.sqlite')}
    def run(*args):
        p = subprocess.run([sys.executable, script, '--pool', pool_file, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        return p.stdout
    return run

def test_grow_benchmark_grid_first_then_the_rest(grow, tmp_path):
    "grow.py --benchmark makes only the benchmark grid of a test table; a plain run then adds the other runs, redoing none."
    out = tmp_path/'data'/'experience'/'gsm8k-test'
    grow('--tables', 'gsm8k-test', '--benchmark', '--n', '1')
    first = ExperienceStore(out).read()
    assert sorted(set(first.budget)) == [500, 1250, 2000] and sorted(set(first.topology)) == sorted(TOPOLOGIES)
    assert len(first) == 12 and (tmp_path/'rec'/'04_benchmarks.jsonl').exists()    # test tables also record their calls
    assert 'tasks with the whole benchmark grid' in grow('--tables', 'gsm8k-test', '--report').lower()
    grow('--tables', 'gsm8k-test', '--n', '1')
    full = ExperienceStore(out).read()
    assert len(full) == 5*7 and not full.duplicated(list(KEY)).any()
    kept = full.merge(first, on=list(KEY), suffixes=('', '_first'))
    assert len(kept) == 12 and (kept.trace_id == kept.trace_id_first).all()       # the 12 benchmark runs were not redone
    report = grow('--tables', 'gsm8k-test', '--report')
    assert '| `gsm8k-test` | 1 (1) | 35 |' in report and '`gsm8k-test` 1.' in report

def test_grow_tables_at_once_share_one_recording(grow, tmp_path):
    "--tables-at-once grows a round's tables side by side; their calls land in one recording, one whole JSON line each."
    grow('--tables', 'gsm8k-test,math500-test', '--benchmark', '--n', '2', '--tables-at-once')
    for name in ('gsm8k-test', 'math500-test'):
        df = ExperienceStore(tmp_path/'data'/'experience'/name).read()
        assert len(df) == 2*12 and df.task_id.nunique() == 2 and not df.duplicated(list(KEY)).any()
    lines = (tmp_path/'rec'/'04_benchmarks.jsonl').read_text().splitlines()
    assert lines and all(json.loads(l)['key'] and json.loads(l)['model'] for l in lines)     # no line torn by another table's

def test_grow_repair_redoes_the_runs_that_do_not_replay(grow, tmp_path):
    "grow.py --repair finds the grid runs whose calls the recording lacks, runs them again, and then they replay."
    grow('--tables', 'gsm8k-test', '--benchmark', '--n', '1')
    rec = tmp_path/'rec'/'04_benchmarks.jsonl'
    lines = rec.read_text().splitlines(keepends=True)
    rec.write_text(''.join(lines[:-3]))                               # as if three answers had never been recorded
    (tmp_path/'calls.sqlite').unlink()
    before = ExperienceStore(tmp_path/'data'/'experience'/'gsm8k-test').read()
    out = grow('--tables', 'gsm8k-test', '--repair')
    n_bad = int(re.search(r'gsm8k-test: (\d+) of 12 grid runs do not replay', out).group(1))
    assert n_bad >= 1 and f'gsm8k-test: redid {n_bad} runs in' in out and '; 0 still do not replay' in out
    after = ExperienceStore(tmp_path/'data'/'experience'/'gsm8k-test').read()
    assert len(after) == 12 and not after.duplicated(list(KEY)).any()
    assert len(rec.read_text().splitlines()) >= len(lines)             # the missing answers were recorded again
    assert 'gsm8k-test: 0 of 12 grid runs do not replay' in grow('--tables', 'gsm8k-test', '--repair')

def test_rows_record_the_sandbox_and_tables_without_the_column_still_read(pool_file, tmp_path):
    "Code rows say how their answer ran; maths rows and tables written without a `sandbox` column read with it empty."
    from bamas_nb.sandbox import sandbox_mode
    df = generate(load_tasks('mini-code', n=1) + load_tasks('mini-math', n=1), [1250], ['naive'], load_pool(pool_file), tmp_path/'exp',
                  cache=None, progress=False)
    assert {d: s if isinstance(s, str) else None for d, s in zip(df.dataset, df.sandbox)} == {'mini-code': sandbox_mode(), 'mini-math': None}
    root = Path(__file__).resolve().parent.parent/'data'/'experience'
    for table in sorted(root.glob('*/table.parquet'))[:2]:
        import pyarrow.parquet as pq
        assert 'sandbox' not in pq.read_schema(table).names
        old = ExperienceStore(table.parent).read()
        assert list(old.columns) == SCHEMA.names and old.sandbox.isna().all() and len(old) > 0
