"""Scorers: is one completion right? One function per task, chosen by :func:`score`.

Every scorer takes the dataset's ``gold``, the answer part of the completion (the message
``content``) and the whole completion (reasoning + content), and returns a :class:`Verdict`.
Each reads the answer part first and falls back to the whole text, so a model that put its
answer inside the reasoning, or ran out of tokens before the answer, is still read.

* ``math``: math-verify; the gold is parsed as ``\\boxed{gold}``; the prediction is the last
  ``\\boxed{}`` of the answer part, else what math-verify finds there ("the answer is",
  the last expression), else the same search over the whole text.
* ``gsm8k``: a number (``#### N``, then ``\\boxed{N}``, then the last number), commas and
  ``$`` dropped, compared exactly as decimals.
* ``gpqa``: the chosen letter A-D (``\\boxed{C}``, "answer is (C)", "Answer: C", a lone "C").
* ``humaneval`` / ``mbpp``: the last fenced Python block (or the whole text) with the
  dataset's tests, run in a sandboxed subprocess (:mod:`evaluation.code_exec`).

``Verdict.extracted`` is the answer read, normalised so that equal answers compare equal
in a majority vote (a canonical number, a letter, math-verify's parse, the code);
:func:`majority_vote` counts them.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from evaluation.code_exec import run_python
from evaluation.math_check import MathChecker

logger = logging.getLogger(__name__)
T = TypeVar("T")

MATH_TIMEOUT_S = 15.0
CODE_TIMEOUT_S = 10.0
CODE_MEMORY_MB = 1024
# The helper process starts on the first math sample.
MATH_CHECKER = MathChecker(MATH_TIMEOUT_S)
# Prepended to a HumanEval completion when the prompt is unknown: the imports HumanEval
# prompts make, so a completion that repeats only the function still has its names.
_HUMANEVAL_HEADER = "import math\nimport re\nimport string\nimport collections\nfrom typing import *\n\n"


@dataclass(frozen=True)
class Verdict:
    """One sample's verdict: ``extracted`` is None when no answer was found."""

    correct: bool
    extracted: str | None
    detail: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def majority_vote(extracted: list[str | None], correct: list[bool]) -> tuple[str | None, bool]:
    """The most common non-None answer and whether it is right.

    Ties go to the answer seen first. The answer counts as right if any sample that gave
    it was judged correct. If every answer is None, the vote is (None, False).
    """
    if len(extracted) != len(correct):
        raise ValueError("extracted and correct must have the same length")
    counts = Counter(answer for answer in extracted if answer is not None)
    if not counts:
        return None, False
    best = max(counts.values())
    winner = next(answer for answer in extracted if answer is not None and counts[answer] == best)
    return winner, any(ok for answer, ok in zip(extracted, correct) if answer == winner)


def score(task: str, gold, answer: str, full: str) -> Verdict:
    """Score one completion for ``task`` (``math``, ``gsm8k``, ``gpqa``, ``humaneval``, ``mbpp``)."""
    scorer = SCORERS.get(task)
    if scorer is None:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(sorted(SCORERS))}")
    answer = answer or ""
    return scorer(gold, answer, full or answer)


# ---------------------------------------------------------------------------- math


def score_math(gold: str, answer: str, full: str) -> Verdict:
    """math-verify equivalence (``\\frac{1}{2}`` = ``0.5``, sets, intervals, equations).

    Runs in :mod:`evaluation.math_check`'s helper process, under a hard time limit.
    """
    correct, extracted, detail = MATH_CHECKER.check(str(gold), [answer, full])
    return Verdict(correct, extracted, detail)


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    begin = text.index("{", start) + 1
    depth = 1
    for position in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth == 0:
            return text[begin:position]
    return None


def _from_answer_or_full(extract: Callable[[str], T | None], answer: str, full: str) -> T | None:
    """What ``extract`` finds in the answer part, else in the whole completion."""
    found = extract(answer)
    return found if found is not None else extract(full)


# ---------------------------------------------------------------------------- gsm8k

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+")
_HASHES = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")


def score_gsm8k(gold: str, answer: str, full: str) -> Verdict:
    """The final number of the completion equals the gold number."""
    gold_value = _to_decimal(str(gold))
    if gold_value is None:
        raise ValueError(f"gsm8k gold {gold!r} is not a number")
    value = _from_answer_or_full(extract_number, answer, full)
    if value is None:
        return Verdict(False, None, "no answer")
    return Verdict(value == gold_value, _canonical(value))


