"""What a reader sees, checked in a real headless Chromium (Debian's, driven by Playwright).

1. JupyterLab on copies of nbs/01_ilp.ipynb and nbs/08_ablations.ipynb: run every cell (no cell may fail), then move
   every widget of the explorers like a reader would (slider keys, drop-down choices) and wait until the output it
   drives changes. In every markdown cell MathJax must typeset exactly the maths the scan (tests/dollars.py) finds in
   its source, nothing in an output, and report no error.
2. nbconvert's HTML of every notebook (its saved outputs), with a local MathJax 2 in place of the one nbconvert's
   page loads from a CDN: MathJax reports no error, the formulas it typesets are exactly the maths of the notebook,
   and the page text shows no raw TeX of those formulas and no `$$`, `\\$` or `<span>` left over.

Needs /usr/bin/chromium (`apt-get install chromium`) and `pip install -r .ci/browser-requirements.txt`; never
`playwright install` (it downloads a browser of its own, which cannot work here).
Run from the repository: `.venv/bin/python .ci/browser_check.py` (`--keep DIR` keeps the pages and screenshots).
"""
import argparse, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tests'))
from dollars import markdown_maths, markdown_problems   # noqa: E402  (the scan the tests use)

for k, v in dict(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', LITELLM_LOCAL_MODEL_COST_MAP='True').items(): os.environ.setdefault(k, v)   # as .ci/run
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
LAB_NOTEBOOKS = ('01_ilp.ipynb', '08_ablations.ipynb')
LAB_SETTINGS = {   # no autosave (the copies stay as they are), every cell in the page, no news or update checks
    '@jupyterlab/docmanager-extension/plugin': {'autosave': False},
    '@jupyterlab/notebook-extension/tracker': {'windowingMode': 'none'},
    '@jupyterlab/apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False},
    '@jupyterlab/extensionmanager-extension/plugin': {'enabled': False}}
T0 = time.time()

def log(msg): print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)

class CheckFailed(AssertionError): pass

def check(ok, msg):
    if not ok: raise CheckFailed(msg)

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']
def _text(v): return ''.join(v) if isinstance(v, list) else v

def expected_maths(nb:dict) -> list[str]:
    "The formulas of a notebook in page order: its markdown cells' maths, and that of its saved Markdown outputs."
    out = []
    for c in nb['cells']:
        if c['cell_type'] == 'markdown': out += markdown_maths(_src(c))[0]
        for o in c.get('outputs', []):
            if 'text/markdown' in o.get('data', {}): out += markdown_maths(_text(o['data']['text/markdown']))[0]
    return out

def tex_commands(maths) -> set[str]: return {m for f in maths for m in re.findall(r'\\[A-Za-z]{2,}', f)}

def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _wait(fn, timeout, what, every=0.5):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v: return v
        time.sleep(every)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")

