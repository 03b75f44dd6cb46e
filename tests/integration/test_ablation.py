"""The ablation and the self-consistency commands against the real server, end to end, as
users run them (subprocesses): the run file per rung, the report's files and its paired
rows; the soft and plain series, with the prompt served from the prefix cache."""

from __future__ import annotations

import json
import subprocess
import sys

from sglang_soft_thinking.params import METHODS

from server_process import REPO_ROOT

NUM_PROBLEMS = 3


def run_module(module, server, out, *extra, timeout=300):
    args = [sys.executable, "-m", module, "--base-url", server.base_url, "--api-key",
            server.api_key, "--dataset", "word_problems", "--seed", "0", "--out", str(out),
            *extra]
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_ablation_runs_every_rung_and_pairs_them_with_plain(server, tmp_path):
    out = tmp_path / "ablation"
    done = run_module("benchmarks.ablation", server, out, "--limit", str(NUM_PROBLEMS),
                      "--max-tokens", "64", "--concurrency", "8",
                      "--soft-thinking", '{"max_thinking_tokens": 32}')
    assert done.returncode == 0, done.stderr
    ladder = json.loads((out / "ladder.json").read_text())
    rungs = [rung["name"] for rung in ladder["rungs"]]
    assert rungs[0] == "plain" and {"concept", "concept_gumbel"} <= set(rungs)
    assert {rung["request"]["soft_thinking"]["method"] for rung in ladder["rungs"][1:]} == set(METHODS)
    for rung in ladder["rungs"]:
        lines = [json.loads(line) for line in (out / f"{rung['name']}.jsonl").read_text().splitlines()]
        assert sorted(line["prompt_id"] for line in lines) == [
            f"word_problems/{i}" for i in range(NUM_PROBLEMS)]
        assert all(line["request"] == rung["request"] for line in lines)
        assert all((line["soft_thinking"] is None) == (rung["name"] == "plain") for line in lines)
    assert {(out / name).stat().st_size > 0
            for name in ("report.md", "report.json", "accuracy_vs_tokens.png")} == {True}
    report = json.loads((out / "report.json").read_text())
    against_plain = next(c for c in report["comparisons"] if c["baseline"] == "plain")
    assert [row["run"] for row in against_plain["rows"]] == rungs[1:]
    for row in against_plain["rows"]:
        assert row["num_problems"] == NUM_PROBLEMS and row["mcnemar"] is not None
        low, high = row["tokens_interval"]
        assert low <= row["tokens_diff"] <= high
    assert "## Paired against `plain`" in (out / "report.md").read_text()
    assert "Paired against plain" in done.stdout
    # Run again: every sample is there, nothing is sent, the files stay as they are.
    before = {rung: (out / f"{rung}.jsonl").read_bytes() for rung in rungs}
    again = run_module("benchmarks.ablation", server, out, "--limit", str(NUM_PROBLEMS),
                       "--max-tokens", "64", "--soft-thinking", '{"max_thinking_tokens": 32}')
    assert again.returncode == 0, again.stderr
    assert {rung: (out / f"{rung}.jsonl").read_bytes() for rung in rungs} == before


def test_self_consistency_serves_later_samples_from_the_prefix_cache(server, tmp_path):
    out = tmp_path / "self_consistency"
    done = run_module("benchmarks.self_consistency", server, out, "--limit", "2", "--k", "2",
                      "--max-tokens", "24", "--soft-thinking", '{"max_thinking_tokens": 12}')
    assert done.returncode == 0, done.stderr
    soft = [json.loads(line) for line in (out / "soft.jsonl").read_text().splitlines()]
    assert sorted((r["prompt_id"], r["sample_index"], r["seed"]) for r in soft) == [
        (f"word_problems/{p}", i, i) for p in range(2) for i in range(2)]
    assert all(r["request"]["soft_thinking"]["noise"]["type"] == "gumbel" for r in soft)
    later = [r for r in soft if r["sample_index"] == 1]
    assert all(r["usage"]["cached_tokens"] > 0 for r in later)
    curves = json.loads((out / "self_consistency.json").read_text())
    assert [p["k"] for p in curves["series"]["soft"]] == [1, 2]
    assert [p["k"] for p in curves["series"]["plain"]] == [1, 2]
    assert (out / "self_consistency.png").stat().st_size > 0
