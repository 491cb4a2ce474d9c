"""Where a `$` in a notebook would be read as maths: by JupyterLab (its markdown pass pairs `$…$` and `$$…$$` before
marked runs, then MathJax pairs the dollars it finds in the page), by nbconvert's HTML (MathJax 2 on the page) and
by Quarto (pandoc's `tex_math_dollars`).

The convention that all three show as a plain dollar sign:
- in Markdown (cells, `text/markdown` outputs): `<span>\\$</span>` (`bamas_nb.core.md_dollars` writes it). The
  backslash keeps JupyterLab's markdown pass and pandoc from opening maths; the span keeps MathJax from pairing the
  dollar with another one in the same paragraph (MathJax never pairs across elements);
- in HTML (`text/html` outputs, widget values): no two `$` in the same run of text, e.g. `<span>$</span>`
  (`bamas_nb.core.html_dollars`), or a table marked `tex2jax_ignore mathjax_ignore` (pandas' option
  `display.html.use_mathjax=False`; the first class is nbconvert's MathJax 2, the second JupyterLab's MathJax 3).

Genuine maths (`$W_i$`, `$$\\max …$$`) is left alone: a pair of dollars whose content reads as TeX (a backslash,
`_`, `^`, braces or `=`; or a single letter), with no space just inside the dollars and no `µ`."""
import json, re
from html.parser import HTMLParser
from pathlib import Path

MD_DOLLAR = '<span>\\$</span>'
_FENCE = re.compile(r'^(?P<f>`{3,}|~{3,})[^\n]*\n.*?^(?P=f)[`~]*[ \t]*$', re.M | re.S)
_CODE_SPAN = re.compile(r'(`+)[^\n]*?[^`\n]\1(?!`)')
_TEX = re.compile(r'[\\_^{}=]|^[A-Za-z]$')

def strip_code(md:str) -> str:
    "`md` with fenced blocks and code spans blanked (no renderer reads maths in code)."
    blank = lambda m: re.sub(r'[^\n]', ' ', m.group())
    return _CODE_SPAN.sub(blank, _FENCE.sub(blank, md.replace('\r\n', '\n')))

def _is_maths(content:str, display:bool) -> bool:
    if not content.strip() or 'µ' in content or not _TEX.search(content.strip()): return False
    return display or (not content[0].isspace() and not content[-1].isspace())

def _context(text, i, n=40): return ' '.join(text[max(0, i-n):i+n].split())

def _scan(md:str) -> tuple[list[str], list[tuple[int, str]]]:
    "(the maths in `md`, the problems as (offset in `md` of the offending `$`, what))."
    text, maths, problems = strip_code(md.replace('\r\n', '\n')).replace(MD_DOLLAR, ' '*len(MD_DOLLAR)), [], []
    for m in re.finditer(r'\\\$', text):
        problems.append((m.start(), f"bare \\$ (MathJax pairs it with another $ of its paragraph; write {MD_DOLLAR}): …{_context(text, m.start())}…"))
    text = text.replace('\\$', '  ')
    for pm in re.finditer(r'(?:[^\n]|\n(?![ \t]*\n))+', text):   # paragraphs, with their offsets
        para, base, i = pm.group(), pm.start(), 0
        while (j := para.find('$', i)) >= 0:
            delim = '$$' if para.startswith('$$', j) else '$'
            k = para.find(delim, j + len(delim))
            if k < 0:
                problems.append((base + j, f"unpaired $ (money? write {MD_DOLLAR}): …{_context(para, j)}…")); break
            content, after = para[j+len(delim):k], para[k+len(delim):k+len(delim)+1]
            if _is_maths(content, delim == '$$') and not (delim == '$' and after.isdigit()): maths.append(content)
            else: problems.append((base + j, f"{delim}…{delim} read as maths (money? write {MD_DOLLAR}): …{_context(para, j)}…"))
            i = k + len(delim)
    return maths, sorted(problems)

def markdown_maths(md:str) -> tuple[list[str], list[str]]:
    "(the maths JupyterLab would typeset in Markdown `md`, the problems: each a `$` that is not money written the house way)."
    maths, problems = _scan(md)
    return maths, [p for _, p in problems]

def markdown_problems(md:str) -> list[str]: return markdown_maths(md)[1]

def fix_markdown(md:str) -> str:
    "`md` with every `$` the scan objects to written as `MD_DOLLAR`, one at a time (so that `5 µ$ and $W_i$` keeps its maths)."
    md = md.replace('\r\n', '\n')
    while (problems := _scan(md)[1]):
        i = problems[0][0]
        n = 2 if md.startswith('\\$', i) else 1
        md = md[:i] + MD_DOLLAR + md[i+n:]
    return md

