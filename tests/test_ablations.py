"Ablations: greedy selection against the ILP and brute force, the Pareto frontier, regret, the oracle and the sweep explorer."
import itertools, random
import numpy as np, pandas as pd, pytest
from bamas_nb.core import LLM, Pool, TOPOLOGIES, BamasError, est_call_cost, load_pool
from bamas_nb.ilp import InfeasibleBudget, select_llms, tier_weights
from bamas_nb.ablations import (greedy_select, select_with, compare_selectors, SELECTORS, pareto_frontier, frontier_accuracy,
                                frontier_cost, regret_table, oracle_runs, replay, topology_mix, paper_claims, synthetic_tables,
                                split_tables, load_tables, table_summary, logged_teams, selector_replay, draw_sweep, SweepExplorer)
from bamas_nb.results import strategy_table
from bamas_nb.experience import ExperienceStore

from conftest import POOLS

@pytest.fixture(scope='module')
def paper(): return load_pool(POOLS/'paper.yaml')

def brute_force(pool, B, min_llms=2, cap=5):
    "Best team by enumeration: highest ILP weight, then lowest estimated cost; None when nothing fits."
    W, cost, best = tier_weights(pool, B), [est_call_cost(l) for l in pool], None
    for xs in itertools.product(range(cap + 1), repeat=len(pool)):
        c = sum(k*ci for k, ci in zip(xs, cost))
        if sum(xs) < min_llms or c > B + 1e-9: continue
        key = (sum(W[l.tier]*k for l, k in zip(pool, xs)), -round(c, 6))
        if best is None or key > best[0]: best = (key, {l.name: k for l, k in zip(pool, xs) if k})
    return best[1] if best else None

def counts_or_none(f):
    try: return dict(f().counts)
    except InfeasibleBudget: return None

def random_pool(rng):
    return Pool(tuple(LLM(f'm{i}', 'x', rng.randint(1, 3), round(rng.uniform(0.05, 1.5), 2), round(rng.uniform(0.1, 3.0), 2),
                          rng.choice([128, 256, 512])) for i in range(rng.randint(2, 4))))

def test_reserving_greedy_is_exact_on_random_pools():
    rng, plain_misses = random.Random(7), 0
    for _ in range(200):
        pool, B = random_pool(rng), rng.uniform(100, 4000)
        truth = brute_force(pool, B)
        assert counts_or_none(lambda: greedy_select(pool, B, reserve=True)) == truth, (pool, B)
        plain = counts_or_none(lambda: greedy_select(pool, B))
        assert plain in (truth, None)          # plain greedy is optimal whenever it finds a team at all
        plain_misses += plain != truth
    assert plain_misses > 0                    # ... but sometimes it finds none

def test_greedy_on_the_paper_pool(paper):
    # one DeepSeek-V3 call is planned at 698.2 µ$ and a nano call at 254.8 µ$: at 800 µ$ the strongest-first greedy hires one
    with pytest.raises(InfeasibleBudget, match='fewer than min_llms=2'): greedy_select(paper, 800)
    assert dict(greedy_select(paper, 800, reserve=True).counts) == dict(select_llms(paper, 800).counts) == {'gpt-4.1-nano': 3}
    cheap = greedy_select(paper, 2000, order='cheapest')
    assert dict(cheap.counts) == {'deepseek-v3': 1, 'gpt-4.1-nano': 5} and cheap.est_cost <= 2000
    assert cheap.objective < select_llms(paper, 2000).objective
    assert list(greedy_select(paper, 2000).counts) == ['deepseek-v3', 'gpt-4.1-nano']     # strongest tier first
    with pytest.raises(BamasError, match="order must be"): greedy_select(paper, 900, order='random')
    with pytest.raises(BamasError, match='unknown selector'): select_with('lp', paper, 900)

def test_compare_selectors(paper):
    c = compare_selectors(paper, [300, 800, 1250]).set_index(['budget', 'selector'])
    assert not c.loc[(300, 'ilp'), 'feasible'] and np.isnan(c.loc[(300, 'ilp'), 'weight_share'])
    assert c.loc[(800, 'greedy-strongest'), 'team'] == '—' and c.loc[(800, 'greedy-strongest'), 'weight_share'] == 0
    assert (c.xs('ilp', level='selector').weight_share.dropna() == 1).all()
    assert (c.xs('greedy-strongest-reserve', level='selector').weight_share.dropna() == 1).all()
    assert 0 < c.loc[(1250, 'greedy-cheapest'), 'weight_share'] < 1
    assert set(c.index.get_level_values('selector')) == set(SELECTORS)

def test_pareto_frontier_and_lookups():
    pts = pd.DataFrame({'mean_cost': [100, 200, 150, 300, 300, 50, 100], 'accuracy': [0.5, 0.7, 0.4, 0.7, 0.9, 0.2, 0.5]})
    fr = pareto_frontier(pts)
    assert list(zip(fr.mean_cost, fr.accuracy)) == [(50, 0.2), (100, 0.5), (200, 0.7), (300, 0.9)]
    # nothing on the frontier is dominated, and every point off it is
    for _, p in pts.iterrows():
        dominated = ((pts.mean_cost <= p.mean_cost) & (pts.accuracy >= p.accuracy) & ((pts.mean_cost < p.mean_cost) | (pts.accuracy > p.accuracy))).any()
        on = ((fr.mean_cost == p.mean_cost) & (fr.accuracy == p.accuracy)).any()
        assert dominated != on
    assert frontier_accuracy(fr, 199) == 0.5 and np.isnan(frontier_accuracy(fr, 49))
    assert frontier_cost(fr, 0.7) == 200 and np.isnan(frontier_cost(fr, 0.91))

