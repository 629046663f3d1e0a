#!/usr/bin/env bash
# One-step set-up on a fresh Debian 12 machine with Python 3.11:
#   installers/setup.sh          system packages + .venv with surgtwin
#   installers/setup.sh --test   ... plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

bash installers/system-packages.sh

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
