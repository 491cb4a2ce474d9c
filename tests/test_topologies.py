"Topologies on a scripted provider: roles, stopping rules, and spend ≤ budget whatever the models answer."
import random
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from bamas_nb.core import LLM, Pool, TOPOLOGIES, BamasError, load_pool
from bamas_nb.ilp import select_llms, InfeasibleBudget
from bamas_nb.tasks import load_tasks
from bamas_nb.topologies import run_topology, majority, verdict, parse_steps, check_strategy, BASELINES

class Scripted:
    "A provider that answers by role; `n_out` completion tokens (None: the request's max_tokens), prompt tokens ≈ chars/4."
    def __init__(self, n_out=40, review='ACCEPT', answer='\\boxed{150}', seed=0):
        self.n_out, self.review, self.answer, self.calls, self.rng = n_out, review, answer, [], random.Random(seed)
    def text(self, messages):
        u = messages[-1]['content']
        if 'ACCEPT or REJECT' in u: return self.review
        if 'Split the work' in u: return 'Step 1: read.\nStep 2: compute.\nStep 3: check.'
        if 'python' in messages[0]['content']:
            return '```python\ndef merge_sorted(a, b):\n    return sorted(a + b)\n```'
        return f'The total is {self.answer}.'
    def complete(self, llm, messages, params, timeout):
        self.calls.append((llm.name, messages[-1]['content'][:30]))
        n = params['max_tokens'] if self.n_out is None else min(self.n_out, params['max_tokens'])
        return {'text': self.text(messages), 'finish_reason': 'stop', 'prompt_tokens': sum(len(m['content']) for m in messages)//6 + 4,
                'completion_tokens': n}
    async def acomplete(self, *a): return self.complete(*a)

@pytest.fixture(scope='module')
def pool(): return load_pool('data/pools/local.yaml')
@pytest.fixture(scope='module')
def math_task(): return load_tasks('mini-math', n=1, seed=0)[0]     # reference answer 150
@pytest.fixture(scope='module')
def code_task(): return load_tasks('mini-code', n=1, seed=0)[0]     # merge_sorted

@pytest.mark.parametrize('strategy', list(TOPOLOGIES) + list(BASELINES))
def test_every_strategy_solves_with_a_cooperative_model(strategy, pool, math_task, code_task):
    for task in (math_task, code_task):
        out = run_topology(strategy, task, select_llms(pool, 1250), cache=None, provider=Scripted())
        assert out.correct, (strategy, task.id, out.grade)
        assert out.cost <= out.budget and not out.stopped_by_budget
        assert out.calls == len([t for t in out.trace if t.ok]) >= 1

def test_linear_runs_weakest_first_and_keeps_last(pool, math_task):
    p = Scripted()
    out = run_topology('linear', math_task, select_llms(pool, 2000), cache=None, provider=p)
    names = [n for n, _ in p.calls]
    assert names == ['qwen-0.5b', 'qwen-0.5b', 'qwen-1.5b', 'qwen-1.5b', 'qwen-1.5b', 'qwen-1.5b']
    assert [t.role for t in out.trace] == ['solve'] + ['improve']*5

def test_feedback_revises_while_rejected(pool, math_task):
    out = run_topology('feedback', math_task, select_llms(pool, 2000), cache=None, provider=Scripted(review='REJECT\nwrong sum'))
    assert [t.role for t in out.trace] == ['solve', 'review', 'revise', 'review', 'revise', 'review', 'revise']
    assert [t.agent for t in out.trace if t.role == 'revise'] == ['qwen-1.5b']*3
    accepted = run_topology('feedback', math_task, select_llms(pool, 2000), cache=None, provider=Scripted(review='ACCEPT'))
    assert [t.role for t in accepted.trace] == ['solve', 'review']

def test_star_votes_and_code_aggregates(pool, math_task, code_task):
    out = run_topology('star', math_task, select_llms(pool, 1250), cache=None, provider=Scripted())
    assert [t.role for t in out.trace] == ['solve']*3
    out = run_topology('star', code_task, select_llms(pool, 1250), cache=None, provider=Scripted())
    assert [t.role for t in out.trace] == ['solve']*3 + ['aggregate'] and out.correct

def test_majority_uses_graded_equivalence(math_task):
    assert majority(math_task, ['so \\boxed{150}', 'it is \\boxed{149}', 'answer: 150.0', None]) == 'so \\boxed{150}'
    assert majority(math_task, [None, None]) is None

def test_helpers():
    assert [verdict(s) for s in ['ACCEPT.', 'Reject', 'maybe']] == [True, False, None]
    assert parse_steps('Step 1: a\nStep 2: b', 1) == ['a']
    with pytest.raises(BamasError, match='unknown topology'): check_strategy('mesh')