def test_regret_table_signs():
    s = pd.DataFrame({'dataset': 'd', 'budget': [500.0]*4 + [1000.0]*4, 'n': 10,
                      'strategy': ['bamas', 'oracle', 'linear', 'feedback']*2,
                      'accuracy': [0.6, 0.8, 0.5, 0.7, 0.9, 0.9, 0.6, 0.8], 'mean_cost': [300., 400., 250., 600., 500., 450., 260., 700.]})
    r = regret_table(s).set_index('budget')
    assert r.loc[500.0, 'oracle_regret'] == pytest.approx(0.2) and r.loc[1000.0, 'oracle_regret'] == pytest.approx(0.0)
    assert r.loc[500.0, 'frontier_gap'] == pytest.approx(0.6 - 0.6)     # frontier at ≤300 µ$: linear at 1000 (260 µ$, 0.6)
    assert r.loc[1000.0, 'frontier_gap'] == pytest.approx(0.6 - 0.9)    # BAMAS beyond the frontier
    assert np.isnan(r.loc[1000.0, 'cost_excess'])                      # nothing else reaches 90%

@pytest.fixture(scope='module')
def syn(): return synthetic_tables(12, 8, seed=3)

def test_oracle_is_an_upper_bound_of_the_topologies(syn):
    test = split_tables(syn, 'test')
    runs = replay(test)
    acc = strategy_table(runs).pivot_table(index=['dataset', 'budget'], columns='strategy', values='accuracy')
    assert (acc['oracle'] >= acc[list(TOPOLOGIES)].max(axis=1) - 1e-12).all()
    o = oracle_runs(test)
    assert len(o) == o[['task_id', 'budget']].drop_duplicates().shape[0] == test[['task_id', 'budget']].drop_duplicates().shape[0]
    mix = topology_mix(runs, 'oracle')
    assert np.allclose(mix.sum(axis=1), 1) and list(mix.columns) == list(TOPOLOGIES)
    assert set(paper_claims(mix).claim) >= {'planner never chosen', 'simpler (linear/star) at low budget'}

def test_replay_needs_complete_cells(syn):
    test = split_tables(syn, 'test')
    ragged = test[~((test.topology == 'chat') | ((test.topology == 'star') & (test.budget == 500)))]
    ragged = ragged[~((ragged.topology == 'linear') & (ragged.budget > 500))]   # no cell has every strategy
    with pytest.raises(BamasError, match='nothing to replay'): replay(ragged)

def test_load_tables_and_summary(tmp_path, syn):
    ExperienceStore(tmp_path/'gsm8k-test').write(syn['syn-math-test'].assign(selection='{}', pool_id='p').to_dict('records'), {})
    (tmp_path/'mbpp-test').mkdir()
    t = load_tables(tmp_path)
    assert list(t) == ['gsm8k-test']
    s = table_summary(t).loc['gsm8k-test']
    assert s.tasks == syn['syn-math-test'].task_id.nunique() and s.complete_cells == s.tasks*5
    assert load_tables(tmp_path/'nothing') == {}

def test_selector_replay(syn, paper):
    test = split_tables(syn, 'test')
    local = load_pool(POOLS/'local.yaml')
    runs = replay(test).assign(strategy=lambda d: d.strategy.replace('linear', 'bamas'))
    sr = selector_replay(runs, logged_teams(test, local), local).set_index(['dataset', 'budget', 'selector'])
    ds = runs.dataset.iloc[0]
    assert sr.loc[(ds, 500.0, 'greedy-strongest'), 'replay'] == 'no team' and sr.loc[(ds, 500.0, 'greedy-strongest'), 'accuracy'] == 0
    assert sr.loc[(ds, 1250.0, 'greedy-cheapest'), 'replay'] == 'team never logged'
    lin = runs[(runs.strategy == 'bamas') & (runs.dataset == ds) & (runs.budget == 1250.0)].correct.mean()
    assert sr.loc[(ds, 1250.0, 'ilp'), 'accuracy'] == pytest.approx(lin)

def test_sweep_drawing_and_explorer(syn):
    summary = strategy_table(replay(split_tables(syn, 'test')))
    fig = draw_sweep(summary, 'syn-code', (875.0, 1625.0))
    assert {round(x) for l in fig.axes[0].lines for x in l.get_xdata()} == {875, 1250, 1625}
    with pytest.raises(BamasError, match='nothing to draw'): draw_sweep(summary, 'syn-code', (10.0, 20.0))
    ex = SweepExplorer({'all': summary, 'maths': summary[summary.dataset == 'syn-math']})
    ex.dataset.value = 'syn-code'
    assert ex.figure._suptitle.get_text() == 'syn-code · all'
    ex.table.value = 'maths'
    assert ex.dataset.value == 'syn-math' and ex.figure._suptitle.get_text() == 'syn-math · maths'
