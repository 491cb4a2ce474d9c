"Analysis: preferred topologies, embedding maps, k-means and the probe's guards on tiny or degenerate data."
import numpy as np, pandas as pd, pytest
from threadpoolctl import threadpool_limits
from bamas_nb.core import TOPOLOGIES, BamasError
from bamas_nb.analysis import preferred_topology, embedding_maps, kmeans_scan, probe

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    with threadpool_limits(1): yield      # t-SNE and k-means crawl when their threads fight for two busy cores

@pytest.fixture(scope='module')
def blobs():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(0, 0.05, (15, 6)) + 1, rng.normal(0, 0.05, (15, 6)) - 1, rng.normal(0, 0.05, (15, 6)) + [1, -1]*3]

LABELS = ['a']*15 + ['b']*15 + ['c']*15

def test_preferred_topology_reward_and_ties():
    rows = []
    for b in (500.0, 2000.0):
        rows += [dict(task_id='t', dataset='d', text='T', budget=b, topology=t, correct=(t == 'star' and b == 500) or t == 'planner', cost=100.0)
                 for t in TOPOLOGIES]
        rows += [dict(task_id='u', dataset='d', text='U', budget=b, topology=t, correct=False, cost=100.0 if t != 'feedback' else 50.0) for t in TOPOLOGIES]
    p = preferred_topology(pd.DataFrame(rows)).set_index('task_id')
    assert p.loc['t', 'preferred'] == 'planner' and p.loc['t', 'decisive'] and p.loc['t', 'solved']
    assert p.loc['u', 'preferred'] == 'feedback' and not p.loc['u', 'decisive'] and not p.loc['u', 'solved']   # all fail: the cheapest wins
    with pytest.raises(BamasError, match='no runs of linear'): preferred_topology(pd.DataFrame(rows).assign(topology='naive'))

def test_maps_and_kmeans_find_the_blobs(blobs):
    m = embedding_maps(blobs)
    assert list(m.columns) == ['pca1', 'pca2', 'tsne1', 'tsne2'] and len(m) == 45
    assert sum(m.attrs['pca_explained']) > 0.9
    scan = kmeans_scan(blobs)
    assert scan.k.tolist() == list(range(2, 9))
    best = scan.loc[scan.silhouette.idxmax()]
    assert best.k == 3 and best.silhouette > 0.8
    assert embedding_maps(blobs[:6]).attrs['perplexity'] == pytest.approx(5/3)
    with pytest.raises(BamasError, match='at least 4 points'): embedding_maps(blobs[:3])
    assert kmeans_scan(blobs[:2]).empty

def test_probe_beats_majority_on_structure_and_not_on_noise(blobs):
    good = probe(blobs, LABELS, n_permutations=20)
    assert good['accuracy'] == 1.0 and good['majority'] == pytest.approx(1/3) and good['p_value'] < 0.1 and good['reason'] is None
    noise = probe(np.random.default_rng(1).normal(size=(40, 6)), ['x']*30 + ['y']*10, n_permutations=20)
    assert noise['majority'] == pytest.approx(0.75) and noise['p_value'] > 0.05

def test_probe_guards(blobs):
    r = probe(blobs[:7], ['a', 'a', 'a', 'b', 'b', 'c', 'd'], n_permutations=0)
    assert r['n'] == 5 and r['set_aside'] == ['c', 'd'] and r['cv'] == 'stratified 2-fold' and np.isnan(r['p_value'])
    assert probe(blobs[:4], ['a', 'b', 'c', 'd'])['reason'].startswith('fewer than two classes')
    assert probe(blobs[:5], ['a']*5)['reason'].startswith('fewer than two classes')
    assert probe(blobs[:0], [])['reason'].startswith('fewer than two classes')
    loo = probe(blobs[:6], ['a', 'a', 'a', 'b', 'b', 'b'], cv='loo', n_permutations=0)
    assert loo['cv'] == 'leave-one-out' and 0 <= loo['accuracy'] <= 1
    with pytest.raises(BamasError, match="cv must be"): probe(blobs, LABELS, cv='kfold')
    with pytest.raises(BamasError, match='rows but y has'): probe(blobs, LABELS[:-1])
