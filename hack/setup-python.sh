#!/usr/bin/env bash
# Creates (or refreshes) the project's Python environment in .venv from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r hack/python-requirements.txt
