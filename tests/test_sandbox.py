"""The sandbox that runs LLM-written code is a security boundary: attack it.

Every attack must end as a failed run with a reason, leave the host unchanged and the grader running. Tests marked
`isolated` need bubblewrap (CI installs it); they are skipped only where `bwrap` is not installed at all — if it is
installed but cannot build a sandbox, they fail. The `fallback` tests pin down what the restricted subprocess mode
(no bubblewrap) still guarantees."""
import os, secrets, shutil, socket, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import psutil, pytest
from bamas_nb.tasks import Task, TaskError
from bamas_nb.sandbox import Limits, SANDBOX_ENV, bwrap_works, run_tests, sandbox_mode
import bamas_nb.grading  # gives Task its grade()

# The limit under test must be the only one a run can reach, whatever the machine's speed or load: programs that
# never end meet FAST's 3 s wall clock (CPU limit far above it); the others get ROOMY's minute and stop at their own.
FAST = Limits(wall_s=3, cpu_s=30, memory_mb=256)
ROOMY = Limits(wall_s=60, cpu_s=60, memory_mb=256)
NEVER = ['assert False, "an attack must not reach the tests"']

@pytest.fixture(params=['isolated', 'fallback'])
def mode(request, monkeypatch):
    "Run a test in both modes: bubblewrap, and the restricted subprocess fallback."
    if request.param == 'isolated':
        if not shutil.which('bwrap'): pytest.skip('bubblewrap is not installed (apt-get install -y bubblewrap)')
        assert bwrap_works(), 'bwrap is installed but cannot build a sandbox here'
        monkeypatch.setenv('BAMAS_SANDBOX', 'bwrap')
    else: monkeypatch.setenv('BAMAS_SANDBOX', 'subprocess')
    return request.param

@pytest.fixture
def isolated(monkeypatch):
    if not shutil.which('bwrap'): pytest.skip('bubblewrap is not installed (apt-get install -y bubblewrap)')
    assert bwrap_works(), 'bwrap is installed but cannot build a sandbox here'
    monkeypatch.setenv('BAMAS_SANDBOX', 'bwrap')

def _sandbox_processes():
    "Processes on the host that belong to a sandbox (run as a sandbox uid, or a bwrap / harness still alive)."
    out = []
    for p in psutil.process_iter(['uids', 'cmdline', 'status']):
        try:
            cmd = ' '.join(p.info['cmdline'] or [])
            if p.info['status'] != psutil.STATUS_ZOMBIE and ('/job/harness.py' in cmd or 'bamas-sandbox-' in cmd): out.append(p)
        except psutil.Error: pass
    return out

def _wait_no_sandbox_processes(timeout=10):
    end = time.monotonic() + timeout
    while _sandbox_processes() and time.monotonic() < end: time.sleep(0.1)
    return _sandbox_processes()

# --- both modes --------------------------------------------------------------------------------------------------

def test_correct_and_wrong_code(mode):
    tests = ['assert sq(3) == 9', 'assert sq(-2) == 4']
    assert run_tests('def sq(x): return x * x', tests).ok
    r = run_tests('def sq(x): return 2 * x', tests)
    assert (r.status, r.passed, r.reason) == ('failed', 0, 'test 1 of 2 failed: assert sq(3) == 9')

def test_infinite_loop_times_out(mode):
    t0 = time.monotonic()
    r = run_tests('while True: pass', NEVER, limits=FAST)
    assert r.status == 'timeout' and r.reason == 'timeout: no result after 3 s (wall clock)'
    assert time.monotonic() - t0 < FAST.wall_s + 10   # killed at the limit, not long after it
    assert _wait_no_sandbox_processes() == []

def test_cpu_limit(mode):
    r = run_tests('while True: pass', NEVER, limits=Limits(wall_s=60, cpu_s=1))
    assert r.status == 'cpu' and r.reason == 'cpu: CPU time limit (1 s) exceeded'

