"The topology policy: training is deterministic, checkpoints round-trip and bad files fail clearly."
import json
import pandas as pd, pytest, torch
from bamas_nb.core import BamasError, TOPOLOGIES
from bamas_nb.policy import (synthetic_experience, TaskEmbedder, prepare, train_policy, TrainConfig, Policy,
                             save_policy, load_policy, evaluate, reward, RewardConfig, best_only, oracle_topology)

@pytest.fixture(scope='module')
def emb(): return TaskEmbedder()

@pytest.fixture(scope='module')
def trained(emb):
    syn = synthetic_experience(120, seed=3)
    data = prepare(syn, emb)
    net, hist = train_policy(data, TrainConfig(epochs=120, lr=3e-3))
    return Policy(net, data.b_max, emb), hist, syn

def test_learns_the_synthetic_ground_truth(trained):
    policy, hist, _ = trained
    assert policy.choose('math task 777: apples percent sum hours train miles', 2000)[0] == 'feedback'
    assert policy.choose('code task 778: string reverse list tuple sort prime', 2000)[0] == 'linear'
    assert hist.entropy.iloc[-1] < hist.entropy.iloc[0]

def test_training_is_deterministic(emb):
    data = prepare(synthetic_experience(40, seed=5), emb)
    a, ha = train_policy(data, TrainConfig(epochs=4, batch_size=300))
    b, hb = train_policy(data, TrainConfig(epochs=4, batch_size=300))
    assert ha.loss.tolist() == hb.loss.tolist()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

def test_checkpoint_roundtrip_and_errors(trained, emb, tmp_path):
    policy = trained[0]
    p = save_policy(policy, tmp_path/'p.pt')
    q = load_policy(p, emb)
    assert (q.probs(['x'], [900]) == policy.probs(['x'], [900])).all()
    (tmp_path/'junk.pt').write_bytes(b'\x00garbage')
    with pytest.raises(BamasError, match='not a readable policy checkpoint'): load_policy(tmp_path/'junk.pt', emb)
    torch.save({'format': 'something else'}, tmp_path/'other.pt')
    with pytest.raises(BamasError, match='not a bamas-nb policy checkpoint'): load_policy(tmp_path/'other.pt', emb)
    ck = torch.load(p, weights_only=True); ck['topologies'] = ['a', 'b']; torch.save(ck, tmp_path/'topo.pt')
    with pytest.raises(BamasError, match='trained for topologies'): load_policy(tmp_path/'topo.pt', emb)
    ck = torch.load(p, weights_only=True); ck['embedder'] = 'another model'; torch.save(ck, tmp_path/'emb.pt')
    with pytest.raises(BamasError, match="trained on embeddings from 'another model'"): load_policy(tmp_path/'emb.pt', emb)
    ck = torch.load(p, weights_only=True); ck['state_dict']['head.3.weight'] = torch.zeros(5, 128); torch.save(ck, tmp_path/'shape.pt')
    with pytest.raises(BamasError, match='weights do not fit'): load_policy(tmp_path/'shape.pt', emb)

def test_reward_defaults_are_the_papers():
    cfg = RewardConfig()
    assert (cfg.success, cfg.failure, cfg.over_budget, cfg.saving) == (1000, -1000, -1000, 1e-4)
    assert reward([0], [2000], [1000])[0] == -2000          # wrong and over budget

def test_oracle_and_best_only():
    df = pd.DataFrame({'task_id': ['t']*4, 'text': ['t']*4, 'budget': [1000.]*4, 'topology': list(TOPOLOGIES),
                       'correct': [True, True, False, True], 'cost': [900., 300., 100., 1200.]})
    assert oracle_topology(df).tolist() == ['star']          # correct, within budget, cheapest
    assert best_only(df).topology.tolist() == ['star']

def test_evaluate_reports_per_budget(trained):
    policy, _, syn = trained
    ev = evaluate(policy, synthetic_experience(30, seed=9).assign(text=lambda d: d.text + ' new'))
    assert list(ev.columns) == ['n', 'accuracy', 'mean_cost', 'over_budget', 'oracle_agreement', 'oracle_accuracy']
    assert (ev.n == 30).all() and ev.accuracy.between(0, 1).all()

def test_empty_or_bad_tables_fail_clearly(emb):
    with pytest.raises(BamasError, match='empty'): prepare(pd.DataFrame(), emb)
    with pytest.raises(BamasError, match='lacks column'): prepare(pd.DataFrame({'text': ['a']}), emb)

def test_train_cli(bamas, tmp_path):
    synthetic_experience(30, seed=1).to_parquet(tmp_path/'e.parquet')
    rc, out, err = bamas('train', '--experience', tmp_path/'e.parquet', '--out', tmp_path/'p.pt', '--epochs', '3', '--json')
    assert rc == 0, err
    r = json.loads(out)
    assert r['records'] == 30*5*4 and r['steps'] == 3 and (tmp_path/'p.pt').exists()
    rc, out, err = bamas('train', '--experience', tmp_path/'missing.parquet', '--out', tmp_path/'q.pt', '--json')
    assert rc == 2 and 'no such experience table' in json.loads(out)['error'] and 'Traceback' not in err
    pd.DataFrame().to_parquet(tmp_path/'empty.parquet')
    rc, _, err = bamas('train', '--experience', tmp_path/'empty.parquet', '--out', tmp_path/'q.pt')
    assert rc == 2 and 'empty' in err
