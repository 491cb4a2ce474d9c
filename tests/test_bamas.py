"BAMAS end to end on recorded replies: plans (fixed ones too), solves, errors, the demo command, the demo's server handling (stand-in servers), and the results tables."
import json, os, socket, sys
from dataclasses import replace
from pathlib import Path
import numpy as np, pandas as pd, pytest
from conftest import ROOT, POOLS
from bamas_nb.core import BamasError, TOPOLOGIES, Pool, load_pool
from bamas_nb.ilp import InfeasibleBudget
from bamas_nb.stores import recording
from bamas_nb.servers import served_models, port_is_free
from bamas_nb.policy import load_policy
from bamas_nb.tasks import load_tasks
from bamas_nb import bamas as B
from bamas_nb.bamas import Bamas, Plan, fixed_plan, load_bamas, train_argv, TRAIN_SETTINGS
from bamas_nb.demo import demo_tasks, demo_session
from bamas_nb.results import strategy_runs, strategy_table, cost_at_equal_accuracy, complete_runs, paper_results, paper_side_by_side

FAKE = ROOT/'benchmarks'/'fake_openai_server.py'
REPLAY = '07_bamas,04_topologies'       # the demo's recordings: its own, then the topologies notebook's

@pytest.fixture(scope='module')
def policy(): return load_policy(ROOT/'data/policies/local.pt')

@pytest.fixture(scope='module')
def local(): return load_pool(POOLS/'local.yaml')

@pytest.fixture(scope='module')
def bam(local, policy): return Bamas(local, policy)

@pytest.fixture(scope='module')
def mini(): return [load_tasks('mini-math', n=1, seed=0)[0], load_tasks('mini-code', n=1, seed=0)[0]]

def rec(): return [recording(n, mode='replay') for n in REPLAY.split(',')]

def test_the_committed_policy_was_trained_on_the_local_pools_train_tables(policy):
    from bamas_nb.experience import pool_id
    c = policy.config
    # the tables (and so the policy) were made with the 256-token cap of data/pools/local-256.yaml
    assert c['pool_ids'] == [pool_id(load_pool(POOLS/'local-256.yaml'))] and c['datasets'] == ['gsm8k', 'mbpp'] and c['records'] > 0
    assert [c['epochs'], c['lr'], c['seed']] == [int(TRAIN_SETTINGS[1]), float(TRAIN_SETTINGS[3]), int(TRAIN_SETTINGS[5])]

def test_plan(bam, mini):
    p = bam.plan(mini[0], 1000)
    assert isinstance(p, Plan) and p.llms == ['qwen-1.5b', 'qwen-0.5b'] and p.topology in TOPOLOGIES
    assert [n for n in p.notes if 'trained on runs of another pool' not in n] == []      # the policy's pool (local-256) is noted
    assert abs(sum(p.probs.values()) - 1) < 1e-3 and p.probs[p.topology] == max(p.probs.values())
    assert p.est_cost <= 1000 and '**Plan**' in p._repr_markdown_() and json.dumps(p.to_dict())

def test_solve_on_recordings(bam, mini):
    for t in mini:
        p, o = bam.plan(t, 1000), bam.solve(t, 1000, cache=rec())
        assert o.topology == p.topology and o.llms[:1] == p.llms[:1] and 0 < o.cost <= 1000 and o.calls >= 1

def test_every_topology_is_recorded_for_the_demo_tasks(local, mini):
    "Whatever a retrained policy picks for the recorded demo (mini tasks at 1,250 µ$), the recording answers it."
    from bamas_nb.ilp import select_llms
    for t in mini:
        for top in TOPOLOGIES: assert Bamas.execute(fixed_plan(t, top, select_llms(local, 1000)), rec()).cost <= 1000

def test_a_fixed_strategy_is_a_plan_run_by_execute(local, mini):
    "A fixed topology or baseline is a Plan without a policy; `Bamas.execute` runs it as `run_topology` would, under the selection's budget."
    from bamas_nb.ilp import select_llms
    from bamas_nb.topologies import run_topology
    sel = select_llms(local, 1000)
    for top in TOPOLOGIES:
        p = fixed_plan(mini[1], top, sel)
        assert (p.budget, p.topology, p.probs, p.llm, p.fallback) == (1000.0, top, {}, None, False)
        assert Bamas.execute(p, rec()).to_dict() == run_topology(top, mini[1], sel, cache=rec()).to_dict()
    assert fixed_plan(mini[1], 'single', sel, 'qwen-1.5b').llm == 'qwen-1.5b' and 'no policy was asked' in fixed_plan(mini[1], 'naive', sel)._repr_markdown_()
    with pytest.raises(BamasError, match="unknown topology 'mesh'"): fixed_plan(mini[1], 'mesh', sel)

