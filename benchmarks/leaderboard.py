"""The tuning result: a leaderboard of trials, their Pareto front, the recommendation.

Each row summarises one trial's run file with ``benchmarks.metrics.summarize``. Trials are
ranked by pass@1, then by fewer mean completion tokens; the Pareto front holds the trials
no other trial beats on both accuracy and tokens. The recommendation is the best-ranked
soft-thinking trial that ran on every problem (successive halving drops some early).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sglang_soft_thinking.params import SoftThinkingParams

from benchmarks.metrics import pareto_front, summarize
from benchmarks.plots import plot_accuracy_vs_tokens
from benchmarks.search_space import write_params_file

BASELINE_ID = "baseline"
RECOMMENDED_FILE = "recommended_soft_thinking.json"


@dataclass
class TrialResult:
    trial_id: str
    label: str
    params: SoftThinkingParams | None      # None: the soft-thinking-off baseline
    records: list[dict]
    num_problems: int                      # problems this trial was asked to cover

    def row(self) -> dict:
        summary = summarize(self.records) if self.records else {}
        return {"trial": self.trial_id, "label": self.label,
                "soft_thinking": None if self.params is None else self.params.model_dump(mode="json"),
                "problems": self.num_problems, "samples": len(self.records),
                "pass@1": summary.get("pass@1"),
                "mean_completion_tokens": summary.get("mean_completion_tokens"),
                "mean_thinking_tokens": summary.get("mean_thinking_tokens"),
                "cold_stop_rate": summary.get("cold_stop_rate"),
                "output_tokens_per_s": summary.get("output_tokens_per_s")}


def rank(rows: list[dict]) -> list[dict]:
    """Most problems first (fully evaluated trials lead), then accuracy, then fewer tokens."""
    def key(row: dict):
        return (-row["problems"], -(row["pass@1"] or 0.0),
                row["mean_completion_tokens"] or float("inf"))
    return sorted((row for row in rows if row["samples"]), key=key)


def recommend(rows: list[dict], full_size: int) -> dict | None:
    """The best-ranked soft-thinking trial evaluated on all problems."""
    candidates = [row for row in rank(rows)
                  if row["soft_thinking"] is not None and row["problems"] == full_size]
    return candidates[0] if candidates else None


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict], front: set[str], recommended: dict | None) -> str:
    lines = ["| rank | trial | settings | problems | pass@1 | mean tokens | thinking tokens "
             "| Cold Stop rate | tok/s | Pareto |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for position, row in enumerate(rows, start=1):
        lines.append(
            f"| {position} | {row['trial']} | {row['label']} | {row['problems']} "
            f"| {_fmt(row['pass@1'])} | {_fmt(row['mean_completion_tokens'], 1)} "
            f"| {_fmt(row['mean_thinking_tokens'], 1)} | {_fmt(row['cold_stop_rate'])} "
            f"| {_fmt(row['output_tokens_per_s'], 1)} | {'yes' if row['trial'] in front else ''} |")
    if recommended is not None:
        lines += ["", f"Recommended: `{recommended['trial']}` ({recommended['label']}), "
                  f"written to `{RECOMMENDED_FILE}`."]
    return "\n".join(lines) + "\n"


def write_leaderboard(results: list[TrialResult], out_dir: Path, full_size: int) -> dict:
    """Write leaderboard.md/.json, pareto.png and the recommended parameters file."""
    rows = rank([result.row() for result in results])
    front = set(pareto_front([(row["trial"], row["mean_completion_tokens"], row["pass@1"])
                              for row in rows if row["problems"] == full_size]))
    recommended = recommend(rows, full_size)
    (out_dir / "leaderboard.md").write_text(markdown(rows, front, recommended), encoding="utf-8")
    summary = {"rows": rows, "pareto": sorted(front),
               "recommended": None if recommended is None else recommended["trial"]}
    (out_dir / "leaderboard.json").write_text(json.dumps(summary, indent=2) + "\n",
                                              encoding="utf-8")
    full_rows = [row for row in rows if row["problems"] == full_size]
    # Points carry the short trial ids; leaderboard.md maps each id to its settings.
    plot_accuracy_vs_tokens(
        [(row["trial"], row["mean_completion_tokens"], row["pass@1"]) for row in full_rows],
        out_dir / "pareto.png", title="Tuning: pass@1 against mean completion tokens",
        highlight={row["trial"] for row in full_rows if row["trial"] in front})
    if recommended is not None:
        write_params_file(SoftThinkingParams.model_validate(recommended["soft_thinking"]),
                          out_dir / RECOMMENDED_FILE)
    return summary