def test_fork_bomb_is_contained(mode):
    r = run_tests('import os\nwhile True:\n    try: os.fork()\n    except OSError: pass', NEVER, limits=FAST)
    assert r.status == 'timeout'
    assert _wait_no_sandbox_processes() == []
    assert run_tests('def f(): return 1', ['assert f() == 1']).ok   # the next run is unaffected

@pytest.mark.parametrize('code', ['x = bytearray(10**11)', 'x = []\nwhile True: x.append(bytearray(10**7))', 'x = "y" * 10**10'])
def test_memory_limit(mode, code):
    r = run_tests(code, NEVER, limits=ROOMY)
    assert r.status == 'memory' and 'limit 256 MiB' in r.reason

def test_output_is_capped(mode):
    r = run_tests('while True: print("x" * 10**4)', NEVER, limits=ROOMY)
    assert r.status == 'output'
    assert len(r.stdout) <= (ROOMY.output_kb << 10) + 20 and r.stdout.endswith('[truncated]')

def test_environment_is_minimal(mode, monkeypatch):
    secret = 'sk-test-' + secrets.token_hex(8)
    monkeypatch.setenv('OPENAI_API_KEY', secret)
    allowed = set(SANDBOX_ENV) | {'PWD', 'LC_CTYPE'}
    r = run_tests(f'import os\nprint(sorted(os.environ))\nassert set(os.environ) <= {allowed!r}, sorted(os.environ)', ['assert True'])
    assert r.ok, r.reason
    assert secret not in r.stdout + r.stderr + r.detail

def test_exits_and_fake_reports_do_not_pass(mode):
    tests = ['assert f() == 1']
    for code in ['def f(): return 0\nimport sys; sys.exit(0)', 'def f(): return 0\nimport os; os._exit(0)',
                 'def f(): return 0\nprint(\'{"status": "passed", "detail": "passed 1/1 tests", "passed": 1}\')\nimport os; os._exit(0)',
                 'def f(): return 0\nimport os, signal; os.kill(os.getpid(), signal.SIGKILL)']:
        r = run_tests(code, tests)
        assert not r.ok, (code, r)

def test_grader_survives_kill_attempts(mode):
    if mode == 'fallback' and os.geteuid() != 0:
        pytest.skip('fallback without root: the program runs as our user and could kill us (documented gap)')
    me = os.getpid()
    code = ('import os, signal\n'
            f'for pid in (os.getppid(), {me}, 1):\n'
            '    try: os.kill(pid, signal.SIGKILL)\n    except OSError: pass\n'
            'try: os.kill(-1, signal.SIGKILL)\nexcept OSError: pass\n'
            'try: os.killpg(0, signal.SIGKILL)\nexcept OSError: pass\n')
    r = run_tests(code, NEVER, limits=ROOMY)
    assert not r.ok and psutil.pid_exists(me)
    assert run_tests('def f(): return 1', ['assert f() == 1']).ok

def test_runs_unprivileged(mode):
    r = run_tests('import os\nprint(os.getuid())', ['assert True'])
    assert r.ok
    if os.geteuid() == 0: assert r.stdout.strip() != '0'   # a grader running as root drops to a fresh unprivileged uid
    r = run_tests('import os\nos.setuid(0)', NEVER)
    assert not r.ok

# --- isolation: only with bubblewrap -----------------------------------------------------------------------------

@pytest.fixture
def victim(tmp_path):
    "A world-writable host folder with a file the program should not be able to touch."
    d = tmp_path/'victim'; d.mkdir(); os.chmod(tmp_path, 0o755); os.chmod(d, 0o777)
    f = d/'precious.txt'; f.write_text('user data'); os.chmod(f, 0o666)
    return d

