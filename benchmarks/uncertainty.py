"""Confidence intervals for benchmark figures, as small pure functions.

Two methods, chosen by how the samples are structured:

- :func:`wilson_interval` when each problem contributes one yes/no outcome (one sample per
  problem, or one majority vote per problem). The Wilson score interval keeps its nominal
  coverage for small counts and for rates near 0% or 100%, where the textbook normal
  ("Wald") interval collapses to a point.
- :func:`cluster_bootstrap_interval` otherwise. Several samples of one problem are
  correlated (an easy problem is answered right by most of them), so treating them as
  independent would give an interval that is too narrow. The bootstrap resamples whole
  problems with replacement, so each problem's samples move together, and takes the
  percentile interval of the statistic over the resamples.

The bootstrap is seeded, so a report made twice from the same run files is the same.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
NUM_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
# Resamples drawn per numpy batch, which bounds memory at this many rows of problem indices.
_BATCH = 500

Interval = tuple[float, float]


def normal_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile z for ``confidence`` (1.96 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval:
    """The Wilson score interval for a binomial rate ``successes / trials``.

    It inverts the normal approximation of the score test (E. B. Wilson, 1927):
    centre ``(p + z^2 / 2n) / (1 + z^2 / n)``, half-width
    ``z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)``.
    """
    if trials < 1:
        raise ValueError(f"need at least one trial, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    z = normal_quantile(confidence)
    rate = successes / trials
    scale = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / scale
    half = z / scale * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def cluster_bootstrap_interval(statistic: Callable[[np.ndarray], np.ndarray], num_clusters: int,
                               confidence: float = CONFIDENCE, num_resamples: int = NUM_RESAMPLES,
                               seed: int = BOOTSTRAP_SEED) -> Interval:
    """Percentile bootstrap interval of a statistic of clusters (here: problems).

    Each resample draws ``num_clusters`` cluster indices with replacement; ``statistic``
    maps a ``[resamples, num_clusters]`` index array to one value per resample. A paired
    comparison passes a statistic that indexes both runs with the same rows, so the
    pairing by problem is kept.
    """
    if num_clusters < 1:
        raise ValueError("need at least one cluster")
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, num_resamples, _BATCH):
        rows = min(_BATCH, num_resamples - start)
        values.append(statistic(rng.integers(0, num_clusters, size=(rows, num_clusters))))
    tail = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(values), [tail, 1 - tail])
    return float(low), float(high)


def ratio_statistic(numerators: Sequence[float],
                    denominators: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """``sum(numerators) / sum(denominators)`` over the resampled clusters.

    With one value per problem and denominators 1 it is the mean over problems (pass@1 as
    the mean of per-problem rates); with token sums and sample counts it is the mean over
    samples (mean tokens), each problem's samples kept together.
    """
    top = np.asarray(numerators, dtype=float)
    bottom = np.asarray(denominators, dtype=float)
    return lambda rows: top[rows].sum(axis=1) / bottom[rows].sum(axis=1)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE,
                  num_resamples: int = NUM_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Bootstrap interval of the mean of one value per problem (problems resampled)."""
    return cluster_bootstrap_interval(ratio_statistic(values, [1.0] * len(values)), len(values),
                                      confidence, num_resamples, seed)


def rate_interval(per_problem: Sequence[float], is_one_outcome_per_problem: bool,
                  confidence: float = CONFIDENCE) -> dict:
    """The interval of a rate averaged over problems, and the method that made it.

    ``per_problem`` holds each problem's rate in [0, 1]. When every problem contributes one
    yes/no outcome, the Wilson interval over problems is used. Otherwise the problem
    bootstrap is used, except when every problem has the same rate (all right, all wrong):
    the percentile bootstrap then collapses to a point, so the Wilson interval over problems
    is given instead, which is conservative because a rate in [0, 1] with mean p varies at
    most as much as a yes/no outcome with rate p.
    """
    count = len(per_problem)
    if count == 0:
        return {"low": None, "high": None, "method": None}
    if is_one_outcome_per_problem or len(set(per_problem)) == 1:
        successes = round(sum(per_problem))
        low, high = wilson_interval(successes, count, confidence)
        return {"low": low, "high": high, "method": "wilson"}
    low, high = mean_interval(per_problem, confidence)
    return {"low": low, "high": high, "method": "bootstrap"}


def spread(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation (n - 1; None for one value), min and max."""
    if not values:
        raise ValueError("spread of no values")
    sd = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "sd": sd, "min": min(values), "max": max(values)}
