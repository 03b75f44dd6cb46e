"""The word-problem generator: answers re-computed from the question, format, determinism."""

import json
import re
from pathlib import Path

import pytest

from benchmarks.word_problems import generate_problems, main

REPO = Path(__file__).resolve().parents[2]

# Per template: a phrase that identifies it, and the answer from the question's numbers
# in the order they appear in the question.
SOLVERS = {
    "dollars each": lambda a, p, b, q: a * p + b * q,
    "words per minute": lambda rate, m, n: rate * (m + n),
    "shares them equally": lambda total, k, eaten: total // k - eaten,
    "years older than": lambda gap, age, years: age + gap + years,
    "every week": lambda weekly, weeks, spent: weekly * weeks - spent,
    "km per hour": lambda v, t, u, t2: v * t + u * t2,
    "trays of cookies": lambda trays, n, given: trays * n - given,
    "% off": lambda price, pct, count: (price - price * pct // 100) * count,
    "rows with": lambda rows, n, more: (rows + more) * n,
    "share a bill": lambda k, bill, tip: bill // k + tip,
}


def expected_answer(question: str) -> int:
    numbers = [int(n) for n in re.findall(r"\d+", question)]
    matches = [phrase for phrase in SOLVERS if phrase in question]
    assert len(matches) == 1, question
    return SOLVERS[matches[0]](*numbers)


def final_number(answer: str) -> int:
    return int(answer.rsplit("####", 1)[1].strip())


def test_answers_match_an_independent_computation():
    problems = generate_problems(200, seed=7)
    templates_seen = set()
    for problem in problems:
        assert final_number(problem["answer"]) == expected_answer(problem["question"])
        templates_seen |= {phrase for phrase in SOLVERS if phrase in problem["question"]}
    assert templates_seen == set(SOLVERS)


def test_worked_lines_are_correct_arithmetic():
    for problem in generate_problems(100, seed=3):
        lines = problem["answer"].split("\n")
        assert re.fullmatch(r"#### \d+", lines[-1])
        assert len(lines) >= 3
        for line in lines[:-1]:
            a, op, b, result = re.search(r"(\d+) ([-+*/]) (\d+)(?: / 100)? = (\d+)", line).groups()
            value = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b),
                     "/": int(a) / int(b)}[op]
            if "/ 100" in line:
                value /= 100
            assert value == int(result), line


def test_format_and_determinism():
    first = generate_problems(50, seed=11)
    assert first == generate_problems(50, seed=11)
    assert first != generate_problems(50, seed=12)
    assert all(set(p) == {"question", "answer"} for p in first)
    assert len({p["question"] for p in first}) == 50


def test_exclude_keeps_splits_disjoint(tmp_path):
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    main(["--count", "300", "--seed", "1", "--out", str(train)])
    main(["--count", "100", "--seed", "2", "--out", str(test), "--exclude", str(train)])
    read = lambda path: [json.loads(line) for line in path.read_text().splitlines()]
    train_questions = {p["question"] for p in read(train)}
    assert len(read(test)) == 100
    assert not train_questions & {p["question"] for p in read(test)}


def test_shipped_files_are_disjoint_and_valid():
    read = lambda name: [json.loads(line) for line in (REPO / "datasets" / name).read_text().splitlines()]
    train, test = read("word_problems_train.jsonl"), read("word_problems_test.jsonl")
    assert (len(train), len(test)) == (400, 100)
    assert not {p["question"] for p in train} & {p["question"] for p in test}
    for problem in train[:50] + test[:50]:
        assert final_number(problem["answer"]) == expected_answer(problem["question"])


def test_negative_count_is_refused():
    with pytest.raises(ValueError, match="count"):
        generate_problems(-1, seed=0)
