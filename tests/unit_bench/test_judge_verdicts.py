"""The LLM judge's pieces that need no endpoint: what it is shown, how its reply is read,
its command-line options, and what the report says it did."""

import pytest

import benchmarks.run as run
from benchmarks.metrics import summarize
from benchmarks.report import build_report, format_table
from benchmarks.settings import SettingsError, judge_from_args
from evaluation.judge import Judge, JudgeSettings, final_answer, read_verdict, review
from evaluation.scoring import Verdict

BASE = ["--base-url", "http://127.0.0.1:1/v1", "--dataset", "aime2024", "--out", "x.jsonl"]


@pytest.mark.parametrize("reply, expected", [
    ("YES", True), ("no", False), ("Yes.", True), ("NO, they differ", False),
    ("At first yes, but 1/3 is not 0.3, so: NO", False), ("They are equivalent", None),
    ("", None), ("YESTERDAY", None)])
def test_the_verdict_is_the_last_yes_or_no_word(reply, expected):
    assert read_verdict(reply) is expected


def test_the_judge_is_shown_the_last_boxed_answer_else_the_end_of_the_text():
    assert final_answer("so \\boxed{1} then \\boxed{\\frac{1}{2}}", "") == "\\frac{1}{2}"
    assert final_answer("", "thinking \\boxed{eight}") == "eight"
    assert final_answer("x" * 5000 + "one half", "") == ("x" * 5000 + "one half")[-2000:]
    assert final_answer("  ", "") is None


def test_the_judge_is_asked_only_about_math_samples_math_verify_rejected():
    judge = Judge(JudgeSettings("http://127.0.0.1:1/v1", "judge", timeout_s=1, retries=0))
    right, wrong = Verdict(True, "8", None), Verdict(False, None, "no answer")
    assert review(judge, "math", right, "q", "8", "8", "8") == (right, None)
    assert review(judge, "gsm8k", wrong, "q", "8", "eight", "eight") == (wrong, None)
    assert review(None, "math", wrong, "q", "8", "eight", "eight") == (wrong, None)
    assert review(judge, "math", wrong, "q", "8", "", "") == (wrong, None)


def test_the_judge_request_is_greedy_and_carries_the_extra_body():
    judge = Judge(JudgeSettings("http://127.0.0.1:1/v1", "judge", max_tokens=7,
                                extra_body={"top_k": 1}))
    body = judge.request("What is 1/2?", "\\frac{1}{2}", "one half")
    assert body["temperature"] == 0 and body["max_tokens"] == 7 and body["model"] == "judge"
    assert body["extra_body"] == {"top_k": 1}
    prompt = body["messages"][0]["content"]
    assert "What is 1/2?" in prompt and "\\frac{1}{2}" in prompt and "one half" in prompt


def test_the_judge_is_off_by_default_and_needs_a_url_and_a_model():
    assert judge_from_args(run.parse_args(BASE)) is None
    for partial in (["--judge-model", "m"], ["--judge-base-url", "http://h/v1"],
                    ["--judge-api-key", "k"]):
        with pytest.raises(SettingsError, match="--judge"):
            judge_from_args(run.parse_args(BASE + partial))
    full = BASE + ["--judge-base-url", "http://h:8000", "--judge-model", "m",
                   "--judge-extra-body", '{"top_k": 1}']
    settings = judge_from_args(run.parse_args(full))
    assert settings.base_url == "http://h:8000/v1" and settings.extra_body == {"top_k": 1}
    with pytest.raises(SettingsError, match="--judge-extra-body"):
        judge_from_args(run.parse_args(full[:-1] + ["[1, 2]"]))
    with pytest.raises(SettingsError, match="--judge-timeout"):
        judge_from_args(run.parse_args(full + ["--judge-timeout", "0"]))


def record(index, correct, judge=None):
    return {"prompt_id": f"p/{index}", "sample_index": 0, "judge": judge,
            "verdict": {"correct": correct, "extracted": None, "detail": None}}


def test_the_report_says_how_many_samples_the_judge_changed(tmp_path):
    import json

    records = [record(0, True), record(1, True, {"math_verify": False, "verdict": True}),
               record(2, False, {"math_verify": False, "verdict": False}),
               record(3, False, {"math_verify": False, "verdict": None, "error": "down"})]
    assert summarize(records)["judge"] == {"asked": 3, "changed": 1, "failed": 1}
    assert summarize(records[:1])["judge"] is None
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    table = format_table(build_report([path]))
    assert "judge changed" in table and "1 of 3 asked (1 failed)" in table
