"""Metrics over a run's records (one JSON object per finished sample, see ``benchmarks/run.py``).

:func:`summarize` turns a list of records into the numbers the report shows: accuracy
(pass@1, unbiased pass@k, majority vote), lengths (completion and thinking tokens), the
Cold Stop rate, latencies, output throughput, and what the optional LLM judge did; each
accuracy figure and the mean tokens with a 95% interval over problems
(:mod:`benchmarks.uncertainty`), and with ``--repeats`` the spread of pass@1 across repeats.
Records with the same ``(prompt_id, sample_index, repeat)`` count once, the last one winning,
so a resumed run that wrote a sample twice is not double-counted.

A problem's samples are all its samples of all repeats: pass@1 is their mean rate, pass@k
the unbiased estimator over all of them (k up to the samples of one repeat), the majority
vote is taken within each repeat and averaged over the repeats.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from benchmarks.run_file import sample_key
from benchmarks.uncertainty import cluster_bootstrap_interval, rate_interval, ratio_statistic, spread
from evaluation.scoring import majority_vote

logger = logging.getLogger(__name__)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct: 1 - C(n-c, k) / C(n, k).

    Computed as ``1 - prod_{i=n-c+1..n} (1 - k/i)``, a product of factors in [0, 1], which
    never forms the huge binomials.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by ``[start, end]`` intervals (overlaps counted once)."""
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) with linear interpolation between closest ranks."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_stats(values: list[float]) -> dict | None:
    """``{"mean", "p50", "p99"}`` of the values, or None if there are none."""
    if not values:
        return None
    return {"mean": sum(values) / len(values), "p50": percentile(values, 0.5),
            "p99": percentile(values, 0.99)}


def dedupe(records: list[dict]) -> list[dict]:
    """One record per ``(prompt_id, sample_index, repeat)``, the last written; first-seen order."""
    latest: dict[tuple[str, int, int], dict] = {}
    for record in records:
        latest[sample_key(record)] = record
    return list(latest.values())


def summarize(records: list[dict]) -> dict:
    """All metrics of one run; see the module docstring and the report for their meaning."""
    samples = dedupe(records)
    by_prompt: dict[str, list[dict]] = {}
    for record in samples:
        by_prompt.setdefault(record["prompt_id"], []).append(record)
    summary = {"num_prompts": len(by_prompt), "num_samples": len(samples),
               "num_repeats": len({_repeat(record) for record in samples})}
    summary.update(_accuracy(by_prompt))
    summary["intervals"].update(_token_interval(by_prompt))
    summary["repeats"] = _repeat_spread(samples)
    summary.update(_lengths(samples))
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        summary[key] = latency_stats([value for record in samples
                                      if (value := (record.get("latency") or {}).get(key)) is not None])
    intervals = [(record["started_at"], record["finished_at"]) for record in samples
                 if record.get("started_at") is not None and record.get("finished_at") is not None]
    busy = union_length(intervals)
    summary["busy_time_s"] = busy
    total_tokens = sum(_completion_tokens(record) or 0 for record in samples)
    summary["output_tokens_per_s"] = total_tokens / busy if busy > 0 else None
    summary["judge"] = _judge_counts(samples)
    return summary


def _judge_counts(samples: list[dict]) -> dict | None:
    """How often the LLM judge was asked, turned math-verify's rejection into a pass, and
    gave no verdict (failed); None when no sample was shown to a judge."""
    asked = [record["judge"] for record in samples if record.get("judge")]
    if not asked:
        return None
    return {"asked": len(asked),
            "changed": sum(1 for judge in asked if judge.get("verdict") is True),
            "failed": sum(1 for judge in asked if judge.get("verdict") is None)}


def _is_correct(record: dict) -> bool:
    return bool((record.get("verdict") or {}).get("correct"))


def _is_rule_correct(record: dict) -> bool:
    """The rule-based scorer's verdict (math-verify's), before any LLM judge overruled it."""
    judge = record.get("judge")
    return bool(judge.get("math_verify")) if judge else _is_correct(record)


def _repeat(record: dict) -> int:
    return record.get("repeat", 0)


def _vote(group: list[dict]) -> bool:
    return majority_vote([(r.get("verdict") or {}).get("extracted") for r in group],
                         [_is_correct(r) for r in group])[1]


def _votes(group: list[dict]) -> float:
    """The majority vote within each repeat of one problem, averaged over its repeats."""
    by_repeat: dict[int, list[dict]] = {}
    for record in group:
        by_repeat.setdefault(_repeat(record), []).append(record)
    return sum(_vote(samples) for samples in by_repeat.values()) / len(by_repeat)


def _ks(by_prompt: dict[str, list[dict]]) -> list[int]:
    """k = 1, 2, 4, ... up to the fewest samples of a problem in one repeat, and that number."""
    per_repeat: dict[tuple[str, int], int] = {}
    for prompt, group in by_prompt.items():
        for record in group:
            per_repeat[(prompt, _repeat(record))] = per_repeat.get((prompt, _repeat(record)), 0) + 1
    smallest = min(per_repeat.values())
    ks = [2 ** i for i in range(smallest.bit_length()) if 2 ** i <= smallest]
    return ks if smallest in ks else ks + [smallest]


