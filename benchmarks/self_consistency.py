"""Self-consistency over soft samples: k noisy soft-thinking samples per problem beside k
plain samples, the majority vote and pass@k as k grows; resumable.

    .venv/bin/python -m benchmarks.self_consistency --base-url http://127.0.0.1:30000/v1 \\
        --dataset gsm8k --limit 50 --k 8 --max-tokens 512 --out runs/self_consistency

Both series send ``--k`` samples of every problem with the same sampling options and seeds
(sample i: ``--seed`` + i; default seed 0). The soft series thinks with ``--soft-thinking``
and noise, Gumbel (tau 0.5) unless the settings name Gumbel or Dirichlet noise, so its
samples differ. A problem's first sample is sent alone and the others once it has
finished, so the server serves the prompt from its prefix cache (the run files record
``usage.cached_tokens``; the table gives the share). Run files: ``DIR/soft.jsonl`` and
``DIR/plain.jsonl``. For k = 1, 2, 4, ... up to ``--k``, each point uses the first k
samples of each problem: the majority vote of their answers, pass@k (one of them right)
and their total completion tokens, with 95% intervals (Wilson over problems for the rates,
a bootstrap resampling problems for tokens), and the soft-minus-plain difference paired by
problem (exact McNemar on the votes). Results: ``self_consistency.md``/``.json`` and
``self_consistency.png`` (accuracy against total tokens).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.metrics import dedupe
from benchmarks.paired import ProblemTotals, compare
from benchmarks.plots import plot_self_consistency
from benchmarks.report import load_run
from benchmarks.report_tables import markdown_table
from benchmarks.run import (add_dataset_args, add_request_args, add_server_args, check_run_args,
                            connect, load_dataset, open_run_file, run_cli, run_samples)
from benchmarks.server_process import ServerStartError
from benchmarks.settings import RunSettings, SettingsError, add_sampling_args, settings_from_args
from benchmarks.target_server import START_SERVER, check_target, split_server_args, target_server
from benchmarks.uncertainty import mean_interval, wilson_interval
from evaluation.problems import DatasetError
from evaluation.scoring import majority_vote
from sglang_soft_thinking.params import GumbelNoise, SoftThinkingParams

logger = logging.getLogger(__name__)

SERIES = ("soft", "plain")
METHOD_NOTE = (
    "Each point uses the first k samples of each problem (sample i sent with seed + i): the "
    "majority vote of their answers, pass@k (one of them right) and their total completion "
    "tokens. Rates: Wilson score interval over problems (one outcome per problem); tokens: "
    "percentile bootstrap resampling problems (2000 resamples, seed 0); soft minus plain: "
    "the same bootstrap with the same problems for both series, and the exact McNemar test "
    "on the votes. All intervals 95%.")


def ks_up_to(k: int) -> list[int]:
    """1, 2, 4, ... up to ``k``, and ``k`` itself."""
    ks = [2 ** i for i in range(k.bit_length()) if 2 ** i <= k]
    return ks if k in ks else ks + [k]


def first_samples(records: list[dict], k: int) -> dict[str, list[dict]]:
    """Per problem with at least ``k`` samples (repeat 0), its samples 0..k-1."""
    by_prompt: dict[str, dict[int, dict]] = {}
    for record in dedupe(records):
        if record.get("repeat", 0) == 0:
            by_prompt.setdefault(record["prompt_id"], {})[record["sample_index"]] = record
    return {prompt: [samples[i] for i in range(k)] for prompt, samples in by_prompt.items()
            if all(i in samples for i in range(k))}


def problem_point(samples: list[dict]) -> ProblemTotals:
    """One problem at one k: the vote (as one sample, right or wrong) and the total tokens."""
    _, is_right = majority_vote([(r.get("verdict") or {}).get("extracted") for r in samples],
                                [bool((r.get("verdict") or {}).get("correct")) for r in samples])
    tokens = sum((r.get("usage") or {}).get("completion_tokens") or 0 for r in samples)
    return ProblemTotals(1, int(is_right), float(tokens), 1)


def curve_point(by_prompt: dict[str, list[dict]], k: int) -> dict:
    """Majority vote, pass@k and total tokens over the problems' first k samples."""
    votes = [problem_point(samples) for samples in by_prompt.values()]
    hits = sum(any((r.get("verdict") or {}).get("correct") for r in samples)
               for samples in by_prompt.values())
    count = len(votes)
    right = sum(vote.num_correct for vote in votes)
    tokens = [vote.token_sum for vote in votes]
    return {"k": k, "num_problems": count,
            "majority_vote": right / count, "majority_vote_interval": wilson_interval(right, count),
            "pass@k": hits / count, "pass@k_interval": wilson_interval(hits, count),
            "tokens": sum(tokens) / count, "tokens_interval": mean_interval(tokens)}


