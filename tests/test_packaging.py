"Where the toolkit's own files are found: shipped pools by name, paths, an installed package's copies, and what the wheel carries."
import json, os, shutil, subprocess, sys, zipfile
from pathlib import Path
import pytest
from conftest import ROOT, POOLS, BAMAS
import bamas_nb.core as core
from bamas_nb.core import BamasError, PoolError, load_pool, pool_file, repo_path, repo_root, shipped

SHIPPED = ['data/pools/local.yaml', 'data/pools/paper.yaml', 'data/policies/local.pt', 'data/policies/README.md',
           'data/tasks/mini_math.jsonl', 'data/tasks/mini_code.jsonl', 'data/tasks/README.md']

def test_in_the_clone_the_repository_files_win():
    assert repo_root() == ROOT
    assert [shipped(r) for r in SHIPPED] == [ROOT/r for r in SHIPPED]
    assert sorted(p.stem for p in shipped('data/pools').glob('*.yaml')) == sorted(core.SHIPPED_POOLS) == ['local', 'local-256', 'paper']

def test_pools_by_name_and_by_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                                  # names never depend on the working directory
    assert load_pool('local') == load_pool(POOLS/'local.yaml') and load_pool('paper').names == ['deepseek-v3', 'gpt-4.1-nano']
    (tmp_path/'mine.yaml').write_text((POOLS/'paper.yaml').read_text())
    assert load_pool('mine.yaml') == load_pool('paper')         # a relative path is a path
    shutil.copy(POOLS/'local.yaml', tmp_path/'custom')           # a plain word that is an existing file, and no shipped name
    assert load_pool('custom') == load_pool('local') and pool_file(Path('local')) == Path('local')
    with pytest.raises(PoolError, match=r"^unknown pool 'lokal': the shipped pools are local, paper, local-256; or give the path of a pool YAML file$"):
        load_pool('lokal')
    with pytest.raises(PoolError, match=r'nope\.yaml: cannot read pool file .*name a shipped pool \(local, paper, local-256\)'): load_pool('nope.yaml')

def test_cli_takes_pool_names_from_any_directory(tmp_path):
    run = lambda *a: subprocess.run([str(BAMAS), *a], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    p = run('select', '--pool', 'local', '--budget', '1250', '--json')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)['counts'] == {'qwen-1.5b': 1, 'qwen-0.5b': 2}
    (tmp_path/'p.yaml').write_text((POOLS/'paper.yaml').read_text())
    assert json.loads(run('select', '--pool', 'p.yaml', '--budget', '800', '--json').stdout)['counts'] == {'gpt-4.1-nano': 3}
    p = run('select', '--pool', 'nope', '--budget', '500')
    assert p.returncode == 2 and p.stderr == "bamas select: error: unknown pool 'nope': the shipped pools are local, paper, local-256; or give the path of a pool YAML file\n"

@pytest.fixture
def installed(tmp_path, monkeypatch):
    "As an installed wheel sees it: a package folder with copies of the shipped files and no checkout around it."
    pkg = tmp_path/'site-packages'/'bamas_nb'
    for r in SHIPPED:
        (pkg/r).parent.mkdir(parents=True, exist_ok=True); shutil.copy(ROOT/r, pkg/r)
    monkeypatch.setattr(core, '_package_dir', lambda: pkg)
    for v in ('BAMAS_DATA', 'BAMAS_RECORDINGS', 'BAMAS_EXPERIENCE'): monkeypatch.delenv(v, raising=False)
    monkeypatch.chdir(tmp_path)
    from bamas_nb import tasks
    caches = (tasks._load_split, tasks._index)                  # loaded task sets are memoised per process
    for c in caches: c.cache_clear()
    yield pkg
    for c in caches: c.cache_clear()