# ---------------------------------------------------------------------------------------------------- JupyterLab
def start_lab(work:Path) -> tuple[subprocess.Popen, str]:
    "JupyterLab serving `work`, with its own settings, runtime and workspace folders under it."
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(work/'lab-settings'), JUPYTERLAB_WORKSPACES_DIR=str(work/'lab-workspaces'),
               JUPYTER_RUNTIME_DIR=str(work/'runtime'), JUPYTER_CONFIG_DIR=str(work/'config'))
    for plugin, values in LAB_SETTINGS.items():
        ext, name = plugin.rsplit('/', 1)
        p = work/'lab-settings'/ext/f'{name}.jupyterlab-settings'; p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(values))
    port = _free_port()
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--IdentityProvider.token=',
           '--ServerApp.password=', f'--ServerApp.root_dir={work}', '--LabApp.expose_app_in_browser=True',
           '--ServerApp.disable_check_xsrf=True']
    if os.geteuid() == 0: cmd.append('--allow-root')
    lab = subprocess.Popen(cmd, cwd=work, env=env, stdout=open(work/'lab.log', 'w'), stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    def up():
        check(lab.poll() is None, f"JupyterLab exited ({lab.returncode}):\n{(work/'lab.log').read_text()[-3000:]}")
        try: return urllib.request.urlopen(f'{url}/api/status', timeout=2).status == 200
        except OSError: return False
    _wait(up, 120, 'JupyterLab to answer')
    return lab, url

_STATE = """() => {
  const p = window.jupyterapp.shell.currentWidget, k = p && p.sessionContext.session && p.sessionContext.session.kernel;
  if (!k) return {status: 'no kernel'};
  const code = p.content.widgets.filter(c => c.model.type === 'code');
  const err = code.find(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
  return {status: k.status, total: code.length,
          done: code.filter(c => c.model.executionCount !== null && c.model.executionState !== 'running').length,
          error: err ? err.model.sharedModel.getSource().slice(0, 300) + '\\n' +
                       JSON.stringify(err.model.outputs.toJSON().filter(o => o.output_type === 'error')).slice(0, 1500) : null};
}"""
BARE = "mjx-container, code, pre, script, style, .MathJax, .MathJax_Display, .MathJax_Preview, .MathJax_CHTML"   # not prose: maths, code
_BARE_BODY = f"""() => {{ const n = document.body.cloneNode(true); n.querySelectorAll('{BARE}').forEach(m => m.remove()); return n.textContent; }}"""
_CELLS = """() => {
  const BARE = '""" + BARE + """';
  const bare = el => { if (!el) return ''; const n = el.cloneNode(true); n.querySelectorAll(BARE).forEach(m => m.remove()); return n.textContent; };
  return window.jupyterapp.shell.currentWidget.content.widgets.map((c, i) => {
    const md = c.model.type === 'markdown' ? c.node.querySelector('.jp-MarkdownOutput') : null;
    const outs = c.node.querySelector('.jp-OutputArea');
    return {i, type: c.model.type, source: c.model.sharedModel.getSource(),
            md_maths: md ? md.querySelectorAll('mjx-container').length : 0, md_text: bare(md),
            out_maths: outs ? outs.querySelectorAll('mjx-container').length : 0, out_text: outs ? bare(outs) : '',
            errors: c.node.querySelectorAll('mjx-merror, merror').length};
  });
}"""

def check_page_text(text:str, where:str, commands:set[str]):
    for bad in ('$$', '\\$', '<span', '</span>'): check(bad not in text, f"{where}: the page shows {bad!r}: …{_around(text, bad)}…")
    for cmd in commands: check(not re.search(re.escape(cmd) + r'(?![A-Za-z])', text), f"{where}: raw TeX {cmd} in the page text: …{_around(text, cmd)}…")

def _around(text, s, n=60):
    i = text.find(s); return ' '.join(text[max(0, i-n):i+n].split())

def shutdown_kernels(url:str):
    try:
        for k in json.load(urllib.request.urlopen(f'{url}/api/kernels', timeout=10)):
            urllib.request.urlopen(urllib.request.Request(f"{url}/api/kernels/{k['id']}", method='DELETE'), timeout=30)
    except OSError as e: log(f"(could not shut the kernels down: {e})")

def run_in_lab(page, url:str, name:str, timeout:float):
    page.goto(f"{url}/lab/tree/nbs/{name}?reset")   # a fresh workspace: this notebook alone
    page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=180_000)
    _wait(lambda: page.evaluate(_STATE).get('status') == 'idle', 180, f'the kernel of {name}')
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells'); 0")
    def finished():
        s = page.evaluate(_STATE)
        check(not s.get('error'), f"{name}: a cell failed in JupyterLab:\n{s.get('error')}")
        return s.get('status') == 'idle' and s.get('done') == s.get('total') and s
    s = _wait(finished, timeout, f'{name} to run', every=1)
    log(f"{name}: {s['total']} code cells ran in JupyterLab without an error")

def check_lab_maths(page, name:str):
    cells, n_maths = page.evaluate(_CELLS), 0
    commands = tex_commands(f for c in cells if c['type'] == 'markdown' for f in markdown_maths(c['source'])[0])
    for c in cells:
        where = f"{name} cell {c['i']}"
        check(c['errors'] == 0, f"{where}: MathJax reports an error")
        check(c['out_maths'] == 0, f"{where}: MathJax typeset {c['out_maths']} formulas in an output (money read as maths?): {c['out_text'][:200]!r}")
        check_page_text(c['out_text'], f"{where} (output)", commands)
        if c['type'] != 'markdown': continue
        want = len(markdown_maths(c['source'])[0]); n_maths += want
        check(c['md_maths'] == want, f"{where}: MathJax typeset {c['md_maths']} formulas, the source has {want} (money read as maths?): {c['md_text'][:300]!r}")
        check_page_text(c['md_text'], f"{where} (markdown)", commands)
    log(f"{name}: {sum(c['type'] == 'markdown' for c in cells)} markdown cells typeset their {n_maths} formulas and nothing else; outputs hold no maths")

def _changes(page, get, act, what, until=None, timeout=300):
    "Do `act`, wait until `get()` differs from before (and `until` holds), then until the kernel is idle again."
    before = get(); act()
    _wait(lambda: (v := get()) != before and (until is None or until(v)), timeout, what)
    _wait(lambda: page.evaluate(_STATE).get('status') == 'idle', timeout, 'the kernel to settle'); time.sleep(1)
    log(f"  {what}: changed")

def move_ilp_explorer(page):
    cell = page.locator('.jp-Cell', has=page.locator('.widget-slider')).first
    team = cell.locator('.widget-html-content').first
    handle = cell.locator('.noUi-handle').first
    check('LLMs, estimated' in team.inner_text(), f"the ILP explorer opens without a team: {team.inner_text()!r}")
    def keys():
        handle.focus()
        for _ in range(4): handle.press('ArrowRight')
    _changes(page, team.inner_text, keys, 'ILP explorer: the team table after 4 steps (25 µ$ each) of the budget slider',
             until=lambda t: 'of 1,350 µ$' in t)