def cached_share(records: list[dict]) -> float | None:
    """The share of prompt tokens served from the prefix cache, over every sample but each
    problem's first (``None`` when the server reported no cache counts)."""
    later = [r["usage"] for r in dedupe(records) if r.get("sample_index", 0) > 0
             and (r.get("usage") or {}).get("cached_tokens") is not None]
    prompt = sum(usage.get("prompt_tokens") or 0 for usage in later)
    return sum(usage["cached_tokens"] for usage in later) / prompt if prompt else None


def build_curves(runs: dict[str, list[dict]], k: int) -> dict:
    """Each series' points and, per k, the soft-minus-plain comparison paired by problem."""
    curves: dict = {"series": {}, "comparisons": [],
                    "cached_share": {name: cached_share(records) for name, records in runs.items()}}
    for size in ks_up_to(k):
        firsts = {name: first_samples(records, size) for name, records in runs.items()}
        shared = set.intersection(*(set(first) for first in firsts.values()))
        if not shared:
            continue
        for name, first in firsts.items():
            points = {prompt: samples for prompt, samples in first.items() if prompt in shared}
            curves["series"].setdefault(name, []).append(curve_point(points, size))
        totals = {name: {p: problem_point(s) for p, s in first.items() if p in shared}
                  for name, first in firsts.items()}
        row = compare("plain", totals["plain"], "soft", totals["soft"])
        curves["comparisons"].append({
            "k": size, "num_problems": row["num_problems"],
            "majority_vote_diff": row["pass@1_diff"],
            "majority_vote_interval": row["pass@1_interval"], "mcnemar": row["mcnemar"],
            "distinguishable": row["pass@1_distinguishable"],
            "tokens_diff": row["tokens_diff"], "tokens_interval": row["tokens_interval"],
            "tokens_distinguishable": row["tokens_distinguishable"]})
    return curves


def _rate(value: float, interval) -> str:
    return f"{100 * value:.1f}% [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def _diff(value: float | None, interval, scale: float, is_marked: bool) -> str:
    if value is None:
        return "-"
    return (f"{scale * value:+.1f} [{scale * interval[0]:+.1f}, {scale * interval[1]:+.1f}]"
            + (" *" if is_marked else ""))


def format_markdown(curves: dict) -> str:
    """The curve table, the paired differences, the prefix-cache share, the method."""
    cells = [["k", "series", "problems", "majority vote [95% CI]", "pass@k [95% CI]",
              "total tokens [95% CI]"]]
    for name, points in curves["series"].items():
        cells += [[str(p["k"]), name, str(p["num_problems"]),
                   _rate(p["majority_vote"], p["majority_vote_interval"]),
                   _rate(p["pass@k"], p["pass@k_interval"]),
                   f"{p['tokens']:.1f} [{p['tokens_interval'][0]:.1f}, "
                   f"{p['tokens_interval'][1]:.1f}]"] for p in points]
    diffs = [["k", "problems", "Δ majority vote (points) [95% CI]", "McNemar exact",
              "Δ total tokens [95% CI]"]]
    diffs += [[str(row["k"]), str(row["num_problems"]),
               _diff(row["majority_vote_diff"], row["majority_vote_interval"], 100,
                     row["distinguishable"]),
               "-" if row["mcnemar"] is None else f"p={row['mcnemar']['p_value']:.3g}",
               _diff(row["tokens_diff"], row["tokens_interval"], 1,
                     row["tokens_distinguishable"])] for row in curves["comparisons"]]
    shares = ", ".join(f"{name} {'-' if share is None else f'{100 * share:.0f}%'}"
                       for name, share in curves["cached_share"].items())
    lines = ["# Self-consistency: soft against plain sampling", ""] + markdown_table(cells)
    lines += ["", "## Soft minus plain, paired by problem (* distinguishable from 0 at 95%)", ""]
    lines += markdown_table(diffs)
    lines += ["", f"Prompt tokens served from the prefix cache, samples after each problem's "
                  f"first: {shares}.", "", METHOD_NOTE]
    return "\n".join(lines) + "\n"


