"""Intervals (benchmarks/uncertainty.py) against independent computations: scipy's Wilson
interval and t interval, a closed form, and seeded simulations of coverage."""

import math
import random

import numpy as np
import pytest
from scipy import stats

from benchmarks.metrics import summarize
from benchmarks.uncertainty import (
    mean_interval,
    normal_quantile,
    rate_interval,
    spread,
    wilson_interval,
)

Z95 = 1.959963984540054


def test_normal_quantile_is_the_two_sided_z():
    assert normal_quantile(0.95) == pytest.approx(Z95, rel=1e-9)
    assert normal_quantile(0.90) == pytest.approx(stats.norm.ppf(0.95), rel=1e-9)
    with pytest.raises(ValueError):
        normal_quantile(1.0)


@pytest.mark.parametrize("successes, trials", [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10),
                                               (17, 40), (250, 500), (1, 1319)])
def test_wilson_equals_scipy(successes, trials):
    expected = stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_with_no_successes_by_hand():
    # With p = 0 the centre and the half-width are both z^2 / (2 (n + z^2)), so the
    # interval is [0, z^2 / (n + z^2)].
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(Z95 ** 2 / (10 + Z95 ** 2), rel=1e-12)
    assert wilson_interval(10, 10) == pytest.approx((1 - high, 1.0))


def test_wilson_rejects_impossible_counts():
    for successes, trials in [(0, 0), (-1, 3), (4, 3)]:
        with pytest.raises(ValueError):
            wilson_interval(successes, trials)


def test_wilson_covers_the_true_rate_about_95_percent_of_the_time():
    rng = random.Random(1)
    true_rate, trials, runs = 0.3, 40, 400
    covered = 0
    for _ in range(runs):
        successes = sum(rng.random() < true_rate for _ in range(trials))
        low, high = wilson_interval(successes, trials)
        covered += low <= true_rate <= high
    assert 0.91 <= covered / runs <= 0.99


def simulated_problems(rng: np.random.Generator, num_problems: int, num_samples: int):
    """Per-problem rates of a benchmark whose problems differ in difficulty: each problem's
    chance of a right answer is drawn from Beta(0.5, 0.5) (mostly easy or hard, mean 0.5),
    then its samples are right with that chance. Returns (rates, all sample outcomes)."""
    chances = rng.beta(0.5, 0.5, size=num_problems)
    outcomes = rng.random((num_problems, num_samples)) < chances[:, None]
    return outcomes.mean(axis=1), outcomes


def test_the_problem_bootstrap_covers_clustered_samples_and_the_naive_interval_does_not():
    rng = np.random.default_rng(2)
    true_rate, runs = 0.5, 400
    covered_bootstrap = covered_naive = 0
    for _ in range(runs):
        rates, outcomes = simulated_problems(rng, num_problems=40, num_samples=4)
        interval = rate_interval(list(rates), is_one_outcome_per_problem=False)
        covered_bootstrap += interval["low"] <= true_rate <= interval["high"]
        # Naive: every sample as an independent trial.
        low, high = wilson_interval(int(outcomes.sum()), outcomes.size)
        covered_naive += low <= true_rate <= high
    assert interval["method"] == "bootstrap"
    assert 0.91 <= covered_bootstrap / runs <= 0.99
    assert covered_naive / runs < 0.88


def test_correlated_samples_give_a_wider_interval_than_the_naive_one():
    # 40 problems, 4 samples each, a problem's samples all agree: 160 samples carry the
    # information of 40 outcomes.
    records = [{"prompt_id": f"p/{problem}", "sample_index": sample,
                "verdict": {"correct": problem % 2 == 0, "extracted": "1"},
                "usage": {"completion_tokens": 10}}
               for problem in range(40) for sample in range(4)]
    interval = summarize(records)["intervals"]["pass@1"]
    naive_low, naive_high = wilson_interval(80, 160)
    assert interval["method"] == "bootstrap"
    assert interval["high"] - interval["low"] > 1.5 * (naive_high - naive_low)
    # ... and about as wide as the Wilson interval of 40 independent outcomes.
    low_40, high_40 = wilson_interval(20, 40)
    assert interval["high"] - interval["low"] == pytest.approx(high_40 - low_40, rel=0.2)


