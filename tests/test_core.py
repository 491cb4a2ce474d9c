"Pool files as users write them by hand: every mistake gets a one-line error naming file, entry and field."
import math
import pytest, yaml
from bamas_nb.core import LLM, Pool, PoolError, Usage, load_pool, save_pool, call_cost, est_call_cost, check_budget, BudgetError

GOOD = {'name': 'a', 'model': 'openai/a', 'tier': 1, 'in_price': 0.5, 'out_price': 2.0, 'max_tokens': 128}

def write_pool(tmp_path, entries, name='pool.yaml'):
    p = tmp_path/name; p.write_text(yaml.safe_dump({'llms': entries})); return p

def test_shipped_pools_load(paper_pool, local_pool):
    assert load_pool(paper_pool).names == ['deepseek-v3', 'gpt-4.1-nano']
    local = load_pool(local_pool)
    assert [l.tier for l in local] == [1, 2]
    assert all(l.api_base.startswith('http://127.0.0.1:') for l in local)

@pytest.mark.parametrize('field,value,msg', [
    ('tier', 0, 'tier must be an integer ≥ 1'), ('tier', 1.5, 'tier must be an integer ≥ 1'),
    ('in_price', -0.1, 'in_price must be a number ≥ 0'), ('out_price', 'cheap', 'out_price must be a number ≥ 0'),
    ('out_price', float('nan'), 'out_price must be a number ≥ 0'), ('max_tokens', 0, 'max_tokens must be an integer > 0'),
    ('name', '', 'name must be a non-empty string'), ('api_base', 5, 'api_base must be a URL string')])
def test_bad_field_names_file_entry_and_field(tmp_path, field, value, msg):
    p = write_pool(tmp_path, [GOOD, {**GOOD, 'name': 'b', field: value}])
    with pytest.raises(PoolError) as e: load_pool(p)
    assert str(e.value).startswith(f"{p}: llms[1]") and msg in str(e.value)

def test_duplicate_unknown_and_missing(tmp_path):
    with pytest.raises(PoolError, match='name is used twice'): load_pool(write_pool(tmp_path, [GOOD, GOOD]))
    with pytest.raises(PoolError, match='unknown key.*temperature'): load_pool(write_pool(tmp_path, [{**GOOD, 'temperature': 0}]))
    with pytest.raises(PoolError, match='missing field.*out_price'):
        load_pool(write_pool(tmp_path, [{k: v for k, v in GOOD.items() if k != 'out_price'}]))
    (tmp_path/'x.yaml').write_text('llms: {a: 1}')
    with pytest.raises(PoolError, match='must be a list'): load_pool(tmp_path/'x.yaml')

def test_roundtrip(tmp_path, local_pool):
    pool = load_pool(local_pool)
    assert load_pool(save_pool(pool, tmp_path/'p.yaml')) == pool

def test_costs_in_micro_dollars():
    l = LLM(**{**GOOD, 'api_base': None})
    assert call_cost(l, 1_000_000, 0) == pytest.approx(500_000)   # $0.50 per M prompt tokens
    assert est_call_cost(l) == pytest.approx(0.5*500 + 2.0*128)

def test_usage_sums():
    l = LLM(**GOOD)
    us = [Usage.of_call(l, 100, 10), Usage.of_call(l, 50, 5, cached=True)]
    total = sum(us)
    assert (total.calls, total.prompt_tokens, total.completion_tokens, total.cached_calls) == (2, 150, 15, 1)
    assert total.cost == pytest.approx(0.5*150 + 2.0*15)
    assert total.cached_cost == pytest.approx(0.5*50 + 2.0*5)

@pytest.mark.parametrize('bad', [-1, 0, float('nan'), float('inf'), 'x', None, [1]])
def test_bad_budgets(bad):
    with pytest.raises(BudgetError): check_budget(bad)