def test_an_installed_package_reads_its_own_copies(installed):
    from bamas_nb.bamas import load_bamas
    from bamas_nb.tasks import load_tasks, data_dir
    from bamas_nb.core import user_cache_dir
    assert repo_root() is None and shipped('data/pools/local.yaml') == installed/'data/pools/local.yaml'
    assert load_pool('local').source == str(installed/'data/pools/local.yaml')
    assert [t.id for t in load_tasks('mini-math', n=2)] == ['mini-math/2', 'mini-math/10'] and len(load_tasks('mini-code')) == 8
    assert load_bamas().plan(load_tasks('mini-math', n=1)[0], 1250).llms == ['qwen-1.5b', 'qwen-0.5b', 'qwen-0.5b']
    assert data_dir() == user_cache_dir()/'data'

def test_a_missing_shipped_file_is_one_line_naming_the_resource(installed):
    from bamas_nb.bamas import load_bamas
    from bamas_nb.tasks import load_tasks
    from bamas_nb.stores import recordings_dir
    (installed/'data/policies/local.pt').unlink(); (installed/'data/tasks/mini_math.jsonl').unlink()
    with pytest.raises(BamasError, match=r'^package resource bamas_nb/data/tasks/mini_math\.jsonl is missing from the installed bamas-nb; reinstall it'):
        load_tasks('mini-math')
    with pytest.raises(BamasError, match=r'^no default policy checkpoint: package resource bamas_nb/data/policies/local\.pt is missing .*; or pass a checkpoint of your own \(`--policy PATH`, or policy= in Python'):
        load_bamas()
    with pytest.raises(BamasError, match=r'^data/recordings is not in the installed package, only in the bamas-nb repository.*or set BAMAS_RECORDINGS'):
        recordings_dir()
    (installed/'data/pools/local.yaml').unlink()
    with pytest.raises(BamasError, match=r'^package resource bamas_nb/data/pools/local\.yaml is missing'): load_pool('local')

def test_the_cli_reports_a_missing_resource_without_a_traceback(tmp_path):
    # the console script's own code path (bamas_nb.cli.main), in a fresh process that sees a package without its task files
    pkg = tmp_path/'bamas_nb'; (pkg/'data').mkdir(parents=True)
    code = ("import sys, pathlib, bamas_nb.core as c; c._package_dir = lambda: pathlib.Path(sys.argv[1]); "
            "from bamas_nb.cli import main; sys.exit(main(['tasks', '--dataset', 'mini-math', '--n', '2']))")
    p = subprocess.run([sys.executable, '-c', code, str(pkg)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 2 and 'Traceback' not in p.stderr, p.stderr
    assert p.stderr.count('\n') == 1 and 'package resource bamas_nb/data/tasks/mini_math.jsonl is missing' in p.stderr

def test_repo_only_files_come_from_the_checkout_or_the_environment(monkeypatch, tmp_path):
    assert repo_path('data/experience') == ROOT/'data'/'experience'
    monkeypatch.setenv('BAMAS_EXPERIENCE', str(tmp_path))
    from bamas_nb.ablations import experience_root
    assert experience_root() == tmp_path

def test_the_wheel_ships_what_the_defaults_need(tmp_path):
    # a real build of the sdist and, from it, the wheel (CI also installs that wheel: .ci/installed_check.sh)
    p = subprocess.run(['nice', '-n', '19', sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    whl, = tmp_path.glob('*.whl'); sdist, = tmp_path.glob('*.tar.gz')
    names = set(zipfile.ZipFile(whl).namelist())
    assert {f'bamas_nb/{r}' for r in SHIPPED} <= names
    assert not [n for n in names if 'recordings' in n or 'experience/' in n or n.startswith('data/')]
    assert whl.stat().st_size < 1_000_000
    import tarfile
    members = {m.split('/', 1)[1] for m in tarfile.open(sdist).getnames() if '/' in m}
    assert set(SHIPPED) <= members and not [m for m in members if m.startswith(('data/recordings', 'data/experience'))]