def test_one_sample_per_problem_is_wilson_over_problems():
    records = [{"prompt_id": f"p/{i}", "sample_index": 0,
                "verdict": {"correct": i < 7, "extracted": str(i)}} for i in range(20)]
    summary = summarize(records)
    expected = stats.binomtest(7, 20).proportion_ci(0.95, method="wilson")
    for figure in (summary["intervals"]["pass@1"], summary["intervals"]["majority_vote"]):
        assert figure["method"] == "wilson"
        assert (figure["low"], figure["high"]) == pytest.approx((expected.low, expected.high))


def test_every_problem_alike_falls_back_to_wilson_over_problems():
    # All right with 3 samples each: the bootstrap would collapse to [1, 1].
    interval = rate_interval([1.0] * 12, is_one_outcome_per_problem=False)
    assert interval["method"] == "wilson"
    assert (interval["low"], interval["high"]) == pytest.approx(wilson_interval(12, 12))
    assert interval["low"] < 1.0


def test_the_mean_interval_agrees_with_the_t_interval_for_normal_data():
    rng = np.random.default_rng(3)
    values = rng.normal(300.0, 60.0, size=200)
    low, high = mean_interval(list(values))
    t_low, t_high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                     scale=stats.sem(values))
    half = (t_high - t_low) / 2
    assert abs(low - t_low) < 0.15 * half and abs(high - t_high) < 0.15 * half


def test_the_token_interval_is_over_samples_with_problems_resampled():
    records = [{"prompt_id": f"p/{problem}", "sample_index": sample,
                "verdict": {"correct": True, "extracted": "1"},
                "usage": {"completion_tokens": 100 + 10 * problem + sample}}
               for problem in range(30) for sample in range(3)]
    summary = summarize(records)
    interval = summary["intervals"]["mean_completion_tokens"]
    assert interval["low"] < summary["mean_completion_tokens"] < interval["high"]
    # The per-problem means are 101 + 10 * problem: the interval is that of their mean.
    expected = mean_interval([101.0 + 10 * problem for problem in range(30)])
    assert (interval["low"], interval["high"]) == pytest.approx(expected)


def test_spread_against_numpy():
    values = [0.41, 0.38, 0.45, 0.40]
    result = spread(values)
    assert result["mean"] == pytest.approx(np.mean(values))
    assert result["sd"] == pytest.approx(np.std(values, ddof=1))
    assert (result["min"], result["max"]) == (0.38, 0.45)
    assert spread([0.5])["sd"] is None


def test_repeats_give_pass_at_1_per_repeat_and_its_spread():
    # 4 problems, 2 samples, 3 repeats; repeat r gets r + 1 problems' samples right.
    records = [{"prompt_id": f"p/{problem}", "sample_index": sample, "repeat": repeat,
                "verdict": {"correct": problem <= repeat, "extracted": "1"}}
               for repeat in range(3) for problem in range(4) for sample in range(2)]
    summary = summarize(records)
    assert summary["num_repeats"] == 3 and summary["num_samples"] == 24
    assert summary["repeats"]["pass@1"] == pytest.approx([0.25, 0.5, 0.75])
    assert summary["repeats"]["mean"] == pytest.approx(0.5)
    assert summary["repeats"]["sd"] == pytest.approx(0.25)
    assert summary["pass@1"] == pytest.approx(0.5)
    # pass@k stops at the samples of one repeat; a problem's votes average over its repeats.
    assert list(summary["pass@k"]) == ["1", "2"]
    assert summary["majority_vote"] == pytest.approx((3 + 2 + 1 + 0) / 3 / 4)
    assert summarize(records[:8])["repeats"] is None


def test_pass_at_1_without_the_judge_sits_beside_the_judged_one():
    records = [{"prompt_id": "p/0", "sample_index": 0, "verdict": {"correct": True},
                "judge": {"math_verify": False, "verdict": True}},
               {"prompt_id": "p/1", "sample_index": 0, "verdict": {"correct": True}, "judge": None}]
    summary = summarize(records)
    assert summary["pass@1"] == 1.0 and summary["pass@1_rule_based"] == 0.5
    assert summarize(records[1:])["pass@1_rule_based"] is None
    assert math.isclose(summarize(records[:1])["pass@1_rule_based"], 0.0)
