"""Metrics (benchmarks/metrics.py): pass@k against brute force, majority vote, summarize."""

import itertools

import pytest

from benchmarks.metrics import (
    pareto_front,
    pass_at_k,
    percentile,
    summarize,
    union_length,
)
from evaluation.scoring import majority_vote


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """The fraction of all k-subsets of n samples (c of them correct) holding a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 10])
def test_pass_at_k_equals_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    # C(1000, 500) overflows a float; the estimator must not form it.
    value = pass_at_k(1000, 10, 500)
    assert 0.999 < value <= 1.0
    assert pass_at_k(1000, 0, 500) == 0.0
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)


def test_pass_at_k_rejects_impossible_counts():
    for n, c, k in [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


@pytest.mark.parametrize("extracted, correct, expected", [
    (["18", "17", "18"], [True, False, True], ("18", True)),
    (["17", "18", "17"], [False, True, False], ("17", False)),
    (["17", "18"], [False, True], ("17", False)),           # a tie goes to the first seen
    (["18", "17"], [True, False], ("18", True)),
    ([None, None, "5"], [False, False, True], ("5", True)),   # None never wins ...
    ([None, None], [False, False], (None, False)),            # ... unless all are None
    (["1/2", "1/2", "3"], [False, True, False], ("1/2", True)),  # one sample judged right
])
def test_majority_vote(extracted, correct, expected):
    assert majority_vote(extracted, correct) == expected


def test_union_length_and_percentiles():
    assert union_length([(0, 2), (1, 3), (10, 11)]) == 4
    assert union_length([(5, 6), (0, 10)]) == 10
    assert union_length([]) == 0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([7], 0.99) == 7
    assert percentile(list(range(101)), 0.99) == pytest.approx(99)


def record(prompt: str, index: int, correct: bool, extracted: str | None, tokens: int,
           start: float, end: float, soft: dict | None = None, latency: dict | None = None,
           reasoning_tokens: int = 0) -> dict:
    return {"prompt_id": prompt, "sample_index": index,
            "usage": {"prompt_tokens": 5, "completion_tokens": tokens,
                      "reasoning_tokens": reasoning_tokens},
            "soft_thinking": soft, "latency": latency or {"ttft_s": None, "tpot_s": None, "e2e_s": end - start},
            "started_at": start, "finished_at": end,
            "verdict": {"correct": correct, "extracted": extracted, "detail": None}}


def test_summarize_hand_built_run():
    records = [
        # prompt a: 2 of 3 right; a resumed run wrote sample 1 twice, the last line wins.
        record("a", 0, True, "4", 10, 0, 2, {"thinking_tokens": 6, "end_reason": "cold_stop"}),
        record("a", 1, True, "4", 99, 0, 2, {"thinking_tokens": 9, "end_reason": "cold_stop"}),
        record("a", 1, False, "5", 20, 1, 3, {"thinking_tokens": 8, "end_reason": "think_end"}),
        record("a", 2, True, "4", 30, 2, 4, {"thinking_tokens": 7, "end_reason": "budget"}),
        # prompt b: 0 of 4 right (no answers at all in two), then a gap of 96 s (killed, resumed).
        record("b", 0, False, None, 40, 100, 101, None, reasoning_tokens=3),
        record("b", 1, False, None, 50, 100, 102, None, reasoning_tokens=5),
        record("b", 2, False, "x", 60, 101, 103),
        record("b", 3, False, "y", 70, 102, 104),
    ]
    summary = summarize(records)
    assert summary["num_prompts"] == 2 and summary["num_samples"] == 7
    assert summary["pass@1"] == pytest.approx((2 / 3 + 0) / 2)
    # smallest per-prompt count is 3 -> k in 1, 2 and 3
    assert set(summary["pass@k"]) == {"1", "2", "3"}
    assert summary["pass@k"]["2"] == pytest.approx((brute_force_pass_at_k(3, 2, 2) + 0) / 2)
    assert summary["pass@k"]["3"] == pytest.approx(0.5)
    assert summary["majority_vote"] == pytest.approx(0.5)       # a: "4" wins, b: "x" (first) wrong
    assert summary["mean_completion_tokens"] == pytest.approx((10 + 20 + 30 + 40 + 50 + 60 + 70) / 7)
    assert summary["mean_completion_tokens_correct"] == pytest.approx((10 + 30) / 2)
    # soft_thinking.thinking_tokens where present, else usage.reasoning_tokens
    assert summary["mean_thinking_tokens"] == pytest.approx((6 + 8 + 7 + 3 + 5 + 0 + 0) / 7)
    assert summary["cold_stop_rate"] == pytest.approx(1 / 3)
    assert summary["busy_time_s"] == pytest.approx(4 + 4)       # [0, 4] and [100, 104]
    assert summary["output_tokens_per_s"] == pytest.approx(280 / 8)
    assert summary["e2e_s"]["mean"] == pytest.approx((2 + 2 + 2 + 1 + 2 + 2 + 2) / 7)
    assert summary["e2e_s"]["p50"] == pytest.approx(2)
    assert summary["ttft_s"] is None and summary["tpot_s"] is None


def test_summarize_without_soft_thinking_or_correct_answers():
    records = [record("a", i, False, None, 5, i, i + 1) for i in range(3)]
    summary = summarize(records)
    assert summary["cold_stop_rate"] is None
    assert summary["mean_completion_tokens_correct"] is None
    assert summary["pass@1"] == 0 and summary["majority_vote"] == 0
    assert set(summary["pass@k"]) == {"1", "2", "3"}
    assert summary["busy_time_s"] == pytest.approx(3)


def test_summarize_pass_at_k_includes_the_smallest_count():
    records = [record("a", i, i < 2, str(i), 5, 0, 1) for i in range(6)]
    summary = summarize(records)
    assert list(summary["pass@k"]) == ["1", "2", "4", "6"]
    assert summary["pass@k"]["6"] == 1.0
    assert summary["pass@k"]["4"] == pytest.approx(brute_force_pass_at_k(6, 2, 4))


def test_pareto_front():
    points = [("cheap", 10, 0.2), ("best", 50, 0.6), ("dominated", 60, 0.5),
              ("mid", 30, 0.4), ("tie-worse", 30, 0.3)]
    assert pareto_front(points) == ["cheap", "mid", "best"]