def extract_number(text: str) -> Decimal | None:
    """``#### N``, else the last number in ``\\boxed{}``, else the last number of ``text``."""
    hashes = _HASHES.findall(text)
    if hashes:
        value = _to_decimal(hashes[-1])
        if value is not None:
            return value
    boxed = last_boxed(text)
    for source in ((boxed,) if boxed is not None else ()) + (text,):
        numbers = _NUMBER.findall(source.replace("\\$", "$").replace("\\!", ""))
        if numbers:
            return _to_decimal(numbers[-1])
    return None


def _to_decimal(text: str) -> Decimal | None:
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _canonical(value: Decimal) -> str:
    """``18.00`` -> ``18``, ``0.50`` -> ``0.5``: one spelling per number."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# ---------------------------------------------------------------------------- gpqa

_LETTER_PATTERNS = [
    re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{)?\s*\(?([A-D])\)?\s*\}"),
    re.compile(r"(?i:answer|option|choice)(?:\s+is)?\s*[:：]?\s*[*$]*\s*\(?([A-D])\b"),
    re.compile(r"^[\s*$]*\(?([A-D])\)?[\s*$.]*$"),
    re.compile(r"^[\s*]*\(?([A-D])[).:]\s"),
]


def score_gpqa(gold: str, answer: str, full: str) -> Verdict:
    """The chosen letter equals the gold letter."""
    gold_letter = str(gold).strip().upper()
    if gold_letter not in ("A", "B", "C", "D"):
        raise ValueError(f"gpqa gold {gold!r} is not a letter A-D")
    letter = _from_answer_or_full(extract_letter, answer, full)
    if letter is None:
        return Verdict(False, None, "no answer")
    return Verdict(letter == gold_letter, letter)


def extract_letter(text: str) -> str | None:
    """The last match of the most specific pattern that matches (boxed, "answer is", lone)."""
    for pattern in _LETTER_PATTERNS:
        matches = pattern.findall(text)
        if matches:
            return matches[-1]
    return None


# ---------------------------------------------------------------------------- code

_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str:
    """The last fenced Python block (a bare fence if none is marked Python), else all text.

    An unclosed last fence (the model ran out of tokens) counts up to the end of the text.
    """
    blocks = _FENCE.findall(text)
    python_blocks = [body for language, body in blocks if language]
    chosen = python_blocks or [body for _, body in blocks]
    return chosen[-1] if chosen else text


def score_humaneval(gold: dict, answer: str, full: str) -> Verdict:
    """Run the completion against the item's ``check(entry_point)``.

    The completion may be a whole function (usual for chat models) or a body that
    continues the prompt; the latter needs ``gold["prompt"]``, the item's prompt.
    """
    code = extract_code(answer if answer.strip() else full)
    if not code.strip():
        return Verdict(False, None, "no code")
    prompt = gold.get("prompt")
    is_body = code.lstrip("\n")[:1] in (" ", "\t")
    if prompt:
        program = prompt + code if is_body else f"{prompt}\n\n{code}"
    elif is_body:
        return Verdict(False, code.strip(), "completion is a function body but the prompt is unknown")
    else:
        program = _HUMANEVAL_HEADER + code
    program += f"\n\n{gold['test']}\n\ncheck({gold['entry_point']})\n"
    return _run_program(program, code)


def score_mbpp(gold: dict, answer: str, full: str) -> Verdict:
    """Run the completion followed by the item's ``test_import`` and ``test_list`` asserts."""
    code = extract_code(answer if answer.strip() else full)
    if not code.strip():
        return Verdict(False, None, "no code")
    imports = "\n".join(gold.get("test_import") or [])
    tests = "\n".join(gold["test_list"])
    return _run_program(f"{imports}\n{code}\n\n{tests}\n", code)


def _run_program(program: str, code: str) -> Verdict:
    result = run_python(program, timeout_s=CODE_TIMEOUT_S, memory_mb=CODE_MEMORY_MB)
    return Verdict(result.passed, code.strip(), result.reason)


SCORERS: dict[str, Callable[..., Verdict]] = {
    "math": score_math,
    "gsm8k": score_gsm8k,
    "gpqa": score_gpqa,
    "humaneval": score_humaneval,
    "mbpp": score_mbpp,
}
