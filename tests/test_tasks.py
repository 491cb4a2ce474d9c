"Tasks, loaders, graders and the `bamas tasks` / `bamas grade` commands, as users meet them."
import json, os, re, threading
import pytest
from hypothesis import given, strategies as st
from bamas_nb.tasks import DATASETS, MBPP_SPLITS, DataNotFound, Task, TaskError, get_task, last_boxed, load_tasks, sample_tasks
from bamas_nb.grading import extract_code, extract_number, math_equal

OFFLINE = {'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}

def _have_benchmarks():
    try: load_tasks('gsm8k', n=1); return True
    except DataNotFound:
        if os.environ.get('BAMAS_DATA'): raise   # CI points BAMAS_DATA at the data: a miss there is a failure
        return False

needs_data = pytest.mark.skipif(not _have_benchmarks(), reason='benchmark files not found (set BAMAS_DATA or provide ../shared/data)')

# --- the repo's own sets work anywhere -------------------------------------------------------------------------

def test_mini_sets_work_without_benchmark_data(bamas, tmp_path):
    env = {'BAMAS_DATA': str(tmp_path), **OFFLINE}
    rc, out, err = bamas('tasks', '--dataset', 'mini-code', '--n', '3', '--json', env=env)
    assert rc == 0, err
    r = json.loads(out)
    assert [t['id'].split('/')[0] for t in r['tasks']] == ['mini-code'] * 3
    assert all(t['entry_point'] and len(t['tests']) == 3 for t in r['tasks'])
    rc, out, err = bamas('tasks', '--dataset', 'gsm8k', '--json', env=env)
    assert rc == 2 and 'Traceback' not in err and err.count('\n') == 1
    msg = json.loads(out)['error']
    assert msg.startswith(f'gsm8k: looked for {tmp_path}/gsm8k/test.jsonl (from BAMAS_DATA)')
    assert 'openai/gsm8k' in msg and 'BAMAS_DATA' in msg

def test_mini_references_grade_correct():
    for name in ('mini-math', 'mini-code'):
        for t in load_tasks(name):
            g = t.grade(t.reference)
            assert g.correct, (t.id, g.reason)

# --- sampling and ids ------------------------------------------------------------------------------------------

def test_sampling_is_deterministic_and_nested():
    a, b = load_tasks('mini-math', n=5, seed=3), load_tasks('mini-math', n=5, seed=3)
    assert a == b and load_tasks('mini-math', n=8, seed=3)[:5] == a
    assert load_tasks('mini-math', n=5, seed=4) != a
    assert sample_tasks(range(10), None) == list(range(10))
    with pytest.raises(TaskError, match='n=13 but there are only 12 tasks'): load_tasks('mini-math', n=13)
    with pytest.raises(TaskError, match='n must be a whole number'): load_tasks('mini-math', n=-1)

def test_errors_name_the_choices():
    with pytest.raises(TaskError, match="unknown data set 'gsm9k'; choose one of mini-math, mini-code, gsm8k, mbpp, math500, math"):
        load_tasks('gsm9k')
    with pytest.raises(TaskError, match="mini-code has no split 'dev'; choose one of test"): load_tasks('mini-code', split='dev')
    with pytest.raises(TaskError, match='mini-math takes no option prompt_tests'): load_tasks('mini-math', prompt_tests='first')
    with pytest.raises(TaskError, match="unknown task id '42' in mini-code; ids look like 'mini-code/1'"): get_task('mini-code', '42')

@needs_data
@pytest.mark.parametrize('name', list(DATASETS))
def test_ids_round_trip(name):
    ds = DATASETS[name]
    for split in ds.splits:
        ts = load_tasks(name, split)
        assert len({t.id for t in ts}) == len(ts), f'{name}/{split}: duplicate ids'
        for t in sample_tasks(ts, min(20, len(ts)), seed=1):
            assert get_task(name, t.id) == t
            assert t.id.startswith(name + '/') and t.kind == ds.kind

# --- the benchmark files ---------------------------------------------------------------------------------------

@needs_data
def test_benchmark_sizes_and_splits():
    sizes = {(n, s): len(load_tasks(n, s)) for n, ds in DATASETS.items() for s in ds.splits if not n.startswith('mini')}
    assert sizes == {('gsm8k', 'test'): 1319, ('gsm8k', 'train'): 7473, ('mbpp', 'test'): 500, ('mbpp', 'train'): 374,
                     ('mbpp', 'validation'): 90, ('mbpp', 'prompt'): 10, ('mbpp', 'full'): 974, ('math500', 'test'): 500, ('math', 'test'): 5000}
    for split, (lo, hi) in MBPP_SPLITS.items():
        ids = [t.meta['task_id'] for t in load_tasks('mbpp', split)]
        assert (min(ids), max(ids)) == (lo, hi)

@needs_data
def test_mbpp_prompts_and_entry_points():
    ts = load_tasks('mbpp', 'full')
    for t in ts:
        assert len(t.tests) == 3 and all(x.strip() in t.text for x in t.tests)
        assert re.search(rf'^\s*(def|class)\s+{re.escape(t.entry_point)}\b', t.reference, re.M), t.id  # the function the tests call is defined
    for t in load_tasks('mbpp', 'test', prompt_tests='first'):
        assert t.tests[0].strip() in t.text and not any(x.strip() in t.text for x in t.tests[1:] if x.strip() != t.tests[0].strip())
    assert get_task('mbpp', '126').entry_point == 'sum'   # a task that shadows a builtin

@needs_data
def test_math_answers_are_the_last_box():
    for t in load_tasks('math500'):
        assert last_boxed(t.reference).strip() == t.answer.strip(), t.id
    assert all(t.answer for t in load_tasks('math'))
    assert all(extract_number(t.reference) == t.answer for t in load_tasks('gsm8k', 'test'))

# --- extraction and equivalence --------------------------------------------------------------------------------

@given(st.integers(-10**9, 10**9), st.sampled_from(['{}', '${}', '{} dollars', '#### {}', r'\boxed{{{}}}', 'The answer is {}.']))
def test_extract_number_reads_formatted_integers(n, fmt):
    s = f'{n:,}' if fmt != r'\boxed{{{}}}' else str(n)
    assert extract_number('Some work: 3 + 4 = 7.\n' + fmt.format(s)) == str(n)

def test_extract_number_prefers_marks_and_boxes():
    assert extract_number('#### 12\nbut later 99') == '12'
    assert extract_number(r'\boxed{7} and 8 more words 9') == '7'
    assert extract_number('nothing here') is None

def test_math_equal_cases():
    same = [(r'\frac{1}{2}', '0.5'), (r'\sqrt{8}', r'2\sqrt{2}'), (r'(-\infty, 2]', r'(-\infty,2]'), (r'\text{(C)}', '(C)'),
            ('90^\\circ', '90'), (r'\frac \pi4', r'\frac{\pi}{4}'), ('52_8', '52_{8}'), ('10\\%', '10')]
    differ = [('(1,3)', '[1,3)'), ('5', '6'), ('52_8', '52_9'), ('.0000672', '.0000673'), (r'\frac{1}{2004!}', r'\frac{1}{2005!}'),
              (r'x^2', 'x^3')]
    assert [math_equal(a, b) for a, b in same] == [True] * len(same)
    assert [math_equal(a, b) for a, b in differ] == [False] * len(differ)

def test_math_grading_off_the_main_thread():
    t = Task('x/1', 'x', 'test', 'q', 'math', 'math', answer=r'\frac{3}{2}')
    out = []
    th = threading.Thread(target=lambda: out.append(t.grade(r'so \boxed{1.5}')))
    th.start(); th.join(60)
    assert out and out[0].correct

def test_extract_code_from_fences():
    reply = "```python\ndef f(x):\n    return x\n```\nUsage:\n```python\nprint(f(1))\n```"
    assert extract_code(reply, 'f') == 'def f(x):\n    return x'
    assert extract_code('```python\ndef f(x):\n    return x', 'f') == 'def f(x):\n    return x'  # cut off, no closing fence
    assert extract_code('```sh\nls\n```', 'f') == ''

def test_votes_group_equivalent_answers():
    t = Task('x/1', 'x', 'test', 'q', 'math', 'math', answer=r'\frac{1}{2}')
    assert t.vote([r'\boxed{0.5}', r'\boxed{\frac{2}{4}}', r'\boxed{1}', 'no answer']) == ('0.5', 2)
    c = Task('x/2', 'x', 'test', 'q', 'code', 'code', tests=['assert f(1) == 1'])
    assert c.same_answer('def f(x): return x', 'def f(x):\n    # identity\n    return x')
    assert not c.same_answer('def f(x): return x', 'def f(x): return -x')

# --- the command line ------------------------------------------------------------------------------------------

@needs_data
def test_cli_tasks_sample(bamas):
    rc, out, err = bamas('tasks', '--dataset', 'gsm8k', '--split', 'test', '--n', '5', '--json', env=OFFLINE)
    assert rc == 0, err
    r = json.loads(out)
    assert (r['dataset'], r['split'], r['n'], r['seed']) == ('gsm8k', 'test', 5, 0)
    ids = [t['id'] for t in r['tasks']]
    assert len(set(ids)) == 5 and all(re.fullmatch(r'gsm8k/test/\d+', i) for i in ids)
    assert ids == [t.id for t in load_tasks('gsm8k', 'test', n=5, seed=0)]
    rc, out, _ = bamas('tasks', '--dataset', 'mbpp', '--n', '2', '--seed', '7', '--prompt-tests', 'first', env=OFFLINE)
    assert rc == 0 and out.startswith('[mbpp/') and 'defines' in out

@needs_data
@pytest.mark.parametrize('dataset,task_id,answer,correct,reason', [
    ('gsm8k', 'gsm8k/test/0', 'She sells 9 eggs, so she makes 9 * 2 = $18.\n#### 18', True, '18 = reference 18'),
    ('gsm8k', 'test/0', 'The answer is $1,018.', False, '1018 ≠ reference 18'),
    ('math500', 'math500/test/precalculus/807', r'The point is $\boxed{(3, \frac{\pi}{2})}$.', True, 'same as the reference after normalisation'),
    ('math500', 'test/precalculus/807', r'$\boxed{(3, \pi)}$', False, r'(3, \pi) ≠ reference \left( 3, \frac{\pi}{2} \right)'),
    ('mbpp', 'mbpp/11', '```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, "", 1)[::-1].replace(ch, "", 1)[::-1]\n```', True, 'passed 3/3 tests'),
    ('mbpp', '11', 'def remove_Occ(s, ch):\n    return s.replace(ch, "", 1)', False, 'test 1 of 3 failed: assert remove_Occ("hello","l") == "heo"'),
    ('mini-code', '1', 'def count_vowels(s): return 3', False, 'test 2 of 3 failed: assert count_vowels("rhythm") == 0'),
])
def test_cli_grade(bamas, tmp_path, dataset, task_id, answer, correct, reason):
    f = tmp_path/'answer.txt'; f.write_text(answer)
    rc, out, err = bamas('grade', '--dataset', dataset, '--id', task_id, '--answer-file', f, '--json', env=OFFLINE)
    assert rc == 0, err
    r = json.loads(out)
    assert (r['correct'], r['reason']) == (correct, reason)
    assert r['id'].startswith(dataset + '/') and r['extracted']

def test_cli_grade_errors(bamas, tmp_path):
    rc, out, err = bamas('grade', '--dataset', 'mini-math', '--id', '1', '--answer-file', tmp_path/'nope.txt', '--json')
    assert rc == 2 and 'cannot read answer file' in json.loads(out)['error'] and 'Traceback' not in err
    rc, out, err = bamas('grade', '--dataset', 'mini-math', '--id', '77', '--answer', '5')
    assert rc == 2 and err == "bamas grade: error: unknown task id '77' in mini-math; ids look like 'mini-math/1'\n"
    rc, out, err = bamas('grade', '--dataset', 'mini-math', '--id', '1', '--answer', '#### 126')
    assert rc == 0 and out.strip() == '✓ correct  mini-math/1: 126 = reference 126'

def test_cli_lists_datasets(bamas):
    rc, out, err = bamas('tasks', '--json')
    assert rc == 0, err
    assert [d['name'] for d in json.loads(out)['datasets']] == ['mini-math', 'mini-code', 'gsm8k', 'mbpp', 'math500', 'math']

def test_data_files_are_read_one_at_a_time_from_threads(tmp_path, monkeypatch):
    # datasets' loader is not thread-safe (two cold first reads at once failed with AttributeError in CI), so
    # read_json_records takes a lock: however many threads read, datasets sees one load at a time
    import datasets, threading, time
    from bamas_nb.tasks import read_json_records
    real, state, lock = datasets.load_dataset, {'now': 0, 'most': 0}, threading.Lock()
    def watched(*a, **kw):
        with lock: state['now'] += 1; state['most'] = max(state['most'], state['now'])
        time.sleep(0.05)
        try: return real(*a, **kw)
        finally:
            with lock: state['now'] -= 1
    monkeypatch.setattr(datasets, 'load_dataset', watched)
    files = []
    for i in range(4):
        (f := tmp_path/f'd{i}.jsonl').write_text(''.join(f'{{"q": "{i}-{j}"}}\n' for j in range(3))); files.append(f)
    out = [None]*4
    def read(i): out[i] = read_json_records(files[i])
    ts = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert state['most'] == 1 and [r[0]['q'] for r in out] == ['0-0', '1-0', '2-0', '3-0']
