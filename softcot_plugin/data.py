"""GSM8K-format examples (``question``, ``answer`` ending ``#### N``) encoded for SoftCoT training."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from evaluation.problems import DatasetError, load_gsm8k_jsonl
from softcot_plugin.templates import PromptTemplates


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    question: str
    answer: str


@dataclass(frozen=True)
class EncodedExample:
    """One example as token ids: the assistant prompt, the base prompt followed by the answer."""

    assistant_ids: list[int]
    assistant_positions: list[int]
    base_ids: list[int]          # prompt + answer + end-of-turn
    base_positions: list[int]
    num_prompt_tokens: int       # the loss covers base_ids[num_prompt_tokens:]


def read_examples(path: Path) -> list[Example]:
    """The examples of a GSM8K-format file, read by the benchmark harness's loader."""
    try:
        problems = load_gsm8k_jsonl(Path(path), Path(path).stem)
    except DatasetError as error:
        raise DataError(str(error)) from None
    if not problems:
        raise DataError(f"{path}: no examples")
    return [Example(problem.question, problem.extra["worked_answer"]) for problem in problems]


def split_dev(examples: list[Example], dev_fraction: float, seed: int
              ) -> tuple[list[Example], list[Example]]:
    """A seeded shuffle, then the last ``dev_fraction`` (at least one example) is the dev split."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    num_dev = max(1, round(len(shuffled) * dev_fraction)) if dev_fraction > 0 else 0
    if num_dev >= len(shuffled):
        raise DataError(f"{len(examples)} examples leave nothing to train on after a dev "
                        f"split of {dev_fraction}")
    return shuffled[:len(shuffled) - num_dev], shuffled[len(shuffled) - num_dev:]


def encode_example(example: Example, templates: PromptTemplates, assistant_tokenizer,
                   base_tokenizer) -> EncodedExample:
    assistant_ids = templates.assistant_ids(assistant_tokenizer, example.question)
    prompt_ids = templates.base_ids(base_tokenizer, example.question)
    answer_ids = base_tokenizer.encode(example.answer, add_special_tokens=False)
    return EncodedExample(
        assistant_ids, templates.placeholder_positions(assistant_tokenizer, assistant_ids),
        prompt_ids + answer_ids + [base_tokenizer.eos_token_id],
        templates.placeholder_positions(base_tokenizer, prompt_ids), len(prompt_ids))