_SKIP = {'script', 'noscript', 'style', 'textarea', 'pre', 'code', 'annotation', 'annotation-xml'}
_VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
_IGNORE = {'tex2jax_ignore', 'mathjax_ignore'}   # both: the first is MathJax 2's (nbconvert), the second MathJax 3's (JupyterLab)

class _Runs(HTMLParser):
    "Runs of text MathJax scans as one string: every element but <br>/<wbr> (and comments) ends a run."
    def __init__(self):
        super().__init__(convert_charrefs=True); self.stack, self.runs, self.cur = [], [], []
    def _end_run(self):
        if self.cur: self.runs.append(''.join(self.cur)); self.cur = []
    def _skipping(self): return any(s for _, s in self.stack)
    def handle_starttag(self, tag, attrs):
        if tag in ('br', 'wbr'): return
        self._end_run()
        if tag in _VOID: return
        classes = set((dict(attrs).get('class') or '').split())
        self.stack.append((tag, tag in _SKIP or _IGNORE <= classes))
    def handle_startendtag(self, tag, attrs):
        if tag not in ('br', 'wbr'): self._end_run()
    def handle_endtag(self, tag):
        if tag in _VOID: return
        self._end_run()
        for n in range(len(self.stack) - 1, -1, -1):
            if self.stack[n][0] == tag: del self.stack[n:]; break
    def handle_data(self, data):
        if not self._skipping(): self.cur.append(data)
    def close(self): super().close(); self._end_run()

def html_problems(html:str) -> list[str]:
    "Runs of text in `html` where MathJax would pair two dollars (or a `\\$` that shows a backslash without MathJax)."
    p = _Runs(); p.feed(html); p.close(); problems = []
    for run in p.runs:
        if '\\$' in run: problems.append(f"\\$ in HTML (shows a backslash where no MathJax runs; write <span>$</span>): …{_context(run, run.index(chr(92)+'$'))}…")
        if run.replace('\\$', '').count('$') >= 2: problems.append(f"two $ in one run of HTML text (MathJax pairs them; put each in its own <span>): …{_context(run, run.index('$'))}…")
    return problems

def _text(v): return ''.join(v) if isinstance(v, list) else str(v)

def notebook_problems(path:Path) -> list[str]:
    "Every `$` in a saved notebook that JupyterLab, nbconvert or Quarto would read as maths, as 'file cell N: what'."
    nb, out = json.loads(Path(path).read_text()), []
    for i, cell in enumerate(nb['cells']):
        where = f"{Path(path).name} cell {i}"
        if cell['cell_type'] == 'markdown': out += [f"{where} (markdown): {p}" for p in markdown_problems(_text(cell['source']))]
        for o in cell.get('outputs', []):
            data = o.get('data', {})
            if 'text/markdown' in data:
                out += [f"{where} (Markdown output): {p}" for p in markdown_problems(_text(data['text/markdown']))]
            if 'text/html' in data: out += [f"{where} (HTML output): {p}" for p in html_problems(_text(data['text/html']))]
    state = nb.get('metadata', {}).get('widgets', {}).get('application/vnd.jupyter.widget-state+json', {}).get('state', {})
    for mid, m in state.items():
        s = m.get('state', {})
        for k in ('value', 'description', 'placeholder'):
            if isinstance(s.get(k), str) and '$' in s[k]:
                out += [f"{Path(path).name} widget {mid}.{k}: {p}" for p in html_problems(s[k])]
    return out

def fix_notebook(path:Path) -> int:
    "Rewrite the money in `path`'s markdown cells the house way (`fix_markdown`); the number of cells changed."
    raw = Path(path).read_text(); nb, n = json.loads(raw), 0
    for cell in nb['cells']:
        if cell['cell_type'] != 'markdown': continue
        src = _text(cell['source']); new = fix_markdown(src)
        if new != src: cell['source'], n = new.splitlines(keepends=True), n + 1
    if n: Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return n

if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser(description='Scan notebooks for dollar signs read as maths; --fix rewrites those of markdown cells.')
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--fix', action='store_true', help="write markdown cells' money as " + MD_DOLLAR + " (outputs: re-execute)")
    a = ap.parse_args(); left = 0
    for path in a.notebooks:
        if a.fix: print(f"{path}: {fix_notebook(path)} markdown cells rewritten")
        problems = notebook_problems(path); left += len(problems)
        print('\n'.join(problems) if problems else f"{path}: no dollar sign read as maths")
    raise SystemExit(1 if left else 0)
