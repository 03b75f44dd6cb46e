"""The one table of datasets: name → where the problems come from, the prompt, the scorer.

``resolve_dataset("gsm8k", data_dir)`` finds ``gsm8k.json`` in the data folder (by
default the repository's ``datasets/``, which ships the public benchmark files), else asks
the Hugging Face hub; a path to a ``.json`` (shared
format) or ``.jsonl`` (GSM8K format) file works too, its task named by ``--task`` or
guessed from the file name. Each task's prompt asks for the answer in the form its scorer
reads (:mod:`evaluation.scoring`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from evaluation.locations import DATA_DIR_ENV, PROJECT_DATA_DIR, default_data_dir
from evaluation.problems import (
    DatasetError,
    HubSource,
    Problem,
    load_from_hub,
    load_gsm8k_jsonl,
    load_shared_json,
)

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
GPQA_INSTRUCTION = ("Think step by step, then give your final answer as the letter of the "
                    "correct choice (A, B, C or D) within \\boxed{}, for example \\boxed{A}.")
CODE_INSTRUCTION = "Reply with the complete Python code in one ```python code block."


def math_prompt(problem: Problem) -> str:
    return f"{problem.question}\n\n{MATH_INSTRUCTION}"


def gpqa_prompt(problem: Problem) -> str:
    return f"{problem.question}\n\n{GPQA_INSTRUCTION}"


def humaneval_prompt(problem: Problem) -> str:
    return (f"Complete the following Python function.\n\n```python\n{problem.question}```\n\n"
            f"{CODE_INSTRUCTION}")


def mbpp_prompt(problem: Problem) -> str:
    tests = "\n".join(problem.gold.get("test_list", []))
    return f"{problem.question}\nYour code should pass these tests:\n{tests}\n\n{CODE_INSTRUCTION}"


# Task name (as evaluation.scoring knows it) → prompt builder.
PROMPTS: dict[str, Callable[[Problem], str]] = {
    "math": math_prompt, "gsm8k": math_prompt, "gpqa": gpqa_prompt,
    "humaneval": humaneval_prompt, "mbpp": mbpp_prompt,
}


@dataclass(frozen=True)
class DatasetSpec:
    task: str
    file_name: str | None = None          # in the data folder
    project_file: str | None = None       # in this repository's datasets/
    hub: HubSource | None = None
    unscorable: str | None = None         # why this dataset cannot be scored here


DATASETS: dict[str, DatasetSpec] = {
    "gsm8k": DatasetSpec("gsm8k", "gsm8k.json",
                         hub=HubSource("openai/gsm8k", "main", "test", "question", "answer",
                                       is_gsm8k_answer=True)),
    "gsm8k_socratic": DatasetSpec("gsm8k", "gsm8k_test_socratic.jsonl"),
    "math500": DatasetSpec("math", "math500.json",
                           hub=HubSource("HuggingFaceH4/MATH-500", None, "test", "problem",
                                         "answer")),
    "aime2024": DatasetSpec("math", "aime2024.json"),
    "aime2025": DatasetSpec("math", "aime2025.json"),
    "amc23": DatasetSpec("math", "amc23.json"),
    "gpqa_diamond": DatasetSpec("gpqa", "gpqa_diamond.json"),
    "humaneval": DatasetSpec("humaneval", "humaneval.json"),
    "mbpp": DatasetSpec("mbpp", "mbpp.json"),
    "livecodebench": DatasetSpec("code", "livecodebench.json",
                                 unscorable="its file carries no test cases to run"),
    # The project's own sample set: generated arithmetic word problems (datasets/README.md).
    "word_problems": DatasetSpec("gsm8k", project_file="word_problems_test.jsonl"),
}


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str
    problems: list[Problem]

    def prompt(self, problem: Problem) -> str:
        return PROMPTS[self.task](problem)


def resolve_dataset(name_or_path: str, data_dir: Path | None = None,
                    task: str | None = None) -> Dataset:
    """Load a named dataset or a file; every failure is a DatasetError saying what to fix."""
    if task is not None and task not in PROMPTS:
        raise DatasetError(f"unknown task {task!r}; choose one of {', '.join(PROMPTS)}")
    if name_or_path in DATASETS:
        return _load_named(name_or_path, DATASETS[name_or_path], data_dir, task)
    path = Path(name_or_path)
    if path.suffix in (".json", ".jsonl"):
        return _load_file(path, task)
    raise DatasetError(f"unknown dataset {name_or_path!r}: name one of {', '.join(DATASETS)} "
                       "or give a path to a .json (shared format) or .jsonl (GSM8K format) file")


def _load_named(name: str, spec: DatasetSpec, data_dir: Path | None,
                task: str | None) -> Dataset:
    if spec.unscorable:
        raise DatasetError(f"dataset {name!r} cannot be scored: {spec.unscorable}")
    task = task or spec.task
    if spec.project_file:
        return Dataset(name, task, load_gsm8k_jsonl(PROJECT_DATA_DIR / spec.project_file, name))
    data_dir = data_dir or default_data_dir()
    if (data_dir / spec.file_name).is_file():
        return _from_file(data_dir / spec.file_name, name, task)
    if spec.hub is None:
        raise DatasetError(f"dataset {name!r}: {spec.file_name} not found in {data_dir} "
                           f"(pass --data-dir or set {DATA_DIR_ENV})")
    return Dataset(name, task, load_from_hub(spec.hub, name))


def _load_file(path: Path, task: str | None) -> Dataset:
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    if task is None:
        guessed = DATASETS.get(path.stem.split(".")[0])
        if path.suffix == ".jsonl":
            task = "gsm8k"
        elif guessed is not None and not guessed.unscorable:
            task = guessed.task
        else:
            raise DatasetError(f"cannot tell the task of {path}: pass --task "
                               f"({', '.join(PROMPTS)})")
    return _from_file(path, path.stem, task)


def _from_file(path: Path, name: str, task: str) -> Dataset:
    if path.suffix == ".jsonl":
        return Dataset(name, task, load_gsm8k_jsonl(path, name))
    problems = load_shared_json(path, name)
    if task == "humaneval":
        # The scorer needs the prompt to run a completion that is only the function's body.
        problems = [replace(p, gold={**p.gold, "prompt": p.question}) for p in problems]
    return Dataset(name, task, problems)
