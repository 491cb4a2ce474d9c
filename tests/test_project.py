"Project plumbing: the docs configuration nbdev uses is the top-level _quarto.yml, and README matches index.ipynb."
import os, subprocess, sys
from pathlib import Path
from conftest import ROOT

def test_nbs_quarto_yml_is_the_top_level_file():
    assert (ROOT/'nbs'/'_quarto.yml').resolve() == (ROOT/'_quarto.yml').resolve()

def test_proc_nbs_uses_our_quarto_config(tmp_path):
    # nbdev_proc_nbs first insists on installing Quarto; run the same steps it takes after that check.
    code = ("from nbdev.quarto import refresh_quarto_yml; from nbdev.serve import proc_nbs; "
            "refresh_quarto_yml(); print(proc_nbs(n_workers=0, file_glob='00_core.ipynb'))")
    p = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    proc = ROOT/'_proc'
    assert (proc/'_quarto.yml').read_text() == (ROOT/'_quarto.yml').read_text()
    assert (proc/'00_core.ipynb').exists()
    assert (ROOT/'_quarto.yml').read_text().startswith('# The Quarto project for the bamas-nb docs site')  # not rewritten

def test_readme_is_generated_from_index():
    p = subprocess.run([sys.executable, '.ci/readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr + p.stdout

def _widget_ids(nb):
    "Every widget model id a saved notebook names: in its outputs and in its saved widget state."
    ids = set(nb.get('metadata', {}).get('widgets', {}).get('application/vnd.jupyter.widget-state+json', {}).get('state', {}))
    for cell in nb['cells']:
        for out in cell.get('outputs', []):
            view = out.get('data', {}).get('application/vnd.jupyter.widget-view+json')
            if view: ids.add(view['model_id'])
    return ids

def test_saved_widgets_have_fixed_ids():
    # a random id (ipywidgets' default, 32 hex digits) would change the file on every rerun: build widgets with core.fixed_widget
    import json, re
    seen = {}
    for path in sorted((ROOT/'nbs').glob('*.ipynb')):
        ids = _widget_ids(json.loads(path.read_text()))
        if ids: seen[path.name] = ids
        random = sorted(i for i in ids if re.fullmatch(r'[0-9a-f]{32}', i))
        assert not random, f"{path.name} saves widgets with random ids {random[:3]}: make them with bamas_nb.core.fixed_widget"
    assert {'01_ilp.ipynb', '08_ablations.ipynb'} <= set(seen), sorted(seen)  # the explorers are on display, with their state saved

def test_no_cell_mixes_imports_with_other_code():
    # nbdev's docs pass runs every cell that imports something, in a fresh kernel without the cells before it:
    # such a cell must hold imports (and definitions) only (nbdev.processors._do_eval), or the docs build fails on names it never defined
    import ast, json
    bad = []
    for path in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, cell in enumerate(json.loads(path.read_text())['cells']):
            src = ''.join(cell['source'])
            if cell['cell_type'] != 'code' or 'nbdev_export()' in src or '#| eval: false' in src: continue
            if any(d in src for d in ('#| export', '#| exports', '#| exporti', '#| exec_doc')): continue
            try: tree = ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))))
            except SyntaxError: continue
            imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            if imports and not all(isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) for n in tree.body):
                bad.append(f'{path.name} cell {i}: {src.splitlines()[0]}')
    assert not bad, 'move the imports into an imports-only cell:\n' + '\n'.join(bad)

# Logbook wording: the docs say what the project is and how to use it, not the order in which it was made.
_HISTORY = [r'\bsessions?\s+\d', r'\b(?:later|earlier|previous|next)\s+sessions?\b', r'\bstretch(?:es)?\s+of\s+work\b',
            r'\brounds?\s+\d+\s+(?:to|and)\s+\d+', r'\bround\s+\d+\s+(?:is|comes)\s+next\b', r'\(round\s+\d+\)',
            r'\bmachine\b[^.]{0,40}\bwritten\s+on\b', r'\bwritten\s+on\s+(?:this|the|a)\b[^.]{0,20}\bmachine\b']
_SKIP_DIRS = {'.venv', '_proc', 'node_modules'}

def _doc_texts():
    "(name, text) of every Markdown file of the repository and every markdown cell of nbs/*.ipynb."
    import json
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith('.'))
        for f in sorted(files):
            if f.endswith('.md'): yield str((Path(top)/f).relative_to(ROOT)), (Path(top)/f).read_text()
    for path in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, cell in enumerate(json.loads(path.read_text())['cells']):
            if cell['cell_type'] == 'markdown': yield f'nbs/{path.name} cell {i}', ''.join(cell['source'])

def test_docs_describe_the_project_not_its_history():
    import re
    pat = re.compile('|'.join(_HISTORY), re.IGNORECASE)
    bad = [f'{name}: {" ".join(m.group(0).split())!r}' for name, text in _doc_texts() for m in pat.finditer(text)]
    assert not bad, ('describe the software and its data, not a logbook (no sessions, numbered rounds or who did what):\n'
                     + '\n'.join(bad))

def test_saved_outputs_name_no_local_path():
    # a warning's '/tmp/ipykernel_12345/…' or the checkout's own path differs on every machine and rerun: fix its cause
    import json, re
    root = str(ROOT.resolve())
    pat = re.compile(r'/tmp/ipykernel_\d+|' + re.escape(root))
    bad = []
    for path in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, cell in enumerate(json.loads(path.read_text())['cells']):
            for out in cell.get('outputs', []):
                text = json.dumps(out, ensure_ascii=False)
                if m := pat.search(text): bad.append(f'{path.name} cell {i}: {m.group(0)}')
    assert not bad, 'saved outputs name a local path (rerun after fixing the warning or print):\n' + '\n'.join(bad)
