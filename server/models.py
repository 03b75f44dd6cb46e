"""Where models live: the default model's folder, and the check that a folder holds a model.

The default model's location is defined in :mod:`evaluation.locations`, the layer below
the server and the harness, which both read it.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.locations import DEFAULT_MODEL_NAME, default_model_dir, softthink_home

__all__ = ["DEFAULT_MODEL_NAME", "default_model_dir", "model_dir_problem", "softthink_home"]


def model_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be served as a Hugging Face model folder, or None when it can."""
    if not path.exists():
        hint = ""
        if path == default_model_dir():
            hint = " (it is the default model: run ./config.sh, or scripts/provision_model.py)"
        return f"model path {path} does not exist{hint}"
    if not path.is_dir():
        return f"model path {path} is not a folder"
    if not (path / "config.json").is_file():
        return f"model path {path} is not a Hugging Face model folder (it has no config.json)"
    return None
