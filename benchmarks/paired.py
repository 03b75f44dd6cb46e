"""Paired comparison of two runs on the same problems.

Two runs on the same problems share each problem's difficulty, so their difference is
measured far more precisely problem by problem than by comparing two separate intervals.
For every problem the difference in pass@1 (the rate over its samples) and in tokens is
taken; the interval comes from a bootstrap that resamples problems and uses the same
problems for both runs (the pairing is kept). When both runs have one sample per problem,
the exact McNemar test (:func:`mcnemar_exact`) tests the pass@1 difference too: it looks
only at the problems the runs disagree on.

A difference is *distinguishable from zero* at 95% when its 95% interval excludes 0; for
pass@1 of single-sample runs the McNemar p-value (< 0.05) decides instead, being exact.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from benchmarks.uncertainty import CONFIDENCE, cluster_bootstrap_interval

logger = logging.getLogger(__name__)

SIGNIFICANCE = 1 - CONFIDENCE


class PairingError(ValueError):
    """Two runs that cannot be paired; the message names them and says why."""


@dataclass(frozen=True)
class ProblemTotals:
    """One problem's samples in one run: how many, how many right, and their tokens."""

    num_samples: int
    num_correct: int
    token_sum: float
    num_with_tokens: int

    @property
    def rate(self) -> float:
        return self.num_correct / self.num_samples


def problem_totals(samples: list[dict]) -> dict[str, ProblemTotals]:
    """Per problem id, its totals over the (already deduplicated) samples of a run."""
    grouped: dict[str, list[dict]] = {}
    for record in samples:
        grouped.setdefault(record["prompt_id"], []).append(record)
    totals = {}
    for prompt_id, group in grouped.items():
        tokens = [t for r in group if (t := (r.get("usage") or {}).get("completion_tokens")) is not None]
        totals[prompt_id] = ProblemTotals(
            num_samples=len(group),
            num_correct=sum(1 for r in group if (r.get("verdict") or {}).get("correct")),
            token_sum=float(sum(tokens)), num_with_tokens=len(tokens))
    return totals


def check_same_problems(baseline: str, baseline_ids: set[str], other: str,
                        other_ids: set[str]) -> None:
    """Refuse to pair runs whose problem sets differ, saying by how much."""
    only_baseline, only_other = baseline_ids - other_ids, other_ids - baseline_ids
    if only_baseline or only_other:
        raise PairingError(
            f"runs {baseline!r} and {other!r} are not on the same problems: "
            f"{len(only_baseline)} only in {baseline!r}, {len(only_other)} only in {other!r}, "
            f"{len(baseline_ids & other_ids)} in both; run them on the same problems (same "
            "--dataset and --limit, every sample finished) or report them with --unpaired")


def mcnemar_exact(baseline_only: int, other_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs.

    ``baseline_only``: problems the baseline got right and the other run wrong;
    ``other_only``: the reverse. Under "no difference" each discordant problem is equally
    likely to go either way, so the smaller count is Binomial(b + c, 1/2); the p-value is
    twice its lower tail, capped at 1 (the binomial is symmetric). No discordant pairs: 1.
    """
    if baseline_only < 0 or other_only < 0:
        raise ValueError("discordant counts must be 0 or more")
    discordant = baseline_only + other_only
    if discordant == 0:
        return 1.0
    smaller = min(baseline_only, other_only)
    tail = sum(math.comb(discordant, i) for i in range(smaller + 1)) / 2 ** discordant
    return min(1.0, 2 * tail)


def _difference(other: list[float], baseline: list[float], other_den: list[float],
                baseline_den: list[float]) -> tuple[float, tuple[float, float]]:
    """The difference of two ratio estimators and its paired problem-bootstrap interval."""
    top_o, top_b = np.asarray(other), np.asarray(baseline)
    den_o, den_b = np.asarray(other_den, dtype=float), np.asarray(baseline_den, dtype=float)

    def statistic(rows):
        return (top_o[rows].sum(axis=1) / den_o[rows].sum(axis=1)
                - top_b[rows].sum(axis=1) / den_b[rows].sum(axis=1))

    point = top_o.sum() / den_o.sum() - top_b.sum() / den_b.sum()
    return float(point), cluster_bootstrap_interval(statistic, len(other))


def _excludes_zero(interval: tuple[float, float]) -> bool:
    return interval[0] > 0 or interval[1] < 0


def compare(baseline_name: str, baseline: dict[str, ProblemTotals], other_name: str,
            other: dict[str, ProblemTotals]) -> dict:
    """The paired comparison of ``other`` against ``baseline`` (per-problem totals of each).

    pass@1 difference: mean over problems of the difference of per-problem rates. Token
    difference: other's mean tokens per sample minus the baseline's, each problem's samples
    resampled together. Raises :class:`PairingError` when the problem sets differ.
    """
    check_same_problems(baseline_name, set(baseline), other_name, set(other))
    ids = sorted(baseline)
    ones = [1.0] * len(ids)
    rate_diff, rate_interval = _difference([other[i].rate for i in ids],
                                           [baseline[i].rate for i in ids], ones, ones)
    row = {"run": other_name, "baseline": baseline_name, "num_problems": len(ids),
           "pass@1_diff": rate_diff, "pass@1_interval": list(rate_interval),
           "mcnemar": None, "tokens_diff": None, "tokens_interval": None}
    single = all(baseline[i].num_samples == 1 and other[i].num_samples == 1 for i in ids)
    if single:
        baseline_only = sum(1 for i in ids if baseline[i].num_correct > other[i].num_correct)
        other_only = sum(1 for i in ids if other[i].num_correct > baseline[i].num_correct)
        row["mcnemar"] = {"baseline_only": baseline_only, "other_only": other_only,
                          "p_value": mcnemar_exact(baseline_only, other_only)}
        row["pass@1_distinguishable"] = row["mcnemar"]["p_value"] < SIGNIFICANCE
    else:
        row["pass@1_distinguishable"] = _excludes_zero(rate_interval)
    with_tokens = [i for i in ids if baseline[i].num_with_tokens and other[i].num_with_tokens]
    if with_tokens:
        tokens_diff, tokens_interval = _difference(
            [other[i].token_sum for i in with_tokens], [baseline[i].token_sum for i in with_tokens],
            [other[i].num_with_tokens for i in with_tokens],
            [baseline[i].num_with_tokens for i in with_tokens])
        row.update(tokens_diff=tokens_diff, tokens_interval=list(tokens_interval))
    row["tokens_distinguishable"] = (row["tokens_interval"] is not None
                                     and _excludes_zero(row["tokens_interval"]))
    return row
