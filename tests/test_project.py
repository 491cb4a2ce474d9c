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
