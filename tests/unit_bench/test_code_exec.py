"""The code sandbox (evaluation/code_exec.py) and the HumanEval/MBPP scorers built on it."""

import time
from pathlib import Path

import pytest

import evaluation.scoring as scoring
from evaluation.code_exec import MAX_OUTPUT_CHARS, run_python
from evaluation.scoring import score
from test_scoring import load_dataset


def humaneval_item(task_id: str) -> tuple[str, dict]:
    """(prompt, gold) of one real HumanEval item."""
    for item in load_dataset("humaneval.json"):
        if item["final_answer"]["task_id"] == task_id:
            return item["prompt"][0]["value"], item["final_answer"]
    raise AssertionError(f"{task_id} not in humaneval.json")


def fenced(code: str) -> str:
    return f"Here is the solution:\n```python\n{code}```\nIt loops over the pairs."


# ---------------------------------------------------------------------------- HumanEval


def test_humaneval_canonical_solution_as_a_whole_function_passes():
    prompt, gold = humaneval_item("HumanEval/0")
    answer = fenced(prompt + gold["canonical_solution"])
    verdict = score("humaneval", gold, answer, answer)
    assert verdict.correct, verdict
    assert "def has_close_elements" in verdict.extracted


def test_humaneval_body_continuing_the_prompt_passes_when_the_prompt_is_known():
    prompt, gold = humaneval_item("HumanEval/0")
    answer = fenced(gold["canonical_solution"])
    assert score("humaneval", {**gold, "prompt": prompt}, answer, answer).correct
    unknown = score("humaneval", gold, answer, answer)
    assert not unknown.correct and "prompt is unknown" in unknown.detail


def test_humaneval_wrong_body_fails_with_the_assertion():
    prompt, gold = humaneval_item("HumanEval/0")
    answer = fenced(prompt + "    return False\n")
    verdict = score("humaneval", gold, answer, answer)
    assert not verdict.correct
    assert verdict.detail.startswith("AssertionError")


def test_humaneval_helper_defined_in_the_prompt_is_available():
    # HumanEval/10's prompt defines is_palindrome, which its canonical body calls.
    prompt, gold = humaneval_item("HumanEval/10")
    answer = fenced(gold["canonical_solution"])
    assert score("humaneval", {**gold, "prompt": prompt}, answer, answer).correct


def test_humaneval_infinite_loop_is_a_failed_sample(monkeypatch):
    monkeypatch.setattr(scoring, "CODE_TIMEOUT_S", 1.0)
    prompt, gold = humaneval_item("HumanEval/0")
    answer = fenced(prompt + "    while True:\n        pass\n")
    started = time.monotonic()
    verdict = score("humaneval", gold, answer, answer)
    assert time.monotonic() - started < 5
    assert not verdict.correct and verdict.detail.startswith("timeout")


# ---------------------------------------------------------------------------- MBPP


def test_mbpp_reference_code_passes_and_wrong_code_fails():
    gold = load_dataset("mbpp.json")[0]["final_answer"]
    assert score("mbpp", gold, fenced(gold["code"] + "\n"), "").correct
    wrong = fenced("def remove_Occ(s, ch):\n    return s[1:-1]\n")
    verdict = score("mbpp", gold, wrong, wrong)
    assert not verdict.correct and verdict.detail.startswith("AssertionError")


def test_mbpp_test_imports_are_added():
    item = next(item for item in load_dataset("mbpp.json") if item["final_answer"]["test_import"])
    gold = item["final_answer"]
    assert score("mbpp", gold, fenced(gold["code"] + "\n"), "").correct


def test_code_without_any_text_is_no_code():
    _, gold = humaneval_item("HumanEval/0")
    assert score("humaneval", gold, "", "") == scoring.Verdict(False, None, "no code")


# ---------------------------------------------------------------------------- the sandbox


def test_passing_program_and_its_output():
    result = run_python("print(6 * 7)")
    assert result.passed and result.reason is None and result.stdout == "42\n"


def test_infinite_loop_is_killed_within_the_timeout():
    started = time.monotonic()
    result = run_python("while True:\n    pass\n", timeout_s=1)
    assert time.monotonic() - started < 3
    assert not result.passed and result.reason == "timeout after 1s"


def test_grandchildren_are_killed_with_the_program(tmp_path):
    marker = tmp_path / "pid"
    source = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
              "time.sleep(60)\n")
    result = run_python(source, timeout_s=1)
    assert not result.passed
    pid = int(marker.read_text())
    time.sleep(0.2)
    assert not is_alive(pid)


def is_alive(pid: int) -> bool:
    """Running or sleeping; a zombie (killed, not yet reaped by init) is not alive."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state


def test_memory_bomb_fails():
    result = run_python("block = bytearray(2 * 1024 ** 3)\n", memory_mb=256)
    assert not result.passed and result.reason == "MemoryError"


@pytest.mark.parametrize("source, reason", [
    ("def broken(:\n    pass\n", "SyntaxError"),
    ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "killed by SIGSEGV"),
    ("import sys\nsys.exit(3)\n", "exit status 3"),
])
def test_crashes_fail_with_a_reason(source, reason):
    result = run_python(source)
    assert not result.passed
    assert result.reason.startswith(reason), result.reason


def test_output_is_truncated_and_the_cwd_is_a_fresh_directory():
    result = run_python("import os\nprint(os.listdir('.'))\nprint('x' * 100000)\n")
    assert result.passed
    assert len(result.stdout) <= MAX_OUTPUT_CHARS
    first = run_python("import os\nprint(os.getcwd())\n").stdout
    assert first != run_python("import os\nprint(os.getcwd())\n").stdout


def test_invalid_limits_are_errors():
    with pytest.raises(ValueError, match="timeout_s"):
        run_python("pass", timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        run_python("pass", memory_mb=0)