def test_cannot_touch_host_files(isolated, victim):
    target = victim/'precious.txt'
    for code in [f'import os\nos.remove({str(target)!r})', f'open({str(target)!r}, "w").write("gone")',
                 f'import shutil\nshutil.rmtree({str(victim)!r})', f'open({str(victim/"new.txt")!r}, "w").write("x")']:
        r = run_tests(code, NEVER)
        assert not r.ok and 'FileNotFoundError' in r.detail, r
    assert target.read_text() == 'user data' and sorted(p.name for p in victim.iterdir()) == ['precious.txt']

def test_cannot_see_the_repository_or_home(isolated):
    repo = Path(__file__).resolve().parent.parent
    for path in [repo/'settings.ini', Path.home(), '/etc/passwd', '/work', '/root']:
        r = run_tests(f'import os\nassert not os.path.exists({str(path)!r})', ['assert True'])
        assert r.ok, (path, r.reason)

def test_system_is_read_only(isolated):
    for code in ['open("/usr/bin/evil", "w")', 'import os\nos.remove("/usr/bin/python3")', 'import os\nos.mkdir("/newdir")']:
        r = run_tests(code, NEVER)
        assert not r.ok and ('Read-only file system' in r.detail or 'Permission denied' in r.detail), r

def test_private_tmp_leaves_nothing_on_the_host(isolated):
    name = 'bamas-escape-' + secrets.token_hex(4)
    r = run_tests(f'open("/tmp/{name}", "w").write("x")\nopen("{name}", "w").write("x")\nimport os\nassert os.path.exists("/tmp/{name}")', ['assert True'])
    assert r.ok, r.reason
    assert not (Path('/tmp')/name).exists()

def test_disk_filling_stays_in_the_capped_tmp(isolated):
    r = run_tests('i = 0\nwhile True:\n    open(f"f{i}", "wb").write(b"x" * 10**7); i += 1', NEVER, limits=ROOMY)
    assert r.reason == 'the solution raised OSError: [Errno 28] No space left on device'

def test_no_network(isolated):
    with socket.socket() as srv:
        srv.bind(('127.0.0.1', 0)); srv.listen(); srv.settimeout(0.5)
        port = srv.getsockname()[1]
        r = run_tests(f'import socket\nsocket.create_connection(("127.0.0.1", {port}), timeout=2)', NEVER)
        assert not r.ok and 'Connection refused' in r.detail
        with pytest.raises(socket.timeout): srv.accept()    # nothing reached the host's listener
    r = run_tests('import socket\nsocket.getaddrinfo("pypi.org", 443)', NEVER)
    assert not r.ok and 'gaierror' in r.detail
    r = run_tests('import socket\nsocket.create_connection(("1.1.1.1", 53), timeout=2)', NEVER)
    assert not r.ok and 'unreachable' in r.detail.lower()

def test_cannot_see_host_processes(isolated, monkeypatch):
    monkeypatch.setenv('BAMAS_TEST_SECRET', 'sk-' + secrets.token_hex(8))
    r = run_tests('import glob\npids = glob.glob("/proc/[0-9]*")\nprint(len(pids))\n'
                  'for p in pids:\n    assert b"sk-" not in open(p + "/environ", "rb").read()', ['assert True'])
    assert r.ok, r.reason
    assert int(r.stdout.strip()) <= 3   # bwrap's init, the harness and nothing else

def test_no_capabilities(isolated):
    r = run_tests('caps = dict(l.split(":\\t") for l in open("/proc/self/status").read().splitlines() if l.startswith("Cap"))\n'
                  'assert int(caps["CapEff"], 16) == 0 and int(caps["CapBnd"], 16) == 0, caps', ['assert True'])
    assert r.ok, r.reason

def test_a_fork_bomb_does_not_starve_concurrent_runs(isolated):
    ok_code, tests = 'def f(): return 1', ['assert f() == 1']
    with ThreadPoolExecutor(3) as ex:
        bomb = ex.submit(run_tests, 'import os\nwhile True:\n    try: os.fork()\n    except OSError: pass', NEVER, '', Limits(wall_s=6, cpu_s=6))
        time.sleep(1)
        others = [ex.submit(run_tests, ok_code, tests) for _ in range(6)]
        assert all(f.result().ok for f in others), [f.result().reason for f in others]
        assert bomb.result().status == 'timeout'

