"Topologies on a scripted provider: roles, stopping rules, and spend ≤ budget whatever the models answer."
import random
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from bamas_nb.core import LLM, Pool, TOPOLOGIES, BUDGETS, BamasError, load_pool
from bamas_nb.ilp import select_llms, InfeasibleBudget
from bamas_nb.tasks import load_tasks
from bamas_nb.runs import check_strategy, BASELINES
from bamas_nb.topologies import run_topology, answer_groups, verdict, parse_steps

class Scripted:
    """A provider that answers by role. `answer` is the solver's final answer and `check` the independent reviewer's
    (maths); `review` the code reviewer's reply; `n_out` completion tokens (None: the request's max_tokens);
    `cut` the roles whose first reply ends at its cap; prompt tokens ≈ chars/6."""
    def __init__(self, n_out=40, review='ACCEPT', answer='\\boxed{150}', check=None, cut=(), samples=None, checks=None):
        self.n_out, self.review, self.answer, self.check, self.cut, self.samples = n_out, review, answer, check or answer, set(cut), samples
        self.checks = list(checks or [])     # the reviewer's answers in turn (then `check`)
        self.calls = []
    def text(self, messages, params):
        u = messages[-1]['content']
        if u.startswith('Continue exactly'): return 'so the total is ' + self.answer + '.'
        if u.startswith('You ran out of space'): return self.answer
        if 'ACCEPT or REJECT' in u: return self.review
        if 'Split the work' in u: return 'Step 1: read.\nStep 2: compute.\nStep 3: check.'
        if 'python' in messages[0]['content']:
            return '```python\ndef merge_sorted(a, b):\n    return sorted(a + b)\n```'
        if 'Solve it independently' in u: return f'I get {self.checks.pop(0) if self.checks else self.check}.'
        if self.samples and params.get('temperature', 0) > 0: return f'The total is {self.samples[len(self.calls) % len(self.samples)]}.'
        return f'The total is {self.answer}.'
    def role(self, u):
        return next((r for r, k in [('verify', "colleague's"), ('check', 'Solve it independently'), ('solve', 'Solve it.')] if k in u), 'other')
    def complete(self, llm, messages, params, timeout):
        u = messages[-1]['content']
        text = self.text(messages, params)
        self.calls.append((llm.name, u[:30], params.get('temperature', 0)))
        n = params['max_tokens'] if self.n_out is None else min(self.n_out, params['max_tokens'])
        cut = self.role(u) in self.cut and messages[-2]['role'] != 'assistant'
        if cut: text, n = 'Let me work through it step by step', params['max_tokens']
        return {'text': text, 'finish_reason': 'length' if cut else 'stop',
                'prompt_tokens': sum(len(m['content']) for m in messages)//6 + 4, 'completion_tokens': n}
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
        for budget in BUDGETS:
            out = run_topology(strategy, task, select_llms(pool, budget), cache=None, provider=Scripted())
            assert out.correct, (strategy, task.id, budget, out.grade)
            assert out.cost <= out.budget and not out.truncated and out.final_turn is not None
            assert out.calls == len([t for t in out.trace if t.ok]) >= 1

def test_the_budget_grid_hires_a_different_team_at_every_level(pool):
    teams = [tuple(sorted(select_llms(pool, b).counts.items())) for b in BUDGETS]
    assert len(set(teams)) == len(BUDGETS)

def test_linear_chains_at_most_k_strongest_last(pool, math_task):
    p = Scripted()
    out = run_topology('linear', math_task, select_llms(pool, 1000), cache=None, provider=p)
    assert [n for n, _, _ in p.calls] == ['qwen-0.5b', 'qwen-1.5b'] and [t.role for t in out.trace] == ['solve', 'verify']
    p = Scripted()
    out = run_topology('linear', math_task, select_llms(pool, 3500), cache=None, provider=p)     # five 1.5B hired
    assert [t.role for t in out.trace] == ['solve', 'verify', 'verify'] and out.final_turn == 'verify'

def test_a_cut_off_reply_is_continued_and_still_one_agent(pool, math_task):
    out = run_topology('naive', math_task, select_llms(pool, 2400), cache=None, provider=Scripted(cut={'solve'}))
    assert [t.role for t in out.trace] == ['solve', 'continue'] and [t.finish_reason for t in out.trace] == ['length', 'stop']
    assert out.correct and not out.truncated and out.final_turn == 'solve' and len(set(out.llms)) == 1

def test_a_cut_off_reply_that_cannot_be_continued_is_marked(pool, math_task):
    # at 600 µ$ a 0.5B reply at its full cap leaves no room for a continuation: the run is cut off, never over budget
    out = run_topology('single', math_task, select_llms(pool, 600), cache=None, provider=Scripted(cut={'solve'}, n_out=None))
    assert out.cost <= 600 and out.trace[0].finish_reason == 'length'
    assert out.truncated == (not any(t.role in ('continue', 'final') and t.ok and t.finish_reason == 'stop' for t in out.trace))

def test_a_refused_continuation_still_asks_for_the_final_answer(pool, math_task):
    # at 1,000 µ$ a 1.5B solve at its full 512-token cap leaves no room for a 512-token continuation, but the
    # 48-token final-answer request fits: the final answer is not lost to the cap
    out = run_topology('naive', math_task, select_llms(pool, 1000), cache=None, provider=Scripted(cut={'solve'}, n_out=None))
    assert [t.role for t in out.trace] == ['solve', 'continue', 'final'] and out.trace[1].note.startswith('refused')
    assert out.trace[2].ok and out.correct and not out.truncated and out.cost <= 1000

def test_feedback_reviewer_solves_independently_and_rejects_disagreement(pool, math_task):
    out = run_topology('feedback', math_task, select_llms(pool, 2400), cache=None, provider=Scripted(check='\\boxed{149}'))
    assert [t.role for t in out.trace] == ['solve'] + ['check', 'check', 'revise']*3     # each rejection after a second opinion
    reviews = [t for t in out.trace if t.verdict is not None]
    assert [t.verdict for t in reviews] == [False]*3 and {t.reviewed for t in reviews} == {'150'}
    assert [t.note for t in out.trace if t.role == 'check' and t.verdict is None] == ['disagrees: second opinion asked']*3
    assert all(t.agent == 'qwen-1.5b' for t in out.trace)           # never the weaker 0.5B as reviewer
    agree = run_topology('feedback', math_task, select_llms(pool, 2400), cache=None, provider=Scripted())
    assert [t.role for t in agree.trace] == ['solve', 'check'] and agree.trace[1].verdict is True
    # one disagreement is not enough: a second opinion that agrees accepts the answer
    second = run_topology('feedback', math_task, select_llms(pool, 2400), cache=None, provider=Scripted(checks=['\\boxed{149}', '\\boxed{150}']))
    assert [t.role for t in second.trace] == ['solve', 'check', 'check'] and [t.verdict for t in second.trace] == [None, None, True]
    assert second.correct

def test_feedback_rejects_a_reply_without_a_final_answer_unread(pool, math_task):
    out = run_topology('feedback', math_task, select_llms(pool, 2400), cache=None, provider=Scripted(answer='one hundred and fifty'))
    unread = [t for t in out.trace if t.note.startswith('rejected unread')]
    assert unread and all(t.verdict is False and t.cost == 0 for t in unread) and 'redo' in [t.role for t in out.trace]

def test_feedback_code_reviewer_says_no(pool, code_task):
    out = run_topology('feedback', code_task, select_llms(pool, 2400), cache=None, provider=Scripted(review='REJECT\nwrong order'))
    assert [t.role for t in out.trace] == ['solve'] + ['check', 'revise']*3 and [t.verdict for t in out.trace if t.role == 'check'] == [False]*3

def test_star_samples_at_least_three_and_breaks_ties(pool, math_task, code_task):
    p = Scripted(samples=['\\boxed{150}', '\\boxed{149}'])
    out = run_topology('star', math_task, select_llms(pool, 1700), cache=None, provider=p)
    solves = [t for t in out.trace if t.role == 'solve']
    assert len(solves) >= 3 and all(temp > 0 for _, u, temp in p.calls if u.startswith('Problem'))
    out = run_topology('star', code_task, select_llms(pool, 1700), cache=None, provider=Scripted())
    assert [t.role for t in out.trace] == ['solve']*3 and out.correct      # identical candidates: nothing to aggregate

def test_planner_keeps_the_budget_for_its_final_answer(pool, math_task):
    # every reply at its full cap: without a reserve the steps would spend what the planner needs to conclude
    for budget in (1000, 1700, 2400):
        out = run_topology('planner', math_task, select_llms(pool, budget), cache=None, provider=Scripted(n_out=None))
        roles = [t.role for t in out.trace if t.ok]
        assert out.cost <= budget and 'finish' in roles and out.final_turn == 'finish', (budget, roles)
        assert all(t.ok or t.note.startswith('skipped') for t in out.trace if t.role == 'step')

def test_answer_groups_use_graded_equivalence(math_task):
    assert answer_groups(math_task, ['so \\boxed{150}', 'it is \\boxed{149}', 'answer: 150.0', 'no idea']) == [['so \\boxed{150}', 'answer: 150.0'], ['it is \\boxed{149}']]

def test_helpers():
    assert [verdict(s) for s in ['ACCEPT.', 'Reject', 'maybe']] == [True, False, None]
    assert parse_steps('Step 1: a\nStep 2: b', 1) == ['a']
    with pytest.raises(BamasError, match='unknown topology'): check_strategy('mesh')

def test_budget_stop_keeps_best_answer(pool, math_task):
    # two 0.5B agents at 600 µ$; every answer is max_tokens long, so the reviews soon cannot fit
    out = run_topology('feedback', math_task, select_llms(pool, 600), cache=None, provider=Scripted(n_out=None, check='\\boxed{149}'))
    assert out.stopped_by_budget and out.cost <= 600
    assert out.answer is not None
    assert any(t.note.startswith('refused') for t in out.trace)

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(strategy=st.sampled_from(list(TOPOLOGIES) + list(BASELINES)), budget=st.floats(560, 4000),
       n_out=st.one_of(st.none(), st.integers(1, 512)), review=st.sampled_from(['ACCEPT', 'REJECT\nbad', 'hmm']),
       kind=st.sampled_from(['math', 'code']))
def test_spend_never_exceeds_budget(pool, math_task, code_task, strategy, budget, n_out, review, kind):
    task = math_task if kind == 'math' else code_task
    p = Scripted(n_out=n_out, review=review, check='\\boxed{149}' if review != 'ACCEPT' else None, cut={'solve', 'verify'} if n_out is None else ())
    out = run_topology(strategy, task, select_llms(pool, budget), cache=None, provider=p)
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
    assert len(r['tasks']) == 3 and set(r['tasks'][0]) == {'id', 'budget', 'topology', 'llms', 'correct', 'cost', 'calls', 'stopped_by_budget', 'truncated', 'final_turn'}
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
