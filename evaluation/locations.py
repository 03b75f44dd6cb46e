"""Where the project keeps its files: the benchmark data folder and the default model.

The server (which serves the default model when given no ``--model-path``), the harness
and the speed benchmarks all read these; this module sits in the lowest layer so that none
of them has to import another to find a path.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_DATA_DIR = REPO_ROOT / "datasets"
DATA_DIR_ENV = "SOFTTHINK_DATA_DIR"
DEFAULT_MODEL_NAME = "smollm2-135m-instruct"


def default_data_dir() -> Path:
    """``$SOFTTHINK_DATA_DIR``, else the repository's own ``datasets/`` folder."""
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured) if configured else PROJECT_DATA_DIR


def softthink_home() -> Path:
    """The project's cache folder: ``$SOFTTHINK_HOME``, else ``~/.cache/softthink``."""
    return Path(os.environ.get("SOFTTHINK_HOME", Path.home() / ".cache" / "softthink"))


def default_model_dir() -> Path:
    """Where ``scripts/provision_model.py`` puts the default model."""
    return softthink_home() / "models" / DEFAULT_MODEL_NAME
