"""The harness's plots: accuracy against tokens for runs (report, tuning) and the
self-consistency curve (accuracy against total tokens as the samples per problem grow).

Interval arguments are 95% intervals as ``(low, high)``; they are drawn as error bars.
"""

from __future__ import annotations

import logging
from pathlib import Path

from benchmarks.plot_labels import place_labels

logger = logging.getLogger(__name__)

Interval = tuple[float, float]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _error_bar(value: float, interval: Interval | None, scale: float = 1.0) -> list[list[float]]:
    """matplotlib's asymmetric error ``[[below], [above]]`` of one point (0 without interval)."""
    if interval is None or None in interval:
        return [[0.0], [0.0]]
    return [[max(0.0, scale * (value - interval[0]))], [max(0.0, scale * (interval[1] - value))]]


def plot_accuracy_vs_tokens(points: list[tuple[str, float, float]], path: str | Path,
                            title: str = "Accuracy against mean completion tokens",
                            highlight: set[str] | None = None,
                            intervals: dict[str, dict[str, Interval | None]] | None = None) -> Path:
    """Scatter ``(name, mean tokens, accuracy in 0..1)`` points, each labelled, into a PNG.
    Labels are placed where they overlap no other label (:mod:`benchmarks.plot_labels`).

    Points named in ``highlight`` (e.g. a Pareto front) are drawn in a second colour and
    joined by a line in order of tokens. ``intervals`` maps a point's name to its
    ``{"tokens": (low, high), "accuracy": (low, high)}``, drawn as error bars.
    """
    plt = _pyplot()
    highlight, intervals = highlight or set(), intervals or {}
    figure, axes = plt.subplots(figsize=(7, 5), dpi=100)
    try:
        for name, tokens, accuracy in points:
            marked = name in highlight
            colour = "tab:red" if marked else "tab:blue"
            bars = intervals.get(name)
            if bars:
                axes.errorbar([tokens], [100 * accuracy],
                              xerr=_error_bar(tokens, bars.get("tokens")),
                              yerr=_error_bar(accuracy, bars.get("accuracy"), 100.0),
                              fmt="none", ecolor=colour, alpha=0.5, capsize=3, zorder=2)
            axes.scatter([tokens], [100 * accuracy], color=colour,
                         marker="*" if marked else "o", s=120 if marked else 50, zorder=3)
        front = sorted((tokens, accuracy) for name, tokens, accuracy in points if name in highlight)
        if len(front) > 1:
            axes.plot([t for t, _ in front], [100 * a for _, a in front], color="tab:red",
                      linestyle="--", zorder=2)
        axes.margins(0.15)
        axes.set_xlabel("mean completion tokens" + (" (95% intervals)" if intervals else ""))
        axes.set_ylabel("pass@1 (%)")
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        # Highlighted points are labelled first, so they get the places nearest their point.
        ordered = sorted(points, key=lambda point: point[0] not in highlight)
        place_labels(axes, [(name, tokens, 100 * accuracy) for name, tokens, accuracy in ordered])
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return Path(path)


def plot_self_consistency(series: dict[str, list[dict]], path: str | Path,
                          title: str = "Self-consistency: accuracy against total tokens") -> Path:
    """One line per series through its points ``{"k", "tokens", "tokens_interval",
    "majority_vote", "majority_vote_interval", "pass@k"}`` (accuracies in 0..1): the
    majority vote solid with error bars, pass@k dashed; each point labelled with its k."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 5), dpi=100)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    try:
        for (name, points), colour in zip(series.items(), colours * len(series)):
            tokens = [p["tokens"] for p in points]
            votes = [100 * p["majority_vote"] for p in points]
            axes.plot(tokens, votes, marker="o", color=colour, label=f"{name}: majority vote")
            axes.plot(tokens, [100 * p["pass@k"] for p in points], marker=".", color=colour,
                      linestyle="--", alpha=0.6, label=f"{name}: pass@k")
            for point, vote in zip(points, votes):
                axes.errorbar([point["tokens"]], [vote],
                              xerr=_error_bar(point["tokens"], point.get("tokens_interval")),
                              yerr=_error_bar(point["majority_vote"],
                                              point.get("majority_vote_interval"), 100.0),
                              fmt="none", ecolor=colour, alpha=0.4, capsize=3)
                axes.annotate(f"k={point['k']}", (point["tokens"], vote),
                              textcoords="offset points", xytext=(5, -12), fontsize=8)
        axes.margins(0.1)
        axes.set_xlabel("total completion tokens per problem (k samples; 95% intervals)")
        axes.set_ylabel("accuracy (%)")
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return Path(path)