def move_sweep_explorer(page):
    cell = page.locator('.jp-Cell', has=page.locator('.widget-dropdown')).first
    figure = lambda: cell.locator('.jp-OutputArea-output img').last.get_attribute('src')
    table, dataset = cell.locator('.widget-dropdown select').nth(0), cell.locator('.widget-dropdown select').nth(1)
    other = lambda sel: [o for o in sel.locator('option').all_inner_texts() if o != sel.evaluate('s => s.options[s.selectedIndex].text')][0]
    _changes(page, figure, lambda: dataset.select_option(label=other(dataset)), 'sweep explorer: the figure after choosing another data set')
    handle = cell.locator('.noUi-handle').first
    def keys(): handle.focus(); handle.press('ArrowRight')
    _changes(page, figure, keys, 'sweep explorer: the figure after moving the budget range')
    if table.locator('option').count() > 1:
        _changes(page, figure, lambda: table.select_option(label=other(table)), 'sweep explorer: the figure after choosing another table')

def lab_check(browser, work:Path, timeout:float):
    (work/'nbs').mkdir(parents=True)
    for p in (ROOT/'nbs').glob('*.ipynb'): shutil.copy(p, work/'nbs'/p.name)   # all of them: the last cell exports the library
    (work/'data').symlink_to(ROOT/'data'); shutil.copy(ROOT/'settings.ini', work/'settings.ini')
    lab, url = start_lab(work)
    log(f"JupyterLab up at {url}")
    try:
        for name, move in zip(LAB_NOTEBOOKS, (move_ilp_explorer, move_sweep_explorer)):
            page = browser.new_page(viewport={'width': 1400, 'height': 1000})
            page.set_default_timeout(60_000)
            run_in_lab(page, url, name, timeout)
            check_lab_maths(page, name)
            move(page)
            page.screenshot(path=str(work/f'lab-{name}.png'))
            page.close(run_before_unload=False); shutdown_kernels(url)
    finally:
        shutdown_kernels(url)
        os.killpg(lab.pid, signal.SIGTERM)
        try: lab.wait(20)
        except subprocess.TimeoutExpired: os.killpg(lab.pid, signal.SIGKILL)

# ---------------------------------------------------------------------------------------------------- nbconvert
def mathjax_url() -> str:
    import jupyter_server_mathjax
    js = Path(jupyter_server_mathjax.__file__).parent/'static'/'MathJax.js'
    check(js.exists(), f"no MathJax at {js}: pip install -r .ci/browser-requirements.txt")
    return f"{js.as_uri()}?config=TeX-AMS-MML_HTMLorMML-full,Safe"

def nbconvert_check(browser, out:Path):
    names, src = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb')), out/'src'
    src.mkdir(parents=True)
    for n in names: shutil.copy(ROOT/'nbs'/n, src/n)
    subprocess.run([sys.executable, '-m', 'nbconvert', '--to', 'html', f'--HTMLExporter.mathjax_url={mathjax_url()}',
                    '--output-dir', str(out), *[str(src/n) for n in names]], check=True, capture_output=True, text=True)
    log(f"nbconvert rendered {len(names)} notebooks to HTML")
    page = browser.new_page(); total = 0
    for name in names:
        want = expected_maths(json.loads((src/name).read_text()))
        page.goto((out/name.replace('.ipynb', '.html')).as_uri())
        page.wait_for_function('window.MathJax && MathJax.isReady', timeout=60_000)
        page.evaluate('new Promise(done => MathJax.Hub.Queue(() => done(true)))')
        got = page.evaluate("[...document.querySelectorAll('script[type^=math]')].map(s => s.textContent)")
        errors = page.evaluate("document.querySelectorAll('.MathJax_Error, .noError, merror, .merror').length")
        check(errors == 0, f"{name}: MathJax reports {errors} errors in nbconvert's page")
        norm = lambda fs: [' '.join(f.split()) for f in fs]
        check(norm(got) == norm(want), f"{name}: nbconvert's page typesets {len(got)} formulas, the notebook has {len(want)}; "
              f"first extra: {next((g for g in norm(got) if g not in norm(want)), None)!r}, first missing: {next((w for w in norm(want) if w not in norm(got)), None)!r}")
        check_page_text(page.evaluate(_BARE_BODY), f"{name} (nbconvert)", tex_commands(want))
        total += len(got)
    page.close()
    log(f"nbconvert pages: {len(names)} notebooks, {total} formulas typeset, all of them maths; no MathJax error, raw TeX or stray $")

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--keep', type=Path, help='keep the work folder (pages, screenshots, lab.log) here')
    ap.add_argument('--timeout', type=float, default=600, help='seconds one notebook may take to run in JupyterLab')
    ap.add_argument('--skip-lab', action='store_true', help='only the nbconvert pages')
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    check(Path(CHROMIUM).exists(), f"{CHROMIUM} not found: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix='bamas-browser-')) if a.keep is None else a.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            log(f"Chromium {browser.version}")
            try:
                nbconvert_check(browser, work/'html')
                if not a.skip_lab: lab_check(browser, work/'lab', a.timeout)
            finally: browser.close()
    except CheckFailed as e:
        print(f"browser check FAILED: {e}", file=sys.stderr); return 1
    finally:
        if a.keep is None: shutil.rmtree(work, ignore_errors=True)
    log("browser check passed"); return 0

if __name__ == '__main__': sys.exit(main())
