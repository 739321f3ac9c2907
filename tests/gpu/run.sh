#!/usr/bin/env bash
# Runs the GPU suite: every PyTorch workload locally and through rgpu, compared.
#   tests/gpu/run.sh [--rgpu-build DIR] [--port P] [--only NAME] [--skip-local] [--timeout S]
# See tests/gpu/README.md. Uses $PYTHON (default python3) to run the runner itself.
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/run_suite.py" "$@"
