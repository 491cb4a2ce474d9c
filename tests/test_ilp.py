"The ILP selection against exhaustive enumeration, on random pools drawn by hypothesis."
import itertools, json, math
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from bamas_nb.core import LLM, Pool, BamasError, est_call_cost, load_pool, BUDGETS
from bamas_nb.ilp import select_llms, tier_weights, InfeasibleBudget, min_budget

def brute(pool, B, min_llms, max_per_llm):
    W, costs, best = tier_weights(pool, B), [est_call_cost(l) for l in pool], None
    for xs in itertools.product(range(max_per_llm + 1), repeat=len(pool)):
        cost = sum(c*x for c, x in zip(costs, xs))
        if sum(xs) >= min_llms and cost <= B:
            key = (sum(W[l.tier]*x for l, x in zip(pool, xs)), -round(cost, 6))
            best = key if best is None or key > best else best
    return best

@st.composite
def pools(draw):
    n = draw(st.integers(1, 4))
    tiers = sorted(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    tiers = [sorted(set(tiers)).index(t) + 1 for t in tiers]           # tiers are 1..L without gaps
    return Pool(tuple(LLM(f'm{i}', f'x/m{i}', t, draw(st.floats(0.01, 1.0)), draw(st.floats(0.05, 4.0)),
                          draw(st.sampled_from([64, 128, 256, 512]))) for i, t in enumerate(tiers)))

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=pools(), B=st.floats(50, 4000), min_llms=st.integers(1, 3), max_per_llm=st.integers(1, 4))
def test_select_is_exact_optimum(pool, B, min_llms, max_per_llm):
    best = brute(pool, B, min_llms, max_per_llm)
    try: s = select_llms(pool, B, min_llms=min_llms, max_per_llm=max_per_llm)
    except InfeasibleBudget as e:
        assert best is None and e.min_budget > B
        return
    except BamasError as e:                                # the pool cannot field min_llms instances at all
        assert best is None and len(pool)*max_per_llm < min_llms, e
        return
    assert best is not None
    assert (s.objective, -round(s.est_cost, 6)) == best
    assert s.est_cost <= B + 1e-9 and sum(s.counts.values()) >= min_llms
    assert all(1 <= k <= max_per_llm for k in s.counts.values())

@settings(max_examples=200, deadline=None)
@given(pool=pools(), B=st.floats(200, 3000))
def test_one_higher_tier_outweighs_any_feasible_lower_team(pool, B):
    W = tier_weights(pool, B)
    for i in pool.tiers:
        lower = [l for l in pool if l.tier > i]
        # any affordable lower team holds at most floor(B/c) of each LLM
        bound = sum(W[l.tier]*math.floor(B/est_call_cost(l)) for l in lower)
        cheapest = {t: min(est_call_cost(l) for l in pool if l.tier == t) for t in pool.tiers}
        assert W[i] == 1 + sum(W[j]*math.floor(B/cheapest[j]) for j in pool.tiers if j > i)
        if len({l.tier for l in lower}) == len(lower): assert W[i] > bound

def test_paper_budget_grid(paper_pool):
    pool = load_pool(paper_pool)
    # every call reserves its whole 512-token cap, so a DeepSeek-V3 call is planned at 698.2 µ$ and a nano call at 254.8 µ$
    got = {b: dict(select_llms(pool, b).counts) for b in BUDGETS}
    assert got == {600: {'gpt-4.1-nano': 2}, 1000: {'deepseek-v3': 1, 'gpt-4.1-nano': 1}, 1700: {'deepseek-v3': 2, 'gpt-4.1-nano': 1},
                   2400: {'deepseek-v3': 3, 'gpt-4.1-nano': 1}, 3500: {'deepseek-v3': 5}}

def test_infeasible_reports_minimum(paper_pool):
    pool = load_pool(paper_pool)
    with pytest.raises(InfeasibleBudget) as e: select_llms(pool, 100)
    assert e.value.min_budget == pytest.approx(min_budget(pool)) == pytest.approx(509.6)
    assert 'at least 509.6 µ$' in str(e.value)

def test_free_tier_is_bounded_by_max_per_llm():
    pool = Pool((LLM('big', 'x/big', 1, 1.0, 4.0, 256), LLM('free', 'x/free', 2, 0.0, 0.0, 256)))
    s = select_llms(pool, 2000, max_per_llm=3)              # one big call is estimated at 1524 µ$
    assert tier_weights(pool, 2000, max_per_llm=3) == {1: 4, 2: 1}
    assert dict(s.counts) == {'big': 1, 'free': 3}