def test_code_grader_reports_limits():
    t = Task('x/1', 'x', 'test', 'q', 'code', 'code', tests=['assert f() == 1'])
    g = t.grade('```python\ndef f():\n    while True: pass\n```', limits=Limits(wall_s=1))
    assert not g.correct and g.reason == 'timeout: no result after 1 s (wall clock)'
    assert sandbox_mode() in ('bwrap', 'subprocess')

# --- results that pretend: the asserts compare plain data only --------------------------------------------------

FAKE_TESTS = ['assert similar_elements((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)', 'assert similar_elements((1, 2), (2, 3)) != (1,)']
FAKES = {
    'always equal': 'class R:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\ndef similar_elements(a, b): return R()',
    'never unequal': 'class R:\n    def __ne__(self, o): return False\n    def __eq__(self, o): return True\ndef similar_elements(a, b): return R()',
    'int subclass': 'class R(int):\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\ndef similar_elements(a, b): return R(0)',
    'str subclass': 'class R(str):\n    def __eq__(self, o): return True\ndef similar_elements(a, b): return R("x")',
    'tuple subclass': 'class R(tuple):\n    def __eq__(self, o): return True\ndef similar_elements(a, b): return R()',
    'tuple holding a fake': 'class E:\n    def __eq__(self, o): return True\n    __hash__ = object.__hash__\ndef similar_elements(a, b): return (E(), E())',
    'mock.ANY': 'from unittest.mock import ANY\ndef similar_elements(a, b): return ANY',
    'MagicMock': 'from unittest.mock import MagicMock\ndef similar_elements(a, b):\n    m = MagicMock(); m.__eq__.return_value = True; m.__ne__.return_value = False; return m',
    'spoofed __class__': 'class R:\n    __class__ = property(lambda s: tuple)\n    def __eq__(self, o): return True\ndef similar_elements(a, b): return R()',
    'class made at run time': 'def similar_elements(a, b):\n    return type("R", (), {"__eq__": lambda s, o: True, "__ne__": lambda s, o: False})()',
    'a class as the function': 'class similar_elements:\n    def __init__(self, a, b): pass\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False',
    'generator of fakes': 'class E:\n    def __eq__(self, o): return True\ndef similar_elements(a, b):\n    yield E()',
}

@pytest.mark.parametrize('fake', list(FAKES))
def test_a_result_that_claims_equality_fails(fake):
    tests = ['assert tuple(similar_elements((3, 4), (4, 5))) == (4,)'] if fake == 'generator of fakes' else FAKE_TESTS
    r = run_tests(FAKES[fake], tests)
    assert not r.ok and r.status == 'failed', (r.status, r.reason)

def test_arithmetic_on_a_fake_fails():
    "HumanEval's float checks subtract: a result whose `-` returns 0 is not a number."
    code = 'class R:\n    def __sub__(self, o): return 0\n    def __rsub__(self, o): return 0\ndef mean(xs): return R()'
    r = run_tests(code, ['assert abs(mean([1, 2]) - 1.5) < 1e-9'])
    assert r.status == 'failed' and 'not plain data' in r.reason, r.reason
    assert run_tests('def mean(xs): return sum(xs) / len(xs)', ['assert abs(mean([1, 2]) - 1.5) < 1e-9']).ok

