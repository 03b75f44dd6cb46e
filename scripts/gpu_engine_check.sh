#!/usr/bin/env bash
# Stock SGLang with the plugin on a lent GPU machine: scripts/check_engine_modes.py there.
#
#   bash scripts/gpu_engine_check.sh pack   # here (registry reached): fills .whl/ (git-ignored)
#   bash scripts/gpu_engine_check.sh run    # there, with .whl carried: installs, checks
#
# The GPU machine has Python 3.12, torch 2.11, triton 3.6, transformers 5.17 and no registry;
# a call carries at most 64 MiB. So `pack` brings SGLang 0.5.23 without its Rust server,
# gRPC, bench and multimodal extensions and without multimodal_gen/ and test/ (about 13 MB
# packed), the pure-Python and small compiled packages SGLang imports on the serving path
# that the image lacks, transformers 5.19.0 (SGLang's pin), the plugin's wheel, and the
# default model's config and tokenizer (no weights). `run` builds a random-weight model of
# that config on the machine and runs the check with the Triton attention backend and the
# PyTorch sampler. sglang-kernel (373 MB) and flashinfer (65 MB) cannot travel: the plugin's
# pure-torch sgl_kernel stand-in is served on CUDA too, and SGLang's fused ops are forced to
# their pure-torch paths (SGLANG_FORCE_FUSED_OP_BACKEND=torch). Measured here: 55 MiB with
# the working tree.
#
# Not yet run on a GPU (README, "Stock SGLang on the lent GPU"): SGLang 0.5.23 pins torch
# 2.14.1 and runs here on 2.14.1; on 2.11 it is untried, and an sgl_kernel op the CUDA path
# calls that the forced torch paths do not cover stops the run with the stand-in's message.
set -euo pipefail
cd "$(dirname "$0")/.."
WHL=.whl
PY_TAGS=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64
  --platform manylinux_2_26_x86_64 --platform manylinux_2_24_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# What SGLang 0.5.23 imports on the serving path and the GPU image lacks, at the versions
# SGLang was installed with here; IPython and its own imports because sglang/utils.py
# imports IPython.display at module level.
WHEELS=(orjson==3.13.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5 fastapi==0.165.0 starlette==1.10.0 uvicorn==0.55.0
  msgspec==0.23.0 pybase64==1.5.1 pyzmq==27.3.0 dill==0.4.1 apache-tvm-ffi==0.1.11
  compressed-tensors==0.18.0 python-multipart==0.0.34 setproctitle==1.3.8
  partial-json-parser==0.2.1.1.post7 interegular==0.3.3 gguf==0.19.0 loguru==0.7.3
  opentelemetry-api==1.45.3 openai==2.8.0 distro==1.9.0 sniffio==1.3.1 jiter==0.19.0
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  xgrammar==0.2.7 soundfile==0.13.1 cffi==2.1.1 pycparser==3.12
  transformers==5.19.0
  ipython==9.19.1 traitlets==5.16.1 decorator jedi==0.20.1 parso==0.8.7
  prompt_toolkit==3.0.53 wcwidth==0.9.5 stack-data==0.6.3 executing==2.3.0 asttokens==3.0.2
  pure-eval==0.2.4 pexpect==4.9.0 ptyprocess==0.7.0 matplotlib-inline==0.2.2
  ipython-pygments-lexers==1.1.1)
LIMIT_BYTES=$((60 * 1024 * 1024))  # of the 64 MiB a call carries, with the working tree

pack() {
  local py=${PYTHON:-.venv/bin/python} model=${MODEL_DIR:-$HOME/.cache/softthink/models/smollm2-135m-instruct}
  rm -rf "$WHL" && mkdir -p "$WHL/model-src" "$WHL/tmp"
  "$py" -m pip download -q "${PY_TAGS[@]}" -d "$WHL" "${WHEELS[@]}"
  "$py" -m pip download -q "${PY_TAGS[@]}" -d "$WHL/tmp" sglang==0.5.23
  (cd "$WHL/tmp" && unzip -q sglang-*.whl && rm sglang-*.whl \
    && rm -rf sglang/multimodal_gen sglang/test \
    && rm -f sglang/srt/rust_extensions/_{server,grpc,bench,multimodal}.*.so \
    && tar czf ../sglang-slim.tar.gz sglang sglang-*.dist-info)
  rm -rf "$WHL/tmp"
  "$py" -m pip wheel -q --no-deps -w "$WHL" sglang_soft_thinking_pkg/
  for f in config.json generation_config.json tokenizer.json tokenizer_config.json chat_template.jinja; do
    [ -f "$model/$f" ] && cp "$model/$f" "$WHL/model-src/"
  done
  local total
  total=$(( $(du -sb "$WHL" | cut -f1) + $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) ))
  echo "carried: $((total / 1048576)) MiB (.whl and the working tree)"
  [ "$total" -le "$LIMIT_BYTES" ] || { echo "over the ${LIMIT_BYTES}-byte budget" >&2; exit 1; }
}

run() {
  local site=/tmp/site model=/tmp/random-model
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$WHL"/*.whl
  tar xzf "$WHL/sglang-slim.tar.gz" -C "$site"
  # Every Python process (SGLang spawns its schedulers) reads /tmp/site as a site dir, so
  # the plugin's entry point and .pth are seen, and serves the stand-in for sgl_kernel
  # (boot.py serves it only without a CUDA driver). The triton backend also imports
  # sgl_kernel.utils.is_arch_support_pdl: no programmatic dependent launch. With the stand-in
# served, the plugin also applies its CPU defaults to options left unset: --device cuda
# (given below) keeps them off.
  cat > "$site/sitecustomize.py" <<'EOF'
import site, sys, types
site.addsitedir("/tmp/site")
from sglang_soft_thinking.cpu import boot
if not boot.is_active():
    sys.meta_path.insert(0, boot.SglKernelStandinFinder())
utils = types.ModuleType("sgl_kernel.utils")
utils.is_arch_support_pdl = lambda: False
sys.modules.setdefault("sgl_kernel.utils", utils)
EOF
  export PYTHONPATH="$site:$PWD" SGLANG_FORCE_FUSED_OP_BACKEND=torch \
    SGLANG_SKIP_SGL_KERNEL_VERSION_CHECK=1 PYTHONUNBUFFERED=1
  python3 - "$WHL/model-src" "$model" <<'EOF'
import shutil, sys
from pathlib import Path
import torch
from transformers import AutoConfig, AutoModelForCausalLM
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
config = AutoConfig.from_pretrained(src)
config.initializer_range = 0.2  # peaked distributions: fewer near-tied top weights
torch.manual_seed(0)
AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32).save_pretrained(dst)
for f in src.iterdir():
    if f.name != "config.json":
        shutil.copy(f, dst / f.name)
print("random-weight model:", config.architectures, "->", dst)
EOF
  python3 scripts/check_engine_modes.py --model-path "$model" --json "${OUT:-/tmp}/modes.json" \
    --server-args="--device cuda --attention-backend triton --sampling-backend pytorch --grammar-backend none"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: $0 pack|run" >&2; exit 2 ;;
esac
