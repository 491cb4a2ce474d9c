#!/usr/bin/env bash
# The package as a user gets it: build the sdist and the wheel, install the wheel into a fresh venv, and run the CLI
# and a plan with the default policy from a temporary directory, away from this clone (.ci/installed_check.py asserts).
set -euo pipefail
cd "$(dirname "$0")/.."
ci="$PWD/.ci"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
t0=$SECONDS
if ! nice -n 19 .venv/bin/python -m build --outdir "$work/dist" . > "$work/build.log" 2>&1; then tail -40 "$work/build.log"; exit 1; fi
echo "built in $((SECONDS - t0)) s:"; ls -l "$work"/dist | tail -n +2
t1=$SECONDS
python3 -m venv "$work/venv"
nice -n 19 "$work/venv/bin/pip" install -q "$work"/dist/*.whl
echo "wheel and its dependencies installed into a fresh venv in $((SECONDS - t1)) s"
mkdir "$work/elsewhere" && cd "$work/elsewhere"
# a new user: no benchmark data, recordings or experience tables pointed at, and the venv's `bamas` first on PATH
env -u BAMAS_DATA -u BAMAS_RECORDINGS -u BAMAS_EXPERIENCE PATH="$work/venv/bin:$PATH" \
  "$work/venv/bin/python" "$ci/installed_check.py" "$work/dist"
echo "installed-package check: $((SECONDS - t0)) s in all"
