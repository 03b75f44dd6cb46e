"""Compare benchmark runs side by side: a table, ``report.md``, ``report.json`` and a plot.

    .venv/bin/python -m benchmarks.report RUN.jsonl [RUN2.jsonl ...] [--out-dir DIR] [--name NAME ...]
        [--baseline NAME_OR_INDEX] [--unpaired]

Each run file holds the records ``benchmarks/run.py`` writes, one JSON object per line.
Each run is summarised by :func:`benchmarks.metrics.summarize`; the table has one column
per run, every accuracy figure and the mean tokens with its 95% interval over problems.
With two or more runs, each run is compared with a baseline run (``--baseline``, by default
the first) problem by problem (:mod:`benchmarks.paired`); runs on different problems are
refused for that (exit status 2) unless ``--unpaired``. The plot puts each run at (mean
completion tokens, pass@1) with its intervals as error bars. Files go to ``--out-dir``, by
default the folder of the first run file. A missing file or a malformed line is an error
naming the file and line (exit status 2).

:func:`build_report` and :func:`write_report` are reused by the tuning and ablation commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from benchmarks.metrics import dedupe, summarize
from benchmarks.paired import PairingError, compare, problem_totals
from benchmarks.plots import plot_accuracy_vs_tokens
from benchmarks.report_settings import as_assignments, describe_changes, distinct_settings
from benchmarks.report_tables import format_markdown, format_table, table_cells

__all__ = ["PairingError", "ReportError", "build_report", "format_markdown", "format_table",
           "load_run", "plot_accuracy_vs_tokens", "table_cells", "write_report"]

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("prompt_id", "sample_index", "verdict")
METHODS_NOTE = (
    "Intervals are 95%, over problems. pass@1 and the majority vote: the Wilson score "
    "interval when each problem gives one yes/no outcome (one sample per problem; one vote "
    "per problem), otherwise a percentile bootstrap that resamples problems (2000 resamples, "
    "seed 0), so the samples of one problem move together; pass@k and mean tokens use that "
    "bootstrap too. Paired differences (run minus baseline): the same bootstrap, the same "
    "problems drawn for both runs; runs with one sample per problem also get the exact "
    "McNemar test (b: problems only the baseline got right, c: only the run). * marks a "
    "difference distinguishable from zero at 95%: McNemar p < 0.05 for single-sample pass@1, "
    "otherwise an interval that excludes 0.")


class ReportError(ValueError):
    """A run file that cannot be read; the message names the file and line."""


def load_run(path: Path) -> list[dict]:
    """The records of one run file (blank lines skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ReportError(f"{path}: cannot read run file ({error.strerror or error})") from error
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReportError(f"{path}:{number}: not valid JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise ReportError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        missing = [key for key in REQUIRED_KEYS if key not in record]
        if missing:
            raise ReportError(f"{path}:{number}: record lacks {', '.join(missing)}")
        if not isinstance(record["verdict"], dict) or "correct" not in record["verdict"]:
            raise ReportError(f"{path}:{number}: verdict must be an object with 'correct'")
        records.append(record)
    if not records:
        raise ReportError(f"{path}: no records")
    return records


def settings_summary(records: list[dict], field: str) -> str:
    """One line describing ``request[field]`` across a run: "off", its settings, or "mixed"."""
    distinct = distinct_settings(records, field)
    if not distinct:
        return "off"
    if len(distinct) > 1:
        return f"mixed ({len(distinct)} settings)"
    settings = json.loads(json.dumps(distinct[0], sort_keys=True))  # keys in a stable order
    return as_assignments({key: value for key, value in settings.items() if key != "enabled"})


def method_summary(records: list[dict]) -> str:
    """The thinking method of a run: ``plain`` without soft thinking, else the method (or "mixed")."""
    methods = {(settings.get("method") or "concept") if (settings := (record.get("request") or {})
                                                          .get("soft_thinking")) else "plain"
               for record in records}
    return methods.pop() if len(methods) == 1 else "mixed"


def _default_names(paths: list[Path]) -> list[str]:
    """File stems; the parent folder is added where two stems collide."""
    stems = [path.stem for path in paths]
    return [f"{path.parent.name}/{path.stem}" if stems.count(path.stem) > 1 else path.stem
            for path in paths]


def resolve_baseline(names: list[str], value: str | int) -> int:
    """The position of the baseline run given by its name or its position (0: the first)."""
    if isinstance(value, str) and value in names:
        return names.index(value)
    try:
        position = int(value)
    except ValueError:
        position = None
    if position is None or not 0 <= position < len(names):
        raise ReportError(f"--baseline {value!r} is neither a run name nor a position "
                          f"0..{len(names) - 1}; the runs are: {', '.join(names)}")
    return position


def build_report(paths: list[str | Path], names: list[str] | None = None,
                 baselines: list[str | int] = (0,), paired: bool = True) -> dict:
    """Load and summarise each run: ``{"runs": [{"name", "path", "summary", "settings"}],
    "comparisons": [{"baseline", "rows"}]}``, one comparison per baseline (when ``paired``
    and there are two runs or more). A run's ``settings`` hold its soft-thinking settings
    whole (``soft_thinking``) and as the table shows them, only the parameters of its
    method that differ from the default (``soft_thinking_changes``). Raises
    :class:`PairingError` for runs on different problems."""
    paths = [Path(path) for path in paths]
    if names is not None and len(names) != len(paths):
        raise ReportError(f"got {len(names)} --name values for {len(paths)} run files")
    names = names if names is not None else _default_names(paths)
    runs, totals = [], []
    for name, path in zip(names, paths):
        records = load_run(path)
        totals.append(problem_totals(dedupe(records)))
        runs.append({"name": name, "path": str(path), "summary": summarize(records),
                     "settings": {"method": method_summary(records),
                                  "soft_thinking": settings_summary(records, "soft_thinking"),
                                  "soft_thinking_changes": describe_changes(records),
                                  "softcot": settings_summary(records, "softcot")}})
    comparisons = []
    if paired and len(runs) > 1:
        for position in dict.fromkeys(resolve_baseline(names, b) for b in baselines):
            comparisons.append({"baseline": names[position], "rows": [
                compare(names[position], totals[position], name, totals[index])
                for index, name in enumerate(names) if index != position]})
    return {"runs": runs, "comparisons": comparisons, "methods": METHODS_NOTE}


def _bounds(interval: dict | None) -> tuple[float, float] | None:
    if not interval or interval.get("low") is None:
        return None
    return interval["low"], interval["high"]


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """Write ``report.md``, ``report.json`` and ``accuracy_vs_tokens.png``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "report.md"
    markdown.write_text(format_markdown(report), encoding="utf-8")
    summary_json = out_dir / "report.json"
    summary_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    points, intervals = [], {}
    for run in report["runs"]:
        summary = run["summary"]
        if summary["mean_completion_tokens"] is None or summary["pass@1"] is None:
            continue
        points.append((run["name"], summary["mean_completion_tokens"], summary["pass@1"]))
        bounds = summary.get("intervals") or {}
        intervals[run["name"]] = {
            "tokens": _bounds(bounds.get("mean_completion_tokens")),
            "accuracy": _bounds(bounds.get("pass@1"))}
    plot = plot_accuracy_vs_tokens(points, out_dir / "accuracy_vs_tokens.png",
                                   intervals=intervals)
    return [markdown, summary_json, plot]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run files (JSON Lines from benchmarks.run)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write report.md/json/png (default: the first run's folder)")
    parser.add_argument("--name", action="append", default=None,
                        help="a column name per run, in order (repeat once per run file)")
    parser.add_argument("--baseline", default="0", metavar="NAME_OR_INDEX",
                        help="the run the others are compared with, problem by problem: its "
                             "name or its position (0, the default, is the first run)")
    parser.add_argument("--unpaired", action="store_true",
                        help="no paired comparison (for runs on different problems)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = build_report(args.runs, args.name, [args.baseline], paired=not args.unpaired)
    except (ReportError, PairingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out_dir = args.out_dir or args.runs[0].parent
    written = write_report(report, out_dir)
    print(format_table(report))
    print()
    # The folder on a line of its own, so that a long path does not widen the other lines.
    print("wrote " + ", ".join(path.name for path in written) + f" in:\n{out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
