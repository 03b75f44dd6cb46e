"""The scorers (evaluation/scoring.py) on known pairs: math, GSM8K, GPQA, an unknown task."""

import json
import threading
import time

import pytest

from evaluation.math_check import MathChecker
from evaluation.scoring import Verdict, extract_code, last_boxed, score
from evaluation.tasks import default_data_dir

DATA_DIR = default_data_dir()


def load_dataset(name: str) -> list[dict]:
    path = DATA_DIR / name
    assert path.is_file(), f"{path} not found: set SOFTTHINK_DATA_DIR to the benchmark files"
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- math


@pytest.mark.parametrize("gold, answer", [
    ("\\frac{1}{2}", "The answer is $0.5$."),
    ("0.5", "So we get $\\boxed{\\frac{1}{2}}$."),
    ("72", "\\boxed{72}"),
    ("3\\sqrt{13}", "The length is $\\boxed{\\sqrt{117}}$."),       # 9 * 13 = 117
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "Hence $\\boxed{(3, \\pi/2)}$."),
    ("x=5", "Therefore $\\boxed{x = 5}$."),
])
def test_math_equivalent_answers_are_correct(gold, answer):
    verdict = score("math", gold, answer, "some reasoning\n" + answer)
    assert verdict.correct, verdict
    assert verdict.extracted is not None


@pytest.mark.parametrize("gold, answer", [
    ("72", "\\boxed{71}"),
    ("\\frac{1}{2}", "The answer is $\\boxed{\\frac{1}{3}}$."),
    ("3\\sqrt{13}", "\\boxed{3\\sqrt{12}}"),
])
def test_math_wrong_answers_are_wrong(gold, answer):
    verdict = score("math", gold, answer, answer)
    assert not verdict.correct
    assert verdict.extracted is not None


def test_math_no_answer():
    verdict = score("math", "72", "I am not sure.", "Let me think. I am not sure.")
    assert verdict == Verdict(False, None, "no answer")


def test_math_boxed_answer_part_wins_over_the_reasoning():
    full = "Maybe \\boxed{5}? No.\n" + "Final: \\boxed{72}"
    assert score("math", "72", "Final: \\boxed{72}", full).correct
    assert not score("math", "5", "Final: \\boxed{72}", full).correct


def test_math_falls_back_to_the_whole_completion():
    # Cut off before the answer part: only the reasoning holds the boxed value.
    verdict = score("math", "72", "", "so the total is \\boxed{72}")
    assert verdict.correct and verdict.extracted == "72"


def test_math_voting_key_is_the_same_for_equal_numbers():
    half = score("math", "\\frac{1}{2}", "\\boxed{0.5}", "").extracted
    assert half == score("math", "\\frac{1}{2}", "\\boxed{\\frac{1}{2}}", "").extracted


def test_math500_golds_verify_against_themselves_boxed():
    items = load_dataset("math500.json")[:40:4]
    for item in items:
        gold = item["final_answer"]
        answer = f"The final answer is $\\boxed{{{gold}}}$."
        assert score("math", gold, answer, answer).correct, gold


def test_math500_golds_do_not_verify_against_another_item():
    items = load_dataset("math500.json")
    pairs = [(items[i]["final_answer"], items[i + 1]["final_answer"]) for i in range(0, 20, 4)]
    for gold, other in pairs:
        assert not score("math", gold, f"\\boxed{{{other}}}", "").correct, (gold, other)


def test_math_check_that_never_ends_is_killed_even_off_the_main_thread():
    # 9^(9^(9^9)) makes sympy compute for ever; math-verify's SIGALRM timeout cannot fire
    # in a worker thread, as the harness uses, so the helper process is killed instead.
    checker = MathChecker(timeout_s=1.0)
    results = []

    def check() -> None:
        started = time.monotonic()
        results.append(checker.check("9", ["\\boxed{9^{9^{9^{9}}}}"]))
        results.append(time.monotonic() - started)
        results.append(checker.check("9", ["\\boxed{3^2}"]))    # a fresh helper answers

    worker = threading.Thread(target=check)
    worker.start()
    worker.join(timeout=60)
    checker.close()
    assert not worker.is_alive()
    assert results[0] == (False, None, "timeout")
    assert results[1] < 10            # helper start-up plus the 1 s limit
    assert results[2][0] is True


