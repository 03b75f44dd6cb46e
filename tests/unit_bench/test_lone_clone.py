"""A clone of the repository on its own (nothing beside it, no environment variable) has
the benchmark files: the harness loads every named dataset from the clone's ``datasets/``."""

import json
import os
import subprocess
import sys

from server_process import REPO_ROOT

LOAD_ALL = """
import json
import evaluation.tasks as tasks
from evaluation.tasks import DATASETS, resolve_dataset
assert str(tasks.__file__).startswith(CLONE), tasks.__file__
sizes = {name: len(resolve_dataset(name).problems) for name, spec in DATASETS.items()
         if not spec.unscorable}
print(json.dumps(sizes))
"""


def test_a_lone_clone_loads_every_dataset_from_its_own_folder(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "SOFTTHINK_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", f"CLONE = {str(clone)!r}\n{LOAD_ALL}"],
                            cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    sizes = json.loads(result.stdout)
    assert sizes["gsm8k"] == 1319 and sizes["math500"] == 500 and sizes["gpqa_diamond"] == 198
    assert sizes["humaneval"] == 164 and sizes["mbpp"] == 257 and sizes["aime2024"] == 30
    assert sizes["gsm8k_socratic"] == 1319 and sizes["word_problems"] == 100
