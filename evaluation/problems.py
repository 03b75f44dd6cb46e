"""Benchmark problems from files or the Hugging Face hub, in one shape: :class:`Problem`.

Three sources:

* the shared JSON format: a list of ``{"prompt": [{"from": "user", "value": ...}],
  "final_answer": ...}`` (extra keys such as GPQA's ``choices`` are kept in ``extra``);
* GSM8K-format JSON Lines: ``{"question": ..., "answer": "... #### N"}``;
* a dataset on the Hugging Face hub, through the ``datasets`` library, when the machine
  can reach it.

A malformed file is a :class:`DatasetError` naming the file and the item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """A dataset that cannot be found or read; the message says what to fix."""


@dataclass(frozen=True)
class Problem:
    """One question: ``gold`` is whatever the task's scorer compares against."""

    prompt_id: str
    question: str
    gold: Any
    extra: dict = field(default_factory=dict)


def load_shared_json(path: Path, name: str) -> list[Problem]:
    """The shared format; prompt ids are ``{name}/{position}``."""
    items = _read_json(path)
    if not isinstance(items, list):
        raise DatasetError(f"{path}: expected a JSON list of problems")
    problems = []
    for position, item in enumerate(items):
        try:
            turns = item["prompt"]
            question = "\n\n".join(turn["value"] for turn in turns if turn.get("from") == "user")
            gold = item["final_answer"]
        except (KeyError, TypeError) as error:
            raise DatasetError(f"{path}: item {position} lacks {error} (expected 'prompt' "
                               "turns with 'from'/'value' and 'final_answer')") from None
        if not question:
            raise DatasetError(f"{path}: item {position} has no user turn")
        extra = {key: value for key, value in item.items() if key not in ("prompt", "final_answer")}
        problems.append(Problem(f"{name}/{position}", question, gold, extra))
    return problems


def gsm8k_final_answer(answer: str) -> str:
    """The number after the last ``####`` of a GSM8K answer, commas removed."""
    if "####" not in answer:
        raise ValueError("no '#### N' line")
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def load_gsm8k_jsonl(path: Path, name: str) -> list[Problem]:
    """GSM8K-format lines; the gold is the final number, the worked answer stays in ``extra``."""
    problems = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            gold = gsm8k_final_answer(item["answer"])
            question = item["question"]
        except (ValueError, KeyError, TypeError) as error:
            raise DatasetError(f"{path}:{number}: not a GSM8K line ({error}); expected "
                               "'question' and 'answer' ending '#### N'") from None
        problems.append(Problem(f"{name}/{len(problems)}", question, gold,
                                {"worked_answer": item["answer"]}))
    return problems


@dataclass(frozen=True)
class HubSource:
    """Where a named dataset lives on the hub and which columns hold question and answer."""

    repo_id: str
    config: str | None
    split: str
    question_column: str
    answer_column: str
    is_gsm8k_answer: bool = False


def load_from_hub(source: HubSource, name: str) -> list[Problem]:
    """Download (or read from the local hub cache) one split; unreachable hub → DatasetError."""
    try:
        import datasets as hf_datasets

        rows = hf_datasets.load_dataset(source.repo_id, source.config, split=source.split)
    except Exception as error:  # offline, unknown repository, missing split, ...
        raise DatasetError(f"could not load {source.repo_id} from the Hugging Face hub "
                           f"({type(error).__name__}: {error})") from None
    problems = []
    for position, row in enumerate(rows):
        answer = row[source.answer_column]
        gold = gsm8k_final_answer(answer) if source.is_gsm8k_answer else answer
        problems.append(Problem(f"{name}/{position}", row[source.question_column], gold))
    return problems


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from None
