#!/usr/bin/env bash
# The wheels scripts/gpu_selfcheck.py needs besides PyTorch (pydantic and its dependencies),
# for CPython 3.12 on manylinux x86_64, into .whl/ (ignored by git): about 2.8 MB in all, to
# carry to a GPU machine without a package registry (see the script's docstring).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip download --no-deps --python-version 3.12 --platform manylinux2014_x86_64 \
    --only-binary=:all: -d .whl \
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
    typing-extensions==4.16.0
ls -l .whl/*.whl
