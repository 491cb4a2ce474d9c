"""Render README.md from nbs/index.ipynb (saved outputs included), as `nbdev_readme` would with Quarto.

Quarto cannot be installed on the project's machines, so this small renderer writes the GitHub-flavoured
Markdown itself: markdown cells as they are, code cells fenced, their saved outputs below them; cells marked
`#| hide` are left out and `#|` directives are dropped. `python .ci/readme.py --check` fails when README.md is stale."""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']
def _txt(v): return ''.join(v) if isinstance(v, list) else v

def render(nb_path=root/'nbs'/'index.ipynb') -> str:
    nb, parts = json.loads(nb_path.read_text(encoding='utf-8')), []
    for cell in nb['cells']:
        src = _src(cell)
        lines = src.splitlines()
        directives = [l for l in lines if l.startswith('#|')]
        if any(d.split()[1:2] == ['hide'] for d in directives): continue
        if cell['cell_type'] == 'markdown': parts.append(src.strip()); continue
        if cell['cell_type'] != 'code': continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: parts.append(f"```python\n{code}\n```")
        for o in cell.get('outputs', []):
            data = o.get('data', {})
            if 'text/markdown' in data: parts.append(_txt(data['text/markdown']).strip())
            elif 'text/plain' in data: parts.append(f"```\n{_txt(data['text/plain']).rstrip()}\n```")
            elif o.get('output_type') == 'stream': parts.append(f"```\n{_txt(o['text']).rstrip()}\n```")
    return '<!-- generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    out, new = root/'README.md', render()
    if '--check' in sys.argv:
        if not out.exists() or out.read_text(encoding='utf-8') != new:
            sys.exit('README.md is out of date with nbs/index.ipynb: run `python .ci/readme.py` and commit it')
        print('README.md matches nbs/index.ipynb')
    else: out.write_text(new, encoding='utf-8'); print(f'wrote {out.name}')