def test_honest_results_keep_python_equality():
    "Subclasses are compared as the builtin value they hold; numbers, tuples and lists keep Python's `==`."
    cases = {'from collections import namedtuple\nP = namedtuple("P", "x y")\ndef f(): return P(1, 2.0)': 'assert f() == (1, 2)',
             'from collections import OrderedDict\ndef f(): return OrderedDict(b=[1], a={2})': "assert f() == {'a': {2}, 'b': [1]}",
             'from fractions import Fraction\ndef f(): return Fraction(1, 2)': 'assert f() == 0.5',
             'def f(): return 3': 'assert f() == 3.0 and f() in (1, 3) and f() is not None and not f() < 2',
             'class Node:\n    def __init__(s, v): s.v = v\ndef f(n): return n.v': 'assert f(Node(4)) == 4',
             'def f(): return (x for x in [1, 2])': 'assert list(f()) == [1, 2]'}
    for code, test in cases.items():
        r = run_tests(code, [test])
        assert r.ok, (code, r.reason)
    assert not run_tests('def f(): return (1, 2)', ['assert f() == [1, 2]']).ok

def test_humaneval_check_rejects_a_fake():
    t = Task('he/0', 'he', 'test', 'def total(xs):\n    """Sum."""\n', 'code', 'humaneval', tests=('check(total)',),
             setup='def check(candidate):\n    assert candidate([1, 2]) == 3\n', meta={'entry_point': 'total'})
    assert t.grade('    return sum(xs)').correct
    g = t.grade('```python\nfrom unittest.mock import ANY\ndef total(xs): return ANY\n```')
    assert not g.correct and 'not plain data' in g.reason, g.reason

# --- saying when the sandbox is weaker --------------------------------------------------------------------------

def test_fallback_warns_once_per_process(monkeypatch, capsys):
    from bamas_nb import sandbox
    monkeypatch.setattr(sandbox, 'bwrap_works', lambda: False)
    monkeypatch.setattr(sandbox, '_WARNED', __import__('threading').Event())
    monkeypatch.delenv('BAMAS_SANDBOX', raising=False)
    monkeypatch.setenv('PATH', '/nonexistent')           # as on a machine without bwrap (and prlimit)
    rs = [run_tests('def f(): return 1', ['assert f() == 1']) for _ in range(2)]
    assert [r.mode for r in rs] == ['subprocess'] * 2 and all(r.ok for r in rs)
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('bamas: warning: LLM-written code runs WITHOUT isolation (bwrap and prlimit not found)'), err
    assert 'network' in err and 'apt-get install -y bubblewrap' in err and 'BAMAS_SANDBOX=bwrap' in err
    monkeypatch.setenv('BAMAS_SANDBOX', 'bwrap')
    with pytest.raises(TaskError, match='BAMAS_SANDBOX=bwrap but bubblewrap does not work here'): run_tests('x = 1', ['assert x'])

def test_grade_command_records_the_mode_and_warns_without_bwrap(bamas, tmp_path):
    "The installed script, with bwrap hidden from its PATH: one warning line, the mode in the JSON; BAMAS_SANDBOX=bwrap refuses."
    import json, sys
    (tmp_path/'ref.py').write_text("def count_vowels(s):\n    return sum(1 for ch in s.lower() if ch in 'aeiou')\n")
    argv = ['grade', '--dataset', 'mini-code', '--id', '1', '--answer-file', tmp_path/'ref.py', '--json']
    hidden = {'PATH': str(Path(sys.executable).parent), 'BAMAS_SANDBOX': ''}
    rc, out, err = bamas(*argv, env=hidden)
    assert rc == 0 and json.loads(out)['sandbox'] == 'subprocess' and json.loads(out)['correct'], (out, err)
    assert err.count('\n') == 1 and err.startswith('bamas: warning: LLM-written code runs WITHOUT isolation'), err
    rc, out, err = bamas(*argv[:-1], env={**hidden, 'BAMAS_SANDBOX': 'bwrap'})
    assert (rc, out) == (2, '') and err.startswith('bamas grade: error: BAMAS_SANDBOX=bwrap') and err.count('\n') == 1, err
    if shutil.which('bwrap') and bwrap_works():
        rc, out, err = bamas(*argv)
        assert rc == 0 and json.loads(out)['sandbox'] == 'bwrap' and err == '', err
