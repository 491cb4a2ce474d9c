"""The budget guarantee as properties (hypothesis), over at least 10,000 runs: for random pools, budgets, prompts and
model outputs of any length — exactly `max_tokens` of garbage included, usage missing, calls failing — the money
spent in a run never exceeds its budget. A *run* is one Meter (one budget) and the calls made under it.

The bulk runs against an in-process provider (no HTTP), and each hypothesis example makes a few runs on one
random pool, so that 10,000 runs take seconds; hypothesis draws the pools, budgets, prompt text and the provider's
behaviours, a seeded generator the per-call details. A smaller property sends the same checks through litellm and
the fake OpenAI-compatible server."""
import asyncio, random
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from fake_openai_server import FakeOpenAIServer
from bamas_nb.core import LLM, Pool, TOPOLOGIES, est_call_cost
from bamas_nb.provider import RetryPolicy, prompt_bound
from bamas_nb.meter import Meter, BudgetExhausted
from bamas_nb.ilp import select_llms, InfeasibleBudget
from bamas_nb.tasks import load_tasks
from bamas_nb.runs import BASELINES
from bamas_nb.topologies import run_topology

# examples per property × runs per example
SEQUENTIAL, BATCH, TOPOLOGY, HTTP = (2_800, 3), (800, 2), (600, 1), (60, 1)
PLAN = {'sequential': SEQUENTIAL, 'batch': BATCH, 'topology': TOPOLOGY, 'http': HTTP}
RUNS = {}                                                           # property -> runs actually made
NO_WAIT = RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0)
PROPS = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
props = lambda name: settings(PROPS, max_examples=PLAN[name][0])

BEHAVIOURS = ('max-garbage', 'honest', 'no-usage', 'fail', 'empty')
ALPHABET = ''.join(map(chr, [*range(0, 0x7f), *range(0xa0, 0x250), *range(0x4e00, 0x4e80), *range(0x1f300, 0x1f340)]))

NOISE = ''.join(random.Random(0).choices(ALPHABET, k=40_000))

def garbage(n:int, rng:random.Random) -> str:
    "`n` random characters (ASCII, control characters, accents, CJK, emoji): a random window of a fixed noise text."
    i = rng.randrange(len(NOISE) - n) if n < len(NOISE) else 0
    return NOISE[i:i + n]

class ScriptedProvider:
    """Answers in turn as `behaviours` say: exactly max_tokens of garbage, an honest random usage, no usage, a failed
    attempt, or an empty answer. Honest is what a real server does: at most `max_tokens` completion tokens and at
    most the byte bound of prompt tokens (any byte-level tokenizer counts fewer). Outputs run to thousands of characters."""
    def __init__(self, behaviours, seed):
        self.behaviours, self.i, self.rng = behaviours, 0, random.Random(seed)
    def complete(self, llm, messages, params, timeout):
        what, rng = self.behaviours[self.i % len(self.behaviours)], self.rng; self.i += 1
        cap, bound = params['max_tokens'], prompt_bound(llm, messages)[0]
        if what == 'fail': raise TimeoutError('scripted failure')
        pt = rng.randint(1, bound)
        if what == 'max-garbage': return {'text': garbage(4*cap, rng), 'finish_reason': 'length', 'prompt_tokens': pt, 'completion_tokens': cap}
        if what == 'no-usage': return {'text': garbage(rng.randint(0, 4000), rng), 'finish_reason': 'stop', 'prompt_tokens': None, 'completion_tokens': None}
        if what == 'empty': return {'text': '', 'finish_reason': 'stop', 'prompt_tokens': pt, 'completion_tokens': 0}
        return {'text': garbage(rng.randint(1, 4000), rng), 'finish_reason': 'stop', 'prompt_tokens': pt, 'completion_tokens': rng.randint(1, cap)}
    async def acomplete(self, *a):
        await asyncio.sleep(0)                      # let the other calls of a batch interleave
        return self.complete(*a)

def make_pool(specs) -> Pool:
    return Pool(tuple(LLM(f'm{i}', f'openai/m{i}', tier, pin, pout, mt) for i, (tier, pin, pout, mt) in enumerate(specs)))

prices = st.one_of(st.just(0.0), st.floats(0.01, 30.0))           # µ$ per token, free models included
pools = st.lists(st.tuples(st.integers(1, 3), prices, prices, st.integers(1, 512)), min_size=1, max_size=4).map(make_pool)
# a budget: absolute (1 nano-dollar to 0.1 $), or a multiple of the pool's cheapest planned call (refusals near the edge)
budget_specs = st.one_of(st.tuples(st.just('abs'), st.floats(1e-3, 1e5)), st.tuples(st.just('rel'), st.floats(0.2, 25)))
texts = st.text(max_size=40)                                        # any unicode (control characters, emoji, empty)
behaviours = st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=4)

def budget_of(pool, spec) -> float:
    kind, x = spec
    return x if kind == 'abs' else max(1e-3, x*min(est_call_cost(l) for l in pool))

def requests_of(pool, text, rng, n_max=10):
    "Up to `n_max` requests: a random LLM, the text padded with up to 3,000 random characters, the LLM's cap or a smaller one."
    out = []
    for j in range(rng.randint(1, n_max)):
        llm = rng.choice(pool.llms)
        out.append(dict(llm=llm, messages=text + garbage(rng.choice([0, 10, 3000]), rng), sample=j,
                        max_tokens=rng.choice([None, rng.randint(1, llm.max_tokens)])))
    return out