def write_results(curves: dict, out: Path) -> list[Path]:
    markdown = out / "self_consistency.md"
    markdown.write_text(format_markdown(curves), encoding="utf-8")
    summary = out / "self_consistency.json"
    summary.write_text(json.dumps(curves, indent=2) + "\n", encoding="utf-8")
    plot = plot_self_consistency(curves["series"], out / "self_consistency.png")
    return [markdown, summary, plot]


def series_settings(settings: RunSettings, k: int) -> dict[str, RunSettings]:
    """The soft series (with noise: Gumbel unless the settings give one) and the plain one,
    each ``k`` samples per problem, seeded (seed 0 unless ``--seed``)."""
    if settings.temperature <= 0:
        raise SettingsError("--temperature must be > 0: self-consistency needs samples that differ")
    soft = settings.soft_thinking or SoftThinkingParams()
    if soft.noise is None:
        try:
            soft = soft.model_copy(update={"noise": GumbelNoise(type="gumbel")})
            soft = SoftThinkingParams.model_validate(soft.model_dump(mode="json"))
        except ValueError as error:
            raise SettingsError(f"--soft-thinking: noise does not fit these settings ({error})") from None
    seeded = replace(settings, num_samples=k, num_repeats=1,
                     seed=0 if settings.seed is None else settings.seed)
    return {"soft": seeded.with_soft_thinking(soft), "plain": seeded.with_soft_thinking(None)}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str] | None]:
    own, server_args = split_server_args(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.self_consistency",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(parser, base_url_required=False)
    add_dataset_args(parser)
    add_request_args(parser)
    parser.add_argument("--k", type=int, default=8, help="samples per problem (default 8)")
    parser.add_argument("--out", type=Path, required=True, help="the folder of runs and results")
    parser.add_argument(START_SERVER, action="store_true",
                        help="start python -m server with every option after this one "
                             "(it must come last), instead of --base-url")
    add_sampling_args(parser)
    args = parser.parse_args(own)
    check_run_args(parser, args)
    check_target(parser, args, server_args)
    if args.k < 1:
        parser.error("--k must be at least 1")
    if args.num_samples != 1 or args.repeats != 1:
        parser.error("use --k for the samples per problem (--num-samples and --repeats are "
                     "not used here)")
    return args, server_args


async def _main(args, per_series: dict[str, RunSettings], dataset) -> int:
    client, resolved = await connect(args, per_series["soft"])
    failures = 0
    for name in SERIES:
        settings = replace(per_series[name], model=resolved.model)
        run_file = open_run_file(args.out / f"{name}.jsonl", settings)
        logger.info("series %s: %d problems, %d samples each", name, len(dataset.problems),
                    settings.num_samples)
        failures += await run_samples(args, dataset, settings, run_file, client,
                                      prefix_first=True)
    if failures:
        print(f"{failures} samples failed after their retries; run the same command again",
              file=sys.stderr)
        return 1
    runs = {name: load_run(args.out / f"{name}.jsonl") for name in SERIES}
    written = write_results(build_curves(runs, args.k), args.out)
    print(written[0].read_text(encoding="utf-8"))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    args, server_args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    try:
        per_series = series_settings(settings_from_args(args, args.model or ""), args.k)
        dataset = load_dataset(args)
    except (SettingsError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with target_server(args, server_args, args.out) as base_url:
            args.base_url = base_url
            return run_cli(_main(args, per_series, dataset), args)
    except ServerStartError as error:
        print(f"error: the server did not start: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
