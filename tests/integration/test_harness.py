"""The benchmark harness against the real server: a run, a kill and a resume, the report.

``benchmarks.run`` runs as a subprocess, as users run it. Plain requests use greedy
decoding with one request at a time, so a resumed run must reproduce an unbroken one
line for line (as a set: lines are appended in the order samples finish).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from server_process import REPO_ROOT, free_port

SOFT = {"max_topk": 5, "max_thinking_tokens": 8, "think_end_str": "</think>",
        "after_thinking": {"temperature": 0}}


def harness_args(server, out, *extra):
    return [sys.executable, "-m", "benchmarks.run", "--base-url", server.base_url,
            "--api-key", server.api_key, "--dataset", "word_problems", "--max-tokens", "12",
            "--out", str(out), *extra]


def run_harness(args, timeout=300):
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def comparable(record):
    return (record["prompt_id"], record["sample_index"], record["answer"],
            record["usage"]["completion_tokens"], record["verdict"]["correct"])


@pytest.fixture(scope="module")
def unbroken_run(server, tmp_path_factory):
    out = tmp_path_factory.mktemp("harness") / "unbroken.jsonl"
    done = run_harness(harness_args(server, out, "--limit", "6", "--temperature", "0",
                                    "--concurrency", "1"))
    assert done.returncode == 0, done.stderr
    return out


def test_a_run_writes_one_scored_line_per_sample(unbroken_run):
    lines = read_lines(unbroken_run)
    assert [line["prompt_id"] for line in lines] == [f"word_problems/{i}" for i in range(6)]
    for line in lines:
        tokens = line["usage"]["completion_tokens"]
        assert tokens == 12 if line["finish_reason"] == "length" else 0 < tokens <= 12
        assert line["answer"] == line["response"]["choices"][0]["message"]["content"] != ""
        assert line["verdict"]["correct"] in (True, False)
        assert 0 < line["latency"]["ttft_s"] <= line["latency"]["e2e_s"]
        assert line["soft_thinking"] is None and line["request"]["soft_thinking"] is None


def test_killed_then_resumed_run_equals_the_unbroken_one(server, unbroken_run, tmp_path):
    out = tmp_path / "resumed.jsonl"
    args = harness_args(server, out, "--limit", "6", "--temperature", "0", "--concurrency", "1")
    process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and len(out.read_text(encoding="utf-8").splitlines()) >= 2:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_with = len(read_lines(out))
    assert 2 <= killed_with < 6, "the run should have been killed part way"
    with open(out, "a", encoding="utf-8") as file:  # as if killed in the middle of a write
        file.write('{"prompt_id": "word_problems/5", "sample_in')
    resumed = run_harness(args)
    assert resumed.returncode == 0, resumed.stderr
    lines = read_lines(out)
    assert len(lines) == 6
    assert sorted(map(comparable, lines)) == sorted(map(comparable, read_lines(unbroken_run)))
    # A third run finds nothing to do and leaves the file as it is.
    before = out.read_bytes()
    assert run_harness(args).returncode == 0
    assert out.read_bytes() == before


def test_soft_thinking_run_records_thinking_and_report_renders(server, unbroken_run, tmp_path,
                                                               tokenizer):
    out = tmp_path / "soft.jsonl"
    done = run_harness(harness_args(server, out, "--limit", "3", "--num-samples", "2",
                                    "--soft-thinking", json.dumps(SOFT), "--seed", "1"))
    assert done.returncode == 0, done.stderr
    lines = read_lines(out)
    assert sorted((line["prompt_id"], line["sample_index"]) for line in lines) == [
        (f"word_problems/{i}", j) for i in range(3) for j in range(2)]
    # Thinking tokens: the concept steps (at most the budget) and the think-end tokens.
    think_end_len = len(tokenizer.encode("</think>", add_special_tokens=False))
    for line in lines:
        assert line["request"]["soft_thinking"]["max_topk"] == 5
        thinking = line["soft_thinking"]["thinking_tokens"]
        assert 1 <= thinking <= 8 + think_end_len and line["soft_thinking"]["end_reason"] in (
            "budget", "think_end", "cold_stop", "stop", "length")
        assert line["usage"]["reasoning_tokens"] == thinking
    report_dir = tmp_path / "report"
    # The two runs cover different problems: reported side by side, not paired.
    report = run_harness([sys.executable, "-m", "benchmarks.report", str(unbroken_run), str(out),
                          "--out-dir", str(report_dir), "--unpaired"])
    assert report.returncode == 0, report.stderr
    assert "unbroken" in report.stdout and "soft" in report.stdout
    assert (report_dir / "accuracy_vs_tokens.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra, message", [
    (["--soft-thinking", '{"max_topk": 0}'], "soft_thinking.max_topk"),
    (["--dataset", "no_such_set"], "unknown dataset 'no_such_set'"),
    (["--limit", "0"], "--limit must be at least 1"),
])
def test_bad_options_fail_before_any_request(tmp_path, extra, message):
    out = tmp_path / "never.jsonl"
    # A port nobody listens on: reaching the network at all would be a different error.
    args = [sys.executable, "-m", "benchmarks.run", "--base-url",
            f"http://127.0.0.1:{free_port()}/v1", "--dataset", "word_problems", "--out", str(out),
            *extra]
    done = run_harness(args)
    assert done.returncode == 2
    assert message in done.stderr
    assert not out.exists()


def test_resume_with_other_settings_is_refused(server, unbroken_run):
    done = run_harness(harness_args(server, unbroken_run, "--limit", "6", "--temperature", "0.5"))
    assert done.returncode == 2
    assert "temperature: 0.0 in the file, 0.5 now" in done.stderr
