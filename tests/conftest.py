"Shared pytest fixtures: paths, and running the `bamas` console script as a user would."
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
POOLS = ROOT/'data'/'pools'
if str(ROOT/'benchmarks') not in sys.path: sys.path.insert(0, str(ROOT/'benchmarks'))   # fake_openai_server, load_test
BAMAS = Path(sys.executable).parent/'bamas'

def run_bamas(*args, timeout=300, env=None):
    "Run the installed `bamas` script; return (returncode, stdout, stderr)."
    p = subprocess.run([str(BAMAS), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                       env={**os.environ, **(env or {})})
    return p.returncode, p.stdout, p.stderr

@pytest.fixture
def bamas(): return run_bamas

@pytest.fixture
def paper_pool(): return POOLS/'paper.yaml'

@pytest.fixture
def local_pool(): return POOLS/'local.yaml'
