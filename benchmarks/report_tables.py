"""The report's tables as text and markdown: one column per run, then one table per paired
comparison (a row per run against the baseline)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable

Row = tuple[str, Callable[[dict], str]]
# The text tables fit a terminal this wide; a cell wider than CELL_WIDTH wraps.
TERMINAL_WIDTH = 120
CELL_WIDTH = 36
GAP = "  "


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _range(interval: dict | None, percent: bool) -> str:
    """An interval ``{"low", "high"}`` as ``low–high`` (percent points for rates)."""
    if not interval or interval.get("low") is None:
        return "-"
    scale, suffix = (100, "%") if percent else (1, "")
    return f"{scale * interval['low']:.1f}–{scale * interval['high']:.1f}{suffix}"


def _signed(value: float | None, interval: list[float] | None, scale: float,
            is_marked: bool) -> str:
    """A difference with its interval, e.g. ``+4.0 [-1.2, +9.1] *``."""
    if value is None:
        return "-"
    text = f"{scale * value:+.1f}"
    if interval is not None:
        text += f" [{scale * interval[0]:+.1f}, {scale * interval[1]:+.1f}]"
    return text + (" *" if is_marked else "")


def _judge(counts: dict | None) -> str:
    """Samples the LLM judge passed after math-verify rejected them, of those it was asked."""
    if counts is None:
        return "-"
    text = f"{counts['changed']} of {counts['asked']} asked"
    return text + (f" ({counts['failed']} failed)" if counts["failed"] else "")


def _latency(key: str, stat: str) -> Callable[[dict], str]:
    return lambda run: _number((run["summary"][key] or {}).get(stat), 3)


def _interval(key: str, percent: bool = True) -> Callable[[dict], str]:
    return lambda run: _range(run["summary"]["intervals"].get(key), percent)


def _repeats(summary: dict) -> str:
    """pass@1 across repeats: mean, sd and range, e.g. ``41.0% sd 2.1 (38.0–43.0%) of 3``."""
    spread = summary.get("repeats")
    if not spread:
        return "-"
    sd = "-" if spread["sd"] is None else f"{100 * spread['sd']:.1f}"
    return (f"{_percent(spread['mean'])} sd {sd} "
            f"({_range({'low': spread['min'], 'high': spread['max']}, True)}) of {spread['count']}")


def _accuracy_rows(report: dict) -> list[Row]:
    """pass@1, pass@k, majority vote, each followed by its interval; repeats and the
    rule-based pass@1 only where some run has them."""
    summaries = [run["summary"] for run in report["runs"]]
    ks = sorted({int(k) for summary in summaries for k in summary["pass@k"]} - {1})
    rows: list[Row] = [("pass@1", lambda run: _percent(run["summary"]["pass@1"])),
                       ("pass@1 95% CI", _interval("pass@1")),
                       ("interval method", lambda run: str(
                           run["summary"]["intervals"]["pass@1"].get("method") or "-"))]
    if any(summary.get("repeats") for summary in summaries):
        rows.append(("pass@1 across repeats", lambda run: _repeats(run["summary"])))
    if any(summary.get("pass@1_rule_based") is not None for summary in summaries):
        rows.append(("pass@1 without judge",
                     lambda run: _percent(run["summary"].get("pass@1_rule_based"))))
    for k in ks:
        rows += [(f"pass@{k}", lambda run, k=k: _percent(run["summary"]["pass@k"].get(str(k)))),
                 (f"pass@{k} 95% CI", lambda run, k=k: _range(
                     run["summary"]["intervals"]["pass@k"].get(str(k)), True))]
    rows += [("majority vote", lambda run: _percent(run["summary"]["majority_vote"])),
             ("majority vote 95% CI", _interval("majority_vote"))]
    return rows


def run_rows(report: dict) -> list[Row]:
    """(label, cell function) per row of the runs' table."""
    rows: list[Row] = [
        ("method", lambda run: run["settings"]["method"]),
        ("prompts", lambda run: str(run["summary"]["num_prompts"])),
        ("samples", lambda run: str(run["summary"]["num_samples"])),
    ]
    if any(run["summary"].get("num_repeats", 1) > 1 for run in report["runs"]):
        rows.append(("repeats", lambda run: str(run["summary"].get("num_repeats", 1))))
    rows += _accuracy_rows(report)
    rows += [
        ("mean tokens", lambda run: _number(run["summary"]["mean_completion_tokens"])),
        ("mean tokens 95% CI", _interval("mean_completion_tokens", percent=False)),
        ("mean tokens (correct)", lambda run: _number(run["summary"]["mean_completion_tokens_correct"])),
        ("thinking tokens", lambda run: _number(run["summary"]["mean_thinking_tokens"])),
        ("Cold Stop rate", lambda run: _percent(run["summary"]["cold_stop_rate"])),
    ]
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "e2e")):
        rows += [(f"{label} p50 (s)", _latency(key, "p50")), (f"{label} p99 (s)", _latency(key, "p99"))]
    rows += [
        ("output tok/s", lambda run: _number(run["summary"]["output_tokens_per_s"])),
        ("judge changed", lambda run: _judge(run["summary"].get("judge"))),
        ("soft thinking changes", lambda run: run["settings"].get(
            "soft_thinking_changes", run["settings"]["soft_thinking"])),
        ("SoftCoT", lambda run: run["settings"]["softcot"]),
    ]
    return rows