def check_books(m:Meter, replies):
    "The invariants after a run: within budget, nothing held, the spend is the sum of the replies' costs."
    assert m._spent <= m._budget and m.spent <= m.budget and m.held == 0
    assert m.spent == pytest.approx(sum(r.cost for r in replies), rel=1e-9, abs=1e-9)
    for r in replies:
        assert r.cost <= r.reserved*(1 + 1e-12) + 1e-12                  # an honest provider never costs more than held
        if r.ok and not r.usage_reported: assert r.cost == pytest.approx(r.reserved) and (r.reserved == 0 or r.cost > 0)
        if not r.ok: assert r.cost == 0

def count(name): RUNS[name] = RUNS.get(name, 0) + 1

@props('sequential')
@given(pool=pools, specs=st.lists(budget_specs, min_size=SEQUENTIAL[1], max_size=SEQUENTIAL[1]), text=texts,
       behave=behaviours, seed=st.integers(0, 2**32))
def test_sequential_calls_never_overspend(pool, specs, text, behave, seed):
    rng = random.Random(seed)
    for spec in specs:
        count('sequential')
        m = Meter(budget_of(pool, spec), cache=None, retry=NO_WAIT, provider=ScriptedProvider(behave, rng.random()))
        replies = []
        for req in requests_of(pool, text, rng):
            left = m._budget - m._spent
            try: replies.append(m.call(**req))
            except BudgetExhausted as e: assert e.reservation.amount > left      # refused only when the worst case does not fit
            assert m._spent <= m._budget
        check_books(m, replies)

@props('batch')
@given(pool=pools, specs=st.lists(budget_specs, min_size=BATCH[1], max_size=BATCH[1]), text=texts, behave=behaviours,
       seed=st.integers(0, 2**32), in_flight=st.integers(1, 16))
def test_concurrent_batches_never_overspend(pool, specs, text, behave, seed, in_flight):
    rng = random.Random(seed)
    for spec in specs:
        count('batch')
        m = Meter(budget_of(pool, spec), cache=None, retry=NO_WAIT, provider=ScriptedProvider(behave, rng.random()), max_in_flight=in_flight)
        reqs = requests_of(pool, text, rng, n_max=16)
        replies = m.batch(reqs, progress=False)
        assert len(replies) == len(reqs)
        check_books(m, [r for r in replies if not r.refused])

TASKS = load_tasks('mini-math')

@pytest.fixture(scope='module', autouse=True)
def no_backoff():
    "Meters made inside topologies take their retry policy from the environment: two attempts, no waiting."
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('BAMAS_ATTEMPTS', '2'); mp.setenv('BAMAS_BACKOFF', '0'); yield

@props('topology')
@given(pool=pools, factor=st.floats(0.3, 40), topology=st.sampled_from(TOPOLOGIES + BASELINES), task=st.sampled_from(TASKS),
       behave=behaviours, seed=st.integers(0, 2**32))
def test_topology_runs_never_overspend(pool, factor, topology, task, behave, seed):
    "Whole topology runs (and baselines) with the ILP's team for a budget near what the pool's calls cost."
    count('topology')
    budget = budget_of(pool, ('rel', factor))
    try: sel = select_llms(pool, budget)
    except InfeasibleBudget: return
    o = run_topology(topology, task, sel, budget, cache=None, provider=ScriptedProvider(behave, seed))
    assert o.cost <= budget and o.usage.cost == pytest.approx(sum(t.cost for t in o.trace), rel=1e-9, abs=1e-9)
    assert all(t.cost <= t.reserved*(1 + 1e-12) + 1e-12 for t in o.trace)
    count('topology-feasible')

@pytest.fixture(scope='module')
def server():
    with FakeOpenAIServer(completion_tokens=64) as s: yield s

def test_over_http_with_max_tokens_garbage_and_missing_usage(server):
    "The same property through litellm and the fake server, which answers with exactly max_tokens of garbage or without usage."
    @props('http')
    @given(pool=pools, spec=budget_specs, text=texts, seed=st.integers(0, 2**32),
           mix=st.lists(st.sampled_from(['max-garbage', 'no-usage', 'zero-usage', 'half-usage', '500']), min_size=1, max_size=3),
           rate=st.floats(0, 1))
    def prop(pool, spec, text, seed, mix, rate):
        count('http')
        rng = random.Random(seed)
        pool = Pool(tuple(LLM(l.name, l.model, l.tier, l.in_price, l.out_price, l.max_tokens, server.api_base) for l in pool))
        server.set_faults([], fault_rate=rate, fault_mix=mix, seed=seed)
        m, replies = Meter(budget_of(pool, spec), cache=None, retry=NO_WAIT), []
        for req in requests_of(pool, text, rng, n_max=4):
            try: replies.append(m.call(**req))
            except BudgetExhausted: pass
        check_books(m, replies)
    prop()

def test_at_least_10000_runs_in_total():
    "Each property made every run it was planned to, and together they make at least 10,000."
    planned = {k: n*per for k, (n, per) in PLAN.items()}
    assert sum(planned.values()) >= 10_000
    ran = {k: RUNS.get(k, 0) for k in PLAN}
    if not all(ran.values()): pytest.skip(f'run the whole file to count the runs (ran: {ran})')
    assert all(ran[k] >= planned[k] for k in PLAN), (ran, planned)
    assert sum(ran.values()) >= 10_000 and RUNS['topology-feasible'] >= TOPOLOGY[0]//2, RUNS
    print(f"\nbudget property runs: {ran} = {sum(ran.values()):,} in total ({RUNS['topology-feasible']:,} feasible topology runs)")
