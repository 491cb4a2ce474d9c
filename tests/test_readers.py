"""What a reader sees in the saved notebooks (and so in JupyterLab, nbconvert's HTML, the Quarto site and the README):
no dollar sign of money is read as maths, and every saved widget is on display in a meaningful state.
The browser itself is checked by .ci/browser_check.py."""
import json, re
from pathlib import Path
import pytest
from conftest import ROOT
from dollars import markdown_maths, markdown_problems, html_problems, notebook_problems, fix_markdown

NBS = sorted((ROOT/'nbs').glob('*.ipynb'))

def _nb(name): return json.loads((ROOT/'nbs'/name).read_text())
def _text(v): return ''.join(v) if isinstance(v, list) else v

def test_the_scan_tells_money_from_maths():
    for money in ['18% at 500 µ$ to 38% at 2,000 µ$', '$0.27 / $1.10 per M tokens', 'prices in $ per million tokens',
                  '| cost (µ$) | 484.4 |\n| saved by cache (µ$) | 155.4 |', '5 µ\\$ and $W_i$', '$5 and $6']:
        assert markdown_problems(money), money
    for fine in ['18% at 500 µ<span>\\$</span> to 38% at 2,000 µ<span>\\$</span>', 'set `$BAMAS_CACHE` or `$HOME`',
                 '```sh\n$ bamas demo\n$ bamas run\n```', 'weights $W_i$ and $\\lfloor B/c_j \\rfloor$',
                 '$$\\max \\sum_j W_j x_j$$', 'a µ<span>\\$</span> and $W_i$, then 3 µ<span>\\$</span>']:
        assert not markdown_problems(fine), fine
    assert markdown_maths('$W_i$ per µ<span>\\$</span>, $$x^2$$')[0] == ['W_i', 'x^2']
    assert html_problems('<td>linear+star 16% at 500 µ$, 52% at 2,000 µ$</td>')
    assert html_problems('<p>5 µ$<br>6 µ$</p>')                 # <br> does not end MathJax's run of text
    assert not html_problems('<tr><th>500 µ$</th><th>875 µ$</th></tr>')
    assert not html_problems('<b>5 µ<span>$</span> of 9 µ<span>$</span></b>')
    assert not html_problems('<table class="dataframe tex2jax_ignore mathjax_ignore"><td>5 µ$, 6 µ$</td></table>')
    assert html_problems('<table class="tex2jax_ignore"><td>5 µ$, 6 µ$</td></table>')   # JupyterLab's MathJax 3 ignores that class

def test_the_fix_writes_money_the_house_way():
    test = lambda md, want: (fix_markdown(md), markdown_problems(fix_markdown(md))) == (want, [])
    assert test('18% at 500 µ$ to 38% at 2,000 µ$', '18% at 500 µ<span>\\$</span> to 38% at 2,000 µ<span>\\$</span>')
    assert test('5 µ$ and $W_i$; `$HOME`', '5 µ<span>\\$</span> and $W_i$; `$HOME`')     # maths and code keep their dollars
    assert test('\\$5 or $$\\max_j x_j$$\n\n$6', '<span>\\$</span>5 or $$\\max_j x_j$$\n\n<span>\\$</span>6')
    assert fix_markdown('a µ<span>\\$</span>, $x^2$') == 'a µ<span>\\$</span>, $x^2$'

@pytest.mark.parametrize('path', NBS, ids=lambda p: p.name)
def test_no_money_is_read_as_maths(path):
    problems = notebook_problems(path)
    assert not problems, f"{len(problems)} dollar signs would be typeset as maths:\n" + '\n'.join(problems[:20])

def _state(nb): return nb.get('metadata', {}).get('widgets', {}).get('application/vnd.jupyter.widget-state+json', {}).get('state', {})

@pytest.mark.parametrize('path', NBS, ids=lambda p: p.name)
def test_saved_widget_state_holds_only_widgets_on_display(path):
    # a widget a test made and never showed still has its models saved: test the widget on display and put it back
    nb = json.loads(path.read_text()); state = _state(nb)
    shown = [o['data']['application/vnd.jupyter.widget-view+json']['model_id'] for c in nb['cells'] for o in c.get('outputs', [])
             if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    seen, todo = set(), list(shown)
    while todo:
        m = todo.pop()
        if m in seen or m not in state: continue
        seen.add(m); todo += re.findall(r'IPY_MODEL_([\w-]+)', json.dumps(state[m]['state']))
    assert set(shown) <= set(state), f"{path.name}: widgets on display without saved state: {sorted(set(shown) - set(state))}"
    assert not set(state) - seen, f"{path.name}: {len(set(state) - seen)} of {len(state)} saved widget models are on no display: {sorted(set(state) - seen)[:6]}"

def test_ilp_explorer_is_saved_with_a_team():
    s = _state(_nb('01_ilp.ipynb'))
    table = next(m['state']['value'] for k, m in s.items() if m['model_name'] == 'HTMLModel' and k.startswith('bamas-team-table'))
    slider = next(m['state']['value'] for k, m in s.items() if m['model_name'] == 'IntSliderModel' and k.startswith('bamas-team-budget'))
    assert 'No team' not in table and 'LLMs, estimated' in table, table
    assert (slider, '<td>deepseek-v3</td>' in table) == (1250, True)