def test_math_gold_that_cannot_be_parsed_is_an_error():
    with pytest.raises(ValueError, match="math gold"):
        score("math", "", "\\boxed{1}", "")


def test_last_boxed_balances_braces():
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{3}{4}} c") == "\\frac{3}{4}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed") is None


# ---------------------------------------------------------------------------- gsm8k


@pytest.mark.parametrize("answer", [
    "The answer is \\boxed{18}.", "#### 18", "$18.00", "She makes $18 every day.",
    "So 16 - 3 - 4 = 9 eggs, 9 * 2 = 18", "\\boxed{\\$18}", "#### 18\n(from 9 eggs)",
])
def test_gsm8k_numeric_forms_of_18(answer):
    verdict = score("gsm8k", "18", answer, answer)
    assert verdict.correct, verdict
    assert verdict.extracted == "18"


@pytest.mark.parametrize("gold, answer, extracted", [
    ("1234", "The total is $1,234.", "1234"),
    ("1234567", "It costs 1,234,567 dollars", "1234567"),
    ("-3", "The change is -3.", "-3"),
    ("2.5", "It takes 2.50 hours", "2.5"),
])
def test_gsm8k_commas_dollars_signs_and_decimals(gold, answer, extracted):
    verdict = score("gsm8k", gold, answer, answer)
    assert verdict.correct and verdict.extracted == extracted


def test_gsm8k_wrong_and_missing_answers():
    assert score("gsm8k", "18", "#### 17", "#### 17") == Verdict(False, "17")
    assert score("gsm8k", "18", "I don't know", "no idea") == Verdict(False, None, "no answer")
    # The answer part decides even if the reasoning ends with the right number.
    assert not score("gsm8k", "18", "So 20.", "maybe 18\nSo 20.").correct
    # An answer part without a number falls back to the whole completion.
    assert score("gsm8k", "18", "Done.", "2 * 9 = 18\nDone.").correct


def test_gsm8k_gold_must_be_a_number():
    with pytest.raises(ValueError, match="gsm8k gold"):
        score("gsm8k", "eighteen", "18", "18")


# ---------------------------------------------------------------------------- gpqa


@pytest.mark.parametrize("answer", [
    "\\boxed{C}", "$\\boxed{\\text{C}}$", "The answer is (C).", "Answer: C", "answer: **C**",
    "The correct option is C.", "C", "(C)", "C.", "C) Cold atomic interstellar medium.",
    "Option A is wrong because ... Final answer: \\boxed{C}",
])
def test_gpqa_letter_formats(answer):
    verdict = score("gpqa", "C", answer, answer)
    assert verdict.correct, (answer, verdict)
    assert verdict.extracted == "C"


def test_gpqa_wrong_and_missing_letters():
    assert score("gpqa", "C", "The answer is (B).", "") == Verdict(False, "B")
    # "a" as an article is not a choice, nor is the C of "Cold".
    assert score("gpqa", "A", "The answer is a planet.", "") == Verdict(False, None, "no answer")
    assert score("gpqa", "C", "Answer: Cold gas", "") == Verdict(False, None, "no answer")


def test_gpqa_falls_back_to_the_reasoning_and_checks_gold():
    assert score("gpqa", "D", "", "thinking... so the answer is D").correct
    with pytest.raises(ValueError, match="gpqa gold"):
        score("gpqa", "E", "E", "E")


# ---------------------------------------------------------------------------- misc


def test_unknown_task_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'physics'"):
        score("physics", "1", "1", "1")


def test_extract_code_prefers_the_last_python_block():
    text = "```\nplain\n```\n```python\nfirst\n```\ntext\n```py\nsecond\n```"
    assert extract_code(text) == "second\n"
    assert extract_code("```\nonly bare\n```") == "only bare\n"
    assert extract_code("```python\ncut off") == "cut off"
    assert extract_code("def f():\n    return 1") == "def f():\n    return 1"


def test_verdict_to_dict():
    assert Verdict(True, "18").to_dict() == {"correct": True, "extracted": "18", "detail": None}