def table_cells(report: dict) -> list[list[str]]:
    """The runs' table as rows of strings, a header row first (``metric``, then the runs)."""
    header = ["metric"] + [run["name"] for run in report["runs"]]
    return [header] + [[label] + [cell(run) for run in report["runs"]]
                       for label, cell in run_rows(report)]


def _mcnemar(test: dict | None) -> str:
    if test is None:
        return "-"
    return f"p={test['p_value']:.3g} (b={test['baseline_only']}, c={test['other_only']})"


def comparison_cells(comparison: dict) -> list[list[str]]:
    """One paired comparison: a header row, then a row per run against the baseline."""
    header = ["run", "problems", "Δ pass@1 (points) [95% CI]", "McNemar exact",
              "Δ mean tokens [95% CI]"]
    rows = [[row["run"], str(row["num_problems"]),
             _signed(row["pass@1_diff"], row["pass@1_interval"], 100, row["pass@1_distinguishable"]),
             _mcnemar(row["mcnemar"]),
             _signed(row["tokens_diff"], row["tokens_interval"], 1, row["tokens_distinguishable"])]
            for row in comparison["rows"]]
    return [header] + rows


def comparison_verdict(comparison: dict) -> str:
    """One sentence on what a paired comparison shows at 95%, so that a report of runs that
    cannot be told apart says so in words, not only by the absence of a mark."""
    baseline = comparison["baseline"]
    rows = comparison["rows"]
    accuracy = [row["run"] for row in rows if row["pass@1_distinguishable"]]
    tokens = [row["run"] for row in rows if row["tokens_distinguishable"]]
    if accuracy:
        said = f"pass@1 differs from `{baseline}` at 95% for {', '.join(accuracy)}."
    else:
        said = (f"No run's pass@1 is distinguishable from `{baseline}` at 95%: on these "
                f"problems the accuracy differences above are within noise.")
    if tokens:
        said += f" Mean tokens differ from `{baseline}` at 95% for {', '.join(tokens)}."
    else:
        said += f" No run's mean tokens are distinguishable from `{baseline}` at 95%."
    return said


def _wrapped(text: str, width: int) -> list[str]:
    """A cell's lines, broken at spaces where it can (``-`` never breaks a cell)."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _block(cells: list[list[str]], widths: list[int]) -> list[str]:
    """Rows padded to ``widths``, a wrapped cell taking as many lines as it needs; a rule
    under the header."""
    lines = []
    for index, row in enumerate(cells):
        pieces = [_wrapped(text, width) for text, width in zip(row, widths)]
        for line in range(max(len(piece) for piece in pieces)):
            lines.append(GAP.join((piece[line] if line < len(piece) else "").ljust(width)
                                  for piece, width in zip(pieces, widths)).rstrip())
        if index == 0:
            lines.append(GAP.join("-" * width for width in widths))
    return lines


def _groups(widths: list[int], width: int, most: int) -> list[list[int]]:
    """The columns after the first in blocks of at most ``most``, each block with the first
    column within ``width`` (a column too wide for any block gets one of its own)."""
    groups: list[list[int]] = []
    for column in range(1, len(widths)):
        group = groups[-1] if groups else None
        if (group is None or len(group) == most
                or sum(widths[c] + len(GAP) for c in [0, *group, column]) - len(GAP) > width):
            groups.append([column])
        else:
            group.append(column)
    return groups or [[]]


def text_table(cells: list[list[str]], width: int = TERMINAL_WIDTH) -> str:
    """Plain text within ``width`` columns. A cell longer than :data:`CELL_WIDTH` wraps
    onto more lines; columns that still do not fit beside the others go to further blocks
    below, each repeating the first column (the row names), the columns spread evenly
    over as few blocks as fit."""
    count = len(cells[0])
    widths = [min(CELL_WIDTH, max(len(row[column]) for row in cells)) for column in range(count)]
    groups = _groups(widths, width, count)
    balanced = _groups(widths, width, math.ceil((count - 1) / len(groups)))
    if len(balanced) == len(groups):
        groups = balanced
    return "\n\n".join(
        "\n".join(_block([[row[column] for column in (0, *group)] for row in cells],
                         [widths[column] for column in (0, *group)]))
        for group in groups)


def markdown_table(cells: list[list[str]]) -> list[str]:
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(escape(text) for text in cells[0]) + " |",
             "|" + "---|" * len(cells[0])]
    return lines + ["| " + " | ".join(escape(text) for text in row) + " |" for row in cells[1:]]


def format_table(report: dict) -> str:
    """The runs' table, then each paired comparison, as plain text within
    :data:`TERMINAL_WIDTH` columns."""
    parts = [text_table(table_cells(report))]
    for comparison in report.get("comparisons", []):
        parts.append(f"Paired against {comparison['baseline']} (* distinguishable from 0 at 95%):\n"
                     + text_table(comparison_cells(comparison)) + "\n"
                     + textwrap.fill(comparison_verdict(comparison), TERMINAL_WIDTH))
    return "\n\n".join(parts)


def format_markdown(report: dict) -> str:
    """A markdown page: the runs' table, the paired comparisons, how intervals are made,
    then the run files."""
    lines = ["# Benchmark report", ""] + markdown_table(table_cells(report))
    for comparison in report.get("comparisons", []):
        lines += ["", f"## Paired against `{comparison['baseline']}`", ""]
        lines += markdown_table(comparison_cells(comparison))
        lines += ["", comparison_verdict(comparison)]
    if report.get("methods"):
        lines += ["", report["methods"]]
    lines += ["", "Runs:", ""] + [f"- `{run['name']}`: `{run['path']}`" for run in report["runs"]]
    return "\n".join(lines) + "\n"