def test_budget_errors_and_fallback(bam, mini):
    with pytest.raises(BamasError, match='budget must be > 0'): bam.plan(mini[0], 0)
    with pytest.raises(InfeasibleBudget, match=r'at least 509\.6 µ\$, or pass fallback=True'): bam.plan(mini[0], 400)
    p = bam.plan(mini[0], 400, fallback=True)
    assert (p.topology, p.llms, p.llm, p.fallback) == ('single', ['qwen-0.5b'], 'qwen-0.5b', True) and any('fallback' in n for n in p.notes)
    with pytest.raises(InfeasibleBudget, match='cannot pay for a single LLM call'): bam.plan(mini[0], 200, fallback=True)
    with pytest.raises(BamasError, match='task must be a Task'): bam.plan('2+2?', 1250)
    assert 'outside the budgets the policy was trained on' in bam.plan(mini[1], 5000).notes[0]

def test_any_pool_plans_and_mismatches_are_explained(policy, local, mini):
    paper = Bamas(POOLS/'paper.yaml', policy)
    assert paper.plan(mini[1], 1250).llms == ['deepseek-v3', 'gpt-4.1-nano', 'gpt-4.1-nano'] and paper.plan(mini[1], 800).llms == ['gpt-4.1-nano']*3
    assert 'trained on runs of another pool' in paper.mismatch
    with pytest.raises(BamasError, match='retrain on runs of this pool'): Bamas(POOLS/'paper.yaml', policy, strict=True)
    with pytest.raises(BamasError, match='pass the pool first'): Bamas(policy, local)
    with pytest.raises(BamasError, match='pass the policy second'): Bamas(local, local)
    with pytest.raises(BamasError, match='pool must be a Pool'): Bamas(3, policy)

def test_default_and_a_missing_checkpoint(monkeypatch):
    assert Bamas.default().pool.names == ['qwen-1.5b', 'qwen-0.5b']
    monkeypatch.setattr(B, 'DEFAULT_POLICY', 'data/policies/nope.pt')
    with pytest.raises(BamasError, match=r'no default policy checkpoint: data/policies/nope\.pt is missing from the repository checkout; restore it .*; or train it .*bamas train --experience data/experience/gsm8k-train,data/experience/mbpp-train'):
        load_bamas()

def test_demo_tasks_fall_back_to_the_mini_sets(tmp_path, monkeypatch):
    monkeypatch.setenv('BAMAS_DATA', str(tmp_path)); monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('HF_DATASETS_OFFLINE', '1')
    tasks, notes = demo_tasks(['gsm8k', 'mbpp'], n=2)
    assert [t.dataset for t in tasks] == ['mini-math']*2 + ['mini-code']*2 and len(notes) == 2 and 'gsm8k is not on this machine' in notes[0]

def test_demo_cli_json_on_recordings(bamas):
    rc, out, err = bamas('demo', '--datasets', 'mini-math,mini-code', '--n', '1', '--budgets', '1000', '--replay', REPLAY, '--json')
    assert rc == 0, err
    r = json.loads(out)                                   # exactly one JSON object
    assert r['totals']['n'] == 2 and r['totals']['over_budget'] == 0 and r['servers'] is None
    assert [x['task'] for x in r['runs']] == ['mini-math/2', 'mini-code/5'] and all(x['llms'] == 'qwen-1.5b×1 + qwen-0.5b×1' for x in r['runs'])
    assert all(x['replayed'] == x['calls'] for x in r['runs']) and err.count('\n') == 2