def _accuracy(by_prompt: dict[str, list[dict]]) -> dict:
    """pass@1, pass@k, majority vote, each with its interval over problems."""
    if not by_prompt:
        return {"pass@1": None, "pass@k": {}, "majority_vote": None, "pass@1_rule_based": None,
                "intervals": {"pass@1": rate_interval([], True), "pass@k": {},
                              "majority_vote": rate_interval([], True)}}
    counts = [(len(group), sum(_is_correct(r) for r in group)) for group in by_prompt.values()]
    rates = [c / n for n, c in counts]
    is_single = all(n == 1 for n, _ in counts)
    per_k = {str(k): [pass_at_k(n, c, k) for n, c in counts] for k in _ks(by_prompt)}
    votes = [_votes(group) for group in by_prompt.values()]
    one_repeat = all(len({_repeat(r) for r in group}) == 1 for group in by_prompt.values())
    judged = any(r.get("judge") for group in by_prompt.values() for r in group)
    rule_based = None
    if judged:
        rule_based = sum(sum(map(_is_rule_correct, g)) / len(g)
                         for g in by_prompt.values()) / len(by_prompt)
    return {
        "pass@1": _mean(rates), "pass@k": {k: _mean(v) for k, v in per_k.items()},
        "majority_vote": _mean(votes), "pass@1_rule_based": rule_based,
        "intervals": {"pass@1": rate_interval(rates, is_single),
                      "pass@k": {k: rate_interval(v, k == "1" and is_single)
                                 for k, v in per_k.items()},
                      "majority_vote": rate_interval(votes, one_repeat)},
    }


def _token_interval(by_prompt: dict[str, list[dict]]) -> dict:
    """The interval of the mean completion tokens per sample, problems resampled."""
    sums, counts = [], []
    for group in by_prompt.values():
        tokens = [t for r in group if (t := _completion_tokens(r)) is not None]
        if tokens:
            sums.append(float(sum(tokens)))
            counts.append(len(tokens))
    if not sums:
        return {"mean_completion_tokens": {"low": None, "high": None, "method": None}}
    low, high = cluster_bootstrap_interval(ratio_statistic(sums, counts), len(sums))
    return {"mean_completion_tokens": {"low": low, "high": high, "method": "bootstrap"}}


def _repeat_spread(samples: list[dict]) -> dict | None:
    """pass@1 of each repeat (mean over its problems) and their spread; None for one repeat."""
    by_repeat: dict[int, dict[str, list[bool]]] = {}
    for record in samples:
        by_repeat.setdefault(_repeat(record), {}).setdefault(
            record["prompt_id"], []).append(_is_correct(record))
    if len(by_repeat) < 2:
        return None
    per_repeat = {repeat: sum(sum(v) / len(v) for v in problems.values()) / len(problems)
                  for repeat, problems in sorted(by_repeat.items())}
    return {"count": len(per_repeat), "pass@1": list(per_repeat.values()),
            **spread(list(per_repeat.values()))}


def _completion_tokens(record: dict) -> int | None:
    return (record.get("usage") or {}).get("completion_tokens")


def _thinking_tokens(record: dict) -> int | None:
    soft = record.get("soft_thinking")
    if isinstance(soft, dict) and soft.get("thinking_tokens") is not None:
        return soft["thinking_tokens"]
    return (record.get("usage") or {}).get("reasoning_tokens")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _lengths(samples: list[dict]) -> dict:
    """Mean completion tokens (all, correct only), mean thinking tokens, Cold Stop rate."""
    tokens = [(t, _is_correct(r)) for r in samples if (t := _completion_tokens(r)) is not None]
    thinking = [t for r in samples if (t := _thinking_tokens(r)) is not None]
    soft = [r["soft_thinking"] for r in samples if isinstance(r.get("soft_thinking"), dict)]
    cold = sum(1 for s in soft if s.get("end_reason") == "cold_stop")
    return {
        "mean_completion_tokens": _mean([t for t, _ in tokens]),
        "mean_completion_tokens_correct": _mean([t for t, ok in tokens if ok]),
        "mean_thinking_tokens": _mean(thinking),
        "cold_stop_rate": cold / len(soft) if soft else None,
    }


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points ``(name, tokens, accuracy)`` that no other point dominates.

    A point dominates another when it uses no more tokens and is no less accurate, and is
    strictly better in one of the two. The names come back ordered by tokens.
    """
    front = [
        (tokens, name) for name, tokens, accuracy in points
        if not any(other_tokens <= tokens and other_accuracy >= accuracy
                   and (other_tokens < tokens or other_accuracy > accuracy)
                   for _, other_tokens, other_accuracy in points)
    ]
    return [name for _, name in sorted(front)]