def test_budget_stop_keeps_best_answer(pool, math_task):
    # three 0.5B agents at 500 µ$; every answer is max_tokens long, so the review of a long answer cannot fit
    out = run_topology('feedback', math_task, select_llms(pool, 500), cache=None, provider=Scripted(n_out=None, review='REJECT\nno'))
    assert out.stopped_by_budget and out.cost <= 500
    assert out.answer is not None and out.correct            # the first solution stands
    assert any(t.note.startswith('refused') for t in out.trace)

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(strategy=st.sampled_from(list(TOPOLOGIES) + list(BASELINES)), budget=st.floats(310, 3000),
       n_out=st.one_of(st.none(), st.integers(1, 256)), review=st.sampled_from(['ACCEPT', 'REJECT\nbad', 'hmm']),
       kind=st.sampled_from(['math', 'code']))
def test_spend_never_exceeds_budget(pool, math_task, code_task, strategy, budget, n_out, review, kind):
    task = math_task if kind == 'math' else code_task
    out = run_topology(strategy, task, select_llms(pool, budget), cache=None, provider=Scripted(n_out=n_out, review=review))
    assert out.cost <= budget + 1e-9
    assert out.usage.calls == len([t for t in out.trace if t.ok])

def test_run_cli_against_a_fake_server(bamas, tmp_path):
    import json, sys, yaml
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'benchmarks'))
    from fake_openai_server import FakeOpenAIServer
    with FakeOpenAIServer(completion_tokens=12, text='ACCEPT. So \\boxed{150}.') as srv:
        llms = [dict(name='a', model='openai/a', api_base=srv.api_base, tier=1, in_price=0.27, out_price=1.1, max_tokens=64),
                dict(name='b', model='openai/b', api_base=srv.api_base, tier=2, in_price=0.1, out_price=0.4, max_tokens=64)]
        (tmp_path/'pool.yaml').write_text(yaml.safe_dump({'llms': llms}))
        rc, out, err = bamas('run', '--pool', tmp_path/'pool.yaml', '--dataset', 'mini-math', '--n', '3', '--budget', '600',
                             '--topology', 'feedback', '--cache', 'off', '--json')
    assert rc == 0, err
    r = json.loads(out)
    assert len(r['tasks']) == 3 and set(r['tasks'][0]) == {'id', 'budget', 'topology', 'llms', 'correct', 'cost', 'calls', 'stopped_by_budget'}
    assert set(r['totals']) == {'n', 'accuracy', 'mean_cost', 'over_budget'} and r['totals']['over_budget'] == 0
    assert err.count('[') >= 3                                       # per-task progress on stderr
    rc, out, err = bamas('run', '--pool', tmp_path/'pool.yaml', '--dataset', 'mini-math', '--budget', '600', '--topology', 'mesh', '--json')
    assert rc == 2 and 'unknown topology' in json.loads(out)['error']

def test_run_cli_auto_lets_the_committed_policy_choose_per_task(bamas, tmp_path):
    "`--topology auto`: each task runs the topology BAMAS's policy plans for it, and the output names that topology."
    import json, sys, yaml
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'benchmarks'))
    from fake_openai_server import FakeOpenAIServer
    from bamas_nb.bamas import load_bamas
    from bamas_nb.tasks import load_tasks
    with FakeOpenAIServer(completion_tokens=12, text='ACCEPT. So \\boxed{150}.') as srv:
        llms = [dict(name='a', model='openai/a', api_base=srv.api_base, tier=1, in_price=0.27, out_price=1.1, max_tokens=64),
                dict(name='b', model='openai/b', api_base=srv.api_base, tier=2, in_price=0.1, out_price=0.4, max_tokens=64)]
        (tmp_path/'pool.yaml').write_text(yaml.safe_dump({'llms': llms}))
        args = ['run', '--pool', tmp_path/'pool.yaml', '--dataset', 'mini-math', '--n', '4', '--budget', '1250', '--cache', 'off']
        rc, out, err = bamas(*args, '--topology', 'auto', '--json')
        assert rc == 0, err
        r = json.loads(out)
        planned = [load_bamas(pool=tmp_path/'pool.yaml').plan(t, 1250).topology for t in load_tasks('mini-math', n=4, seed=0)]
        assert [t['topology'] for t in r['tasks']] == planned
        assert set(planned) <= {'linear', 'star', 'feedback', 'planner'} and r['totals']['over_budget'] == 0
        rc, out, err = bamas(*args, '--topology', 'auto', '--policy', tmp_path/'missing.pt', '--json')
        assert rc == 2 and 'missing.pt' in json.loads(out)['error']
        rc, out, err = bamas(*args, '--topology', 'feedback', '--policy', tmp_path/'missing.pt', '--json')
        assert rc == 2 and '--topology auto' in json.loads(out)['error']
        rc, out, err = bamas(*args, '--topology', 'mesh', '--json')
        assert rc == 2 and 'or auto' in json.loads(out)['error']
