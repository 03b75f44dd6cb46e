"""Where models live: the default model's folder, and the check that a folder holds a model."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"


def softthink_home() -> Path:
    """The project's cache folder: ``$SOFTTHINK_HOME``, else ``~/.cache/softthink``."""
    return Path(os.environ.get("SOFTTHINK_HOME", Path.home() / ".cache" / "softthink"))


def default_model_dir() -> Path:
    """Where ``scripts/provision_model.py`` puts the default model."""
    return softthink_home() / "models" / DEFAULT_MODEL_NAME


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
