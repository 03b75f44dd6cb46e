"""``benchmarks.tune`` against the real server: a 2×2 grid, its outputs, a free restart."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.settings import load_json_or_file, parse_soft_thinking
from server.soft_thinking import load_defaults
from server_process import REPO_ROOT, free_port

SPACE = {"max_topk": [2, 4], "early_stopping_entropy_threshold": [0.0, 0.5]}
BASE = {"max_thinking_tokens": 6, "early_stopping_length_threshold": 2}


def tune_args(base_url, out, *extra, space=SPACE, api_key="test-key"):
    return [sys.executable, "-m", "benchmarks.tune", "--base-url", base_url, "--api-key", api_key,
            "--dataset", "word_problems", "--limit", "2", "--max-tokens", "10",
            "--soft-thinking", json.dumps(BASE), "--space", json.dumps(space),
            "--concurrency", "4", "--out", str(out), *extra]


def run(args):
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def dead_url():
    """A URL nobody answers: any request sent to it fails."""
    return f"http://127.0.0.1:{free_port()}/v1"


def test_grid_search_writes_leaderboard_plot_and_recommendation(server, tmp_path):
    out = tmp_path / "tune"
    first = run(tune_args(server.base_url, out))
    assert first.returncode == 0, first.stderr
    leaderboard = json.loads((out / "leaderboard.json").read_text())
    trials = {row["trial"]: row for row in leaderboard["rows"]}
    assert len(trials) == 5 and "baseline" in trials  # 2×2 grid plus the baseline
    assert trials["baseline"]["soft_thinking"] is None
    grid = {(row["soft_thinking"]["max_topk"], row["soft_thinking"]["early_stopping_entropy_threshold"])
            for row in trials.values() if row["soft_thinking"]}
    assert grid == {(2, 0.0), (2, 0.5), (4, 0.0), (4, 0.5)}
    for trial_id, row in trials.items():
        lines = (out / "trials" / trial_id / "run.jsonl").read_text().splitlines()
        assert row["samples"] == len(lines) == 2
    # Cold Stop off (threshold 0) never stops early; an entropy threshold of 0.5 nats after
    # 2 confident steps may. Each trial's rate is its own run's fraction of cold stops.
    for row in trials.values():
        if row["soft_thinking"] and row["soft_thinking"]["early_stopping_entropy_threshold"] == 0:
            assert row["cold_stop_rate"] == 0
    table = (out / "leaderboard.md").read_text()
    assert all(trial_id in table for trial_id in trials)
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    recommended = parse_soft_thinking(load_json_or_file(str(out / "recommended_soft_thinking.json"),
                                                        "file"))
    assert trials[leaderboard["recommended"]]["soft_thinking"] == recommended.model_dump(mode="json")
    assert recommended.max_thinking_tokens == 6  # the base settings carried through
    # The server's --soft-thinking FILE reads the same file to the same parameters.
    assert load_defaults(out / "recommended_soft_thinking.json") == recommended

    # The same command again, pointed at a server that does not exist: nothing is sent.
    before = {p: p.read_bytes() for p in out.rglob("run.jsonl")}
    second = run(tune_args(dead_url(), out))
    assert second.returncode == 0, second.stderr
    assert {p: p.read_bytes() for p in out.rglob("run.jsonl")} == before
    assert json.loads((out / "leaderboard.json").read_text())["recommended"] == leaderboard["recommended"]


@pytest.mark.parametrize("space, message", [
    ({"max_topk": [2], "warp_factor": [9]}, "unknown parameter 'warp_factor'"),
    ({"max_topk": []}, "max_topk needs a non-empty list"),
    ({"min_p": [1.5]}, "min_p"),
])
def test_invalid_space_is_refused_before_any_request(tmp_path, space, message):
    out = tmp_path / "tune"
    done = run(tune_args(dead_url(), out, space=space))
    assert done.returncode == 2
    assert message in done.stderr and "cannot reach" not in done.stderr
    assert not out.exists()