def test_demo_cli_text_and_fallback_note(bamas, tmp_path):
    env = {'BAMAS_DATA': str(tmp_path), 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    rc, out, err = bamas('demo', '--n', '1', '--budgets', '1000', '--replay', REPLAY, env=env)
    assert rc == 0, err
    assert 'note: gsm8k is not on this machine' in out and 'note: mbpp is not on this machine' in out
    assert 'task ' in out and 'topology' in out and '2 runs: accuracy' in out and 'over budget 0' in out

@pytest.mark.parametrize('args,msg', [(['--budgets', '1000,abc'], "--budgets: budget must be a number"), (['--n', '0'], '--n must be ≥ 1'),
                                      (['--datasets', 'nope'], "unknown data set 'nope'"), (['--policy', 'nope.pt'], 'no such checkpoint')])
def test_demo_cli_errors(bamas, args, msg):
    rc, out, err = bamas('demo', *args, '--replay', REPLAY, '--json')
    assert rc == 2 and msg in json.loads(out)['error'] and err.count('\n') == 1 and 'Traceback' not in err

# --- the demo's servers, with stand-ins for llama.cpp (no models) ---

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def fake_command(gguf, alias, port, threads, n_ctx):
    return [sys.executable, str(FAKE), '--port', str(port), '--model-id', alias]

@pytest.fixture
def fake_server():
    import importlib.util
    spec = importlib.util.spec_from_file_location('fake_openai_server', FAKE); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m.FakeOpenAIServer

@pytest.fixture
def private_cache(tmp_path, monkeypatch): monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))

def pool_on(local, ports) -> Pool:
    return Pool(tuple(replace(l, api_base=f"http://127.0.0.1:{ports[l.name]}/v1") for l in local), source='test')

def test_demo_reuses_running_servers_and_stops_only_what_it_started(local, policy, mini, fake_server, private_cache):
    p_reused, p_started = free_port(), free_port()
    bam = Bamas(pool_on(local, {'qwen-1.5b': p_reused, 'qwen-0.5b': p_started}), policy)
    with fake_server(port=p_reused, model_id='qwen2.5-coder-1.5b-instruct') as running:
        res = demo_session(bam, mini[:1], [600], cache=None, command=fake_command, gguf={'qwen-0.5b': 'unused.gguf'})
        assert res['servers'] == {'reused': ['qwen-1.5b'], 'started': ['qwen-0.5b']}
        assert res['totals']['n'] == 1 and res['totals']['over_budget'] == 0 and res['runs'][0]['calls'] >= 1
        assert served_models(running.api_base) == ['qwen2.5-coder-1.5b-instruct']     # the running server is left alone
        assert port_is_free(p_started)                                                  # the one it started is stopped
        with pytest.raises(BamasError, match='task must be a Task'):                    # an error mid-run stops it too
            demo_session(bam, ['not a task'], [600], cache=None, command=fake_command, gguf={'qwen-0.5b': 'unused.gguf'})
        assert port_is_free(p_started) and served_models(running.api_base) is not None

# --- the tables ---

def toy():
    return pd.DataFrame({'task_id': [f't{i}' for i in range(4)]*3, 'text': [f'task {i}' for i in range(4)]*3, 'dataset': 'gsm8k', 'budget': 1000.0,
                         'topology': ['linear']*4 + ['feedback']*4 + ['chat']*4,
                         'correct': [1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0], 'cost': [300., 320., 310., 330., 600., 650., 700., 620., 900., 950., 800., 1000.]}).astype({'correct': bool})

class ToyPolicy:
    def probs(self, texts, budgets): return np.array([[0.1, 0.1, 0.7, 0.1] if t in ('task 0', 'task 1') else [0.7, 0.1, 0.1, 0.1] for t in texts])

def test_strategy_table_and_cost_reduction():
    t = strategy_table(strategy_runs(toy(), ToyPolicy()))
    assert t.strategy.tolist() == ['bamas', 'linear', 'feedback', 'chat'] and t.accuracy.tolist() == [0.75, 0.5, 0.75, 0.25]
    r = cost_at_equal_accuracy(t).set_index('strategy')
    assert r.loc['feedback', 'reduction'] == pytest.approx(1 - 472.5/642.5)
    assert len(complete_runs(toy().iloc[:-1])) == 9
    side = paper_side_by_side(t)
    assert len(side) == len(paper_results()) and side['paper acc.'].between(0, 1).all()

def test_train_argv_is_the_documented_command():
    doc = (ROOT/'data/policies/README.md').read_text()
    assert 'bamas ' + ' '.join(train_argv()) in doc
