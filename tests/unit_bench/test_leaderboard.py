"""The tuning leaderboard (benchmarks/leaderboard.py) on hand-built trial results."""

import json

from sglang_soft_thinking.params import SoftThinkingParams

from benchmarks.leaderboard import RECOMMENDED_FILE, TrialResult, rank, recommend, write_leaderboard


def records(correct: list[bool], tokens: int) -> list[dict]:
    return [{"prompt_id": f"p/{i}", "sample_index": 0, "verdict": {"correct": c, "extracted": "1"},
             "usage": {"completion_tokens": tokens, "reasoning_tokens": 0},
             "soft_thinking": None, "latency": {"ttft_s": None, "tpot_s": None, "e2e_s": 1.0},
             "started_at": float(i), "finished_at": float(i) + 1}
            for i, c in enumerate(correct)]


def trial(trial_id, max_topk, correct, tokens, size=4):
    params = None if max_topk is None else SoftThinkingParams(max_topk=max_topk)
    return TrialResult(trial_id, trial_id, params, records(correct, tokens), size)


def test_rank_puts_full_trials_first_then_accuracy_then_fewer_tokens():
    rows = [trial("a", 5, [True, False, False, False], 100).row(),
            trial("b", 10, [True, True, False, False], 300).row(),
            trial("c", 15, [True, True, False, False], 200).row(),
            trial("d", 20, [True, True], 50, size=2).row()]  # dropped early by halving
    assert [row["trial"] for row in rank(rows)] == ["c", "b", "a", "d"]
    assert recommend(rows, full_size=4)["trial"] == "c"


def test_baseline_is_never_recommended(tmp_path):
    results = [trial("baseline", None, [True] * 4, 10), trial("s1", 5, [False] * 4, 90)]
    summary = write_leaderboard(results, tmp_path, full_size=4)
    assert summary["recommended"] == "s1"
    assert summary["pareto"] == ["baseline"]  # s1 is worse on both axes
    written = json.loads((tmp_path / RECOMMENDED_FILE).read_text())
    assert SoftThinkingParams.model_validate(written).max_topk == 5
    table = (tmp_path / "leaderboard.md").read_text()
    assert table.index("baseline") < table.index("s1")
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_no_full_soft_trial_means_no_recommendation(tmp_path):
    results = [trial("baseline", None, [True] * 4, 10), trial("s1", 5, [True], 5, size=1)]
    assert write_leaderboard(results, tmp_path, full_size=4)["recommended"] is None
    assert not (tmp_path / RECOMMENDED_FILE).exists()
