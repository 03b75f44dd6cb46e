"""The optional LLM judge, with our own server as the judge endpoint.

A sample math-verify rejects ("eight" for 8) is shown to the judge, which accepts it; the
run file's line holds both verdicts and counts as correct. A judge that is down (a closed
port) changes no verdict: every line keeps math-verify's verdict and says why the judge
gave none.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.client import SampleResponse
from benchmarks.run import record_of
from benchmarks.settings import RunSettings
from evaluation.judge import Judge, JudgeSettings
from evaluation.problems import Problem
from evaluation.scoring import score
from evaluation.tasks import Dataset
from server_process import REPO_ROOT, free_port

SPIDER = Problem("spiders/0", "How many legs does a spider have?", "8")
ANSWER = "A spider has \\boxed{eight} legs."


def sample_with_answer(text: str) -> SampleResponse:
    """A finished sample whose answer is ``text`` (the response under judgement)."""
    response = {"choices": [{"message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 8}}
    return SampleResponse(response, started_at=0.0, finished_at=1.0, ttft_s=0.5)


def test_a_sample_math_verify_rejects_and_the_judge_accepts_records_both(server, model_name):
    assert score("math", SPIDER.gold, ANSWER, ANSWER).correct is False   # math-verify alone
    judge = Judge(JudgeSettings(server.base_url, model_name, server.api_key, timeout_s=120,
                                max_tokens=4))
    settings = RunSettings(model_name, 16, 0.0, None, None, None, None, 1)
    try:
        record = record_of(Dataset("spiders", "math", [SPIDER]), SPIDER, 0, settings,
                           sample_with_answer(ANSWER), judge)
    finally:
        judge.close()
    assert record["judge"]["math_verify"] is False
    assert record["judge"]["verdict"] is True, record["judge"]
    assert record["judge"]["model"] == model_name and record["judge"]["error"] is None
    assert record["judge"]["reply"].strip().upper().startswith("YES")
    assert record["verdict"]["correct"] is True
    json.dumps(record)   # the line is written as JSON


def test_a_judge_that_is_down_changes_no_verdict(server, tmp_path):
    out = tmp_path / "run.jsonl"
    closed = f"http://127.0.0.1:{free_port()}/v1"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--base-url", server.base_url,
         "--api-key", server.api_key, "--dataset", "aime2024", "--limit", "2",
         "--max-tokens", "12", "--temperature", "0", "--out", str(out),
         "--judge-base-url", closed, "--judge-model", "judge", "--judge-timeout", "5"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2
    asked = 0
    for line in lines:
        math_verify = score("math", line["gold"], line["answer"],
                            (line["reasoning"] or "") + line["answer"])
        assert line["verdict"] == math_verify.to_dict()
        if line["judge"] is not None:
            asked += 1
            assert line["judge"]["math_verify"] is False and line["judge"]["verdict"] is None
            assert "cannot reach" in line["judge"]["error"]
    assert asked >= 1   # the 135M model gets AIME wrong, so the judge was asked
    report = subprocess.run([sys.executable, "-m", "benchmarks.report", str(out)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert f"0 of {asked} asked ({asked} failed)" in report.stdout
