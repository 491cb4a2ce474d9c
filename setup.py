"Packaging for bamas-nb, driven by settings.ini (no pkg_resources: current setuptools no longer ships it)."
from configparser import ConfigParser
from pathlib import Path
import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

def _reqs(key): return cfg.get(key, '').split()

ROOT = Path(__file__).parent
# the data files the package ships: the `include data/...` lines of MANIFEST.in (one list for the sdist and the wheel)
SHIPPED = [g for l in (ROOT/'MANIFEST.in').read_text(encoding='utf-8').splitlines() if l.startswith('include data/') for g in l.split()[1:]]

class BuildWithData(build_py):
    "build_py that also copies the shipped data files into the package as bamas_nb/data/... (an editable install reads data/ itself)."
    def run(self):
        super().run()
        if self.editable_mode: return
        for g in SHIPPED:
            files = sorted(ROOT.glob(g))
            if not files: raise SystemExit(f"setup.py: no file matches {g} (MANIFEST.in); build from a clone or an sdist of bamas-nb")
            for f in files:
                dest = Path(self.build_lib)/cfg['lib_path']/f.relative_to(ROOT)
                self.mkpath(str(dest.parent)); self.copy_file(str(f), str(dest))

licenses = {'apache2': 'Apache-2.0'}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12'.split()
min_python = cfg['min_python']

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=(Path(__file__).parent/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'],
    license=licenses[cfg['license']],
    url=cfg['git_url'],
    keywords=cfg['keywords'],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'],
        'Natural Language :: ' + cfg['language'],
    ] + ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    include_package_data=True,
    python_requires='>=' + min_python,
    install_requires=_reqs('requirements'),
    extras_require={'dev': _reqs('dev_requirements'), 'local': _reqs('local_requirements'), 'autogen': _reqs('autogen_requirements')},
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    cmdclass={'build_py': BuildWithData},
    zip_safe=False,
)
