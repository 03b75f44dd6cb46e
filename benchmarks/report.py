"""Compare benchmark runs side by side: a table, ``report.md``, ``report.json`` and a plot.

    .venv/bin/python -m benchmarks.report RUN.jsonl [RUN2.jsonl ...] [--out-dir DIR] [--name NAME ...]

Each run file holds the records ``benchmarks/run.py`` writes, one JSON object per line.
Each run is summarised by :func:`benchmarks.metrics.summarize`; the table has one column
per run. The plot puts each run at (mean completion tokens, pass@1). Files go to
``--out-dir``, by default the folder of the first run file. A missing file or a
malformed line is an error naming the file and line (exit status 2).

:func:`build_report`, :func:`write_report` and :func:`plot_accuracy_vs_tokens` are
reused by the tuning command.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.metrics import summarize

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("prompt_id", "sample_index", "verdict")


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
    distinct = {json.dumps(settings, sort_keys=True)
                for record in records
                if (settings := (record.get("request") or {}).get(field))}
    if not distinct:
        return "off"
    if len(distinct) > 1:
        return f"mixed ({len(distinct)} settings)"
    settings = json.loads(distinct.pop())
    return " ".join(f"{key}={json.dumps(value, separators=(',', ':'))}"
                    for key, value in settings.items() if key != "enabled")


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


def build_report(paths: list[str | Path], names: list[str] | None = None) -> dict:
    """Load and summarise each run: ``{"runs": [{"name", "path", "summary", "settings"}]}``."""
    paths = [Path(path) for path in paths]
    if names is not None and len(names) != len(paths):
        raise ReportError(f"got {len(names)} --name values for {len(paths)} run files")
    names = names if names is not None else _default_names(paths)
    runs = []
    for name, path in zip(names, paths):
        records = load_run(path)
        runs.append({"name": name, "path": str(path), "summary": summarize(records),
                     "settings": {"method": method_summary(records),
                                  "soft_thinking": settings_summary(records, "soft_thinking"),
                                  "softcot": settings_summary(records, "softcot")}})
    return {"runs": runs}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _judge(counts: dict | None) -> str:
    """Samples the LLM judge passed after math-verify rejected them, of those it was asked."""
    if counts is None:
        return "-"
    text = f"{counts['changed']} of {counts['asked']} asked"
    return text + (f" ({counts['failed']} failed)" if counts["failed"] else "")


def _latency(key: str, stat: str) -> Callable[[dict], str]:
    return lambda run: _number((run["summary"][key] or {}).get(stat), 3)


def _rows(report: dict) -> list[tuple[str, Callable[[dict], str]]]:
    """(label, cell function) per table row; pass@k rows for every k any run has beyond 1."""
    ks = sorted({int(k) for run in report["runs"] for k in run["summary"]["pass@k"]} - {1})
    rows: list[tuple[str, Callable[[dict], str]]] = [
        ("method", lambda run: run["settings"]["method"]),
        ("prompts", lambda run: str(run["summary"]["num_prompts"])),
        ("samples", lambda run: str(run["summary"]["num_samples"])),
        ("pass@1", lambda run: _percent(run["summary"]["pass@1"])),
    ]
    rows += [(f"pass@{k}", lambda run, k=k: _percent(run["summary"]["pass@k"].get(str(k))))
             for k in ks]
    rows += [
        ("majority vote", lambda run: _percent(run["summary"]["majority_vote"])),
        ("mean tokens", lambda run: _number(run["summary"]["mean_completion_tokens"])),
        ("mean tokens (correct)", lambda run: _number(run["summary"]["mean_completion_tokens_correct"])),
        ("thinking tokens", lambda run: _number(run["summary"]["mean_thinking_tokens"])),
        ("Cold Stop rate", lambda run: _percent(run["summary"]["cold_stop_rate"])),
    ]
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "e2e")):
        rows += [(f"{label} p50 (s)", _latency(key, "p50")), (f"{label} p99 (s)", _latency(key, "p99"))]
    rows += [
        ("output tok/s", lambda run: _number(run["summary"]["output_tokens_per_s"])),
        ("judge changed", lambda run: _judge(run["summary"].get("judge"))),
        ("soft thinking", lambda run: run["settings"]["soft_thinking"]),
        ("SoftCoT", lambda run: run["settings"]["softcot"]),
    ]
    return rows


def table_cells(report: dict) -> list[list[str]]:
    """The table as rows of strings, a header row first (``metric``, then the run names)."""
    header = ["metric"] + [run["name"] for run in report["runs"]]
    return [header] + [[label] + [cell(run) for run in report["runs"]]
                       for label, cell in _rows(report)]


def format_table(report: dict) -> str:
    """Plain text, columns padded to their widest cell."""
    cells = table_cells(report)
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_markdown(report: dict) -> str:
    """A markdown page: the table, then the run files."""
    cells = table_cells(report)
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["# Benchmark report", ""]
    lines.append("| " + " | ".join(escape(text) for text in cells[0]) + " |")
    lines.append("|" + "---|" * len(cells[0]))
    lines += ["| " + " | ".join(escape(text) for text in row) + " |" for row in cells[1:]]
    lines += ["", "Runs:", ""] + [f"- `{run['name']}`: `{run['path']}`" for run in report["runs"]]
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_tokens(points: list[tuple[str, float, float]], path: str | Path,
                            title: str = "Accuracy against mean completion tokens",
                            highlight: set[str] | None = None) -> Path:
    """Scatter ``(name, mean tokens, accuracy in 0..1)`` points, each labelled, into a PNG.

    Points named in ``highlight`` (e.g. a Pareto front) are drawn in a second colour and
    joined by a line in order of tokens.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    highlight = highlight or set()
    figure, axes = plt.subplots(figsize=(7, 5), dpi=100)
    try:
        for name, tokens, accuracy in points:
            marked = name in highlight
            axes.scatter([tokens], [100 * accuracy], color="tab:red" if marked else "tab:blue",
                         marker="*" if marked else "o", s=120 if marked else 50, zorder=3)
            axes.annotate(name, (tokens, 100 * accuracy), textcoords="offset points",
                          xytext=(5, 5), fontsize=8)
        front = sorted((tokens, accuracy) for name, tokens, accuracy in points if name in highlight)
        if len(front) > 1:
            axes.plot([t for t, _ in front], [100 * a for _, a in front], color="tab:red",
                      linestyle="--", zorder=2)
        axes.margins(0.15)
        axes.set_xlabel("mean completion tokens")
        axes.set_ylabel("pass@1 (%)")
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return Path(path)


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """Write ``report.md``, ``report.json`` and ``accuracy_vs_tokens.png``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "report.md"
    markdown.write_text(format_markdown(report), encoding="utf-8")
    summary_json = out_dir / "report.json"
    summary_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    points = [(run["name"], run["summary"]["mean_completion_tokens"], run["summary"]["pass@1"])
              for run in report["runs"]
              if run["summary"]["mean_completion_tokens"] is not None
              and run["summary"]["pass@1"] is not None]
    plot = plot_accuracy_vs_tokens(points, out_dir / "accuracy_vs_tokens.png")
    return [markdown, summary_json, plot]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run files (JSON Lines from benchmarks.run)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write report.md/json/png (default: the first run's folder)")
    parser.add_argument("--name", action="append", default=None,
                        help="a column name per run, in order (repeat once per run file)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = build_report(args.runs, args.name)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = write_report(report, args.out_dir or args.runs[0].parent)
    print(format_table(report))
    print()
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
