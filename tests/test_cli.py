"`bamas` as a user runs it: one JSON object with --json, one-line errors with exit status 2 and no traceback."
import json
import pytest, yaml

def test_select_json(bamas, paper_pool):
    rc, out, err = bamas('select', '--pool', paper_pool, '--budget', '1250', '--json')
    assert rc == 0, err
    r = json.loads(out)                                   # exactly one JSON object
    assert r['counts'] == {'deepseek-v3': 1, 'gpt-4.1-nano': 2} and r['llms'] == ['deepseek-v3', 'gpt-4.1-nano', 'gpt-4.1-nano']
    assert r['est_cost'] == pytest.approx(1207.8) and r['weights'] == {'1': 5, '2': 1}

def test_select_text(bamas, local_pool):
    rc, out, _ = bamas('select', '--pool', local_pool, '--budget', '800')
    assert rc == 0 and '3 x qwen-0.5b' in out

@pytest.mark.parametrize('args,msg', [
    (['--budget', '-5'], 'budget must be > 0'), (['--budget', 'nan'], 'budget must be finite'),
    (['--budget', 'abc'], "got 'abc'"), (['--budget', '0'], 'budget must be > 0'),
    (['--budget', '100'], 'raise the budget to at least 509.6')])
def test_select_bad_budget(bamas, paper_pool, args, msg):
    rc, out, err = bamas('select', '--pool', paper_pool, *args, '--json')
    assert rc == 2 and msg in json.loads(out)['error']
    assert err.startswith('bamas select: error:') and err.count('\n') == 1 and 'Traceback' not in err

def test_select_bad_pool(bamas, tmp_path):
    rc, out, err = bamas('select', '--pool', tmp_path/'missing.yaml', '--budget', '1000')
    assert rc == 2 and 'cannot read pool file' in err and 'Traceback' not in err and out == ''
    bad = tmp_path/'bad.yaml'; bad.write_text(yaml.safe_dump({'llms': [{'name': 'x', 'model': 'm', 'tier': 1, 'in_price': -1, 'out_price': 1, 'max_tokens': 5}]}))
    rc, _, err = bamas('select', '--pool', bad, '--budget', '1000')
    assert rc == 2 and "llms[0] ('x'): in_price must be a number ≥ 0" in err

def test_help_lists_subcommands(bamas):
    rc, out, _ = bamas('--help')
    assert rc == 0 and 'select' in out
