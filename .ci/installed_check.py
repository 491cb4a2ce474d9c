"""Checks of an installed bamas-nb wheel, run by .ci/installed_check.sh with the fresh venv's python from a temporary
directory: the wheel carries what the defaults need, and the CLI and the default plan work without a clone."""
import json, shutil, subprocess, sys, tarfile, zipfile
from pathlib import Path

SHIPPED = ['data/pools/local.yaml', 'data/pools/paper.yaml', 'data/policies/local.pt', 'data/policies/README.md',
           'data/tasks/mini_math.jsonl', 'data/tasks/mini_code.jsonl', 'data/tasks/README.md']
dist = Path(sys.argv[1])
whl, = dist.glob('*.whl'); sdist, = dist.glob('*.tar.gz')

def bamas(*args, rc=0):
    p = subprocess.run(['bamas', *args], capture_output=True, text=True, timeout=600)
    assert p.returncode == rc, f"bamas {' '.join(args)}: exit {p.returncode}, expected {rc}\n{p.stderr[-3000:]}"
    print(f"ok  bamas {' '.join(args)}")
    return p

# the files: in the wheel under bamas_nb/, in the sdist under data/; the recordings and experience tables in neither
names = set(zipfile.ZipFile(whl).namelist())
missing = [r for r in SHIPPED if f'bamas_nb/{r}' not in names]
assert not missing, f"{whl.name} lacks {missing}"
assert not [n for n in names if 'recordings' in n or 'experience/' in n], 'recordings or experience tables in the wheel'
members = {m.split('/', 1)[1] for m in tarfile.open(sdist).getnames() if '/' in m}
assert set(SHIPPED) <= members, f"{sdist.name} lacks {sorted(set(SHIPPED) - members)}"
assert whl.stat().st_size < 1_000_000, f"{whl.name} is {whl.stat().st_size:,} bytes"
print(f"ok  {whl.name}: {whl.stat().st_size/1e3:,.0f} kB, {len(names)} files, the {len(SHIPPED)} shipped data files included")

import bamas_nb, bamas_nb.core as core
pkg = Path(bamas_nb.__file__).parent
assert 'site-packages' in str(pkg) and core.repo_root() is None, f"bamas_nb imported from {pkg}, not the installed wheel"
print(f"ok  bamas_nb from the venv's site-packages, no checkout (cwd {Path.cwd()})")

out = bamas('--help').stdout
assert all(c in out for c in ('select', 'tasks', 'demo', 'train')), out
r = json.loads(bamas('tasks', '--dataset', 'mini-math', '--n', '2', '--json').stdout)
assert [t['id'] for t in r['tasks']] == ['mini-math/2', 'mini-math/10'] and r['tasks'][0]['answer'] == '150', r
r = json.loads(bamas('select', '--pool', 'local', '--budget', '1250', '--json').stdout)
assert r['counts'] == {'qwen-1.5b': 1, 'qwen-0.5b': 2} and r['est_cost'] <= 1250, r
r = json.loads(bamas('select', '--pool', 'paper', '--budget', '800', '--json').stdout)
assert r['counts'] == {'gpt-4.1-nano': 3}, r
shutil.copy(pkg/'data/pools/paper.yaml', 'my-pool.yaml')                 # a path still works
assert json.loads(bamas('select', '--pool', 'my-pool.yaml', '--budget', '800', '--json').stdout)['counts'] == {'gpt-4.1-nano': 3}

from bamas_nb.bamas import load_bamas
from bamas_nb.tasks import load_tasks
from bamas_nb.core import TOPOLOGIES, BamasError
plan = load_bamas().plan(load_tasks('mini-math', n=1)[0], 1250)
assert plan.topology in TOPOLOGIES and plan.llms == ['qwen-1.5b', 'qwen-0.5b', 'qwen-0.5b'] and plan.est_cost <= 1250, plan
assert abs(sum(plan.probs.values()) - 1) < 1e-3, plan   # probabilities are rounded to 4 places
assert [n for n in plan.notes if 'trained on runs of another pool' not in n] == [], plan   # the policy's pool (local-256) is noted, nothing else
print(f"ok  load_bamas().plan(mini-math/2, 1250 µ$) -> {plan}")

# a shipped file that is missing: one line naming the package resource, never a traceback
for rel, args in [('data/tasks/mini_math.jsonl', ['tasks', '--dataset', 'mini-math', '--n', '2']),
                  ('data/policies/local.pt', ['demo', '--n', '1', '--datasets', 'mini-math']),
                  ('data/pools/local.yaml', ['select', '--pool', 'local', '--budget', '1250'])]:
    f = pkg/rel; f.rename(f.with_name(f.name + '.away'))
    try: err = bamas(*args, rc=2).stderr
    finally: f.with_name(f.name + '.away').rename(f)
    assert err.count('\n') == 1 and 'Traceback' not in err and 'bamas_nb/' + rel in err, err
    print(f"    {err.strip()}")
print('installed wheel: all checks passed')
