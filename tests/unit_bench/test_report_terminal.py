"""The report in a terminal and in its plot: the committed ablation's report fits 120
columns and names only the settings a run changed; the plot's run labels never overlap."""

import itertools
import json
from pathlib import Path

import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Text

from benchmarks.report import build_report, main, write_report

REPO_ROOT = Path(__file__).resolve().parents[2]
ABLATION = REPO_ROOT / "benchmarks" / "results" / "gsm8k100_ablation_cpu"


def ablation_runs() -> list[Path]:
    """The committed ablation's run files, in its ladder's order."""
    ladder = json.loads((ABLATION / "ladder.json").read_text())
    return [ABLATION / f"{rung['name']}.jsonl" for rung in ladder["rungs"]]


def test_the_committed_ablation_report_fits_120_columns_and_lists_only_changes(tmp_path, capsys):
    runs = ablation_runs()
    assert len(runs) >= 5
    assert main([str(path) for path in runs] + ["--out-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    widths = [len(line) for line in printed.splitlines()]
    assert max(widths) <= 120, f"widest line {max(widths)} columns"
    # The ablation sent {"max_topk": 10, "max_thinking_tokens": 256}: 10 is max_topk's default.
    assert "max_thinking_tokens=256" in printed
    assert 'noise.type="gumbel"' in printed  # concept_gumbel's own noise
    for default in ("max_topk=", "min_p=", "think_end_str=", "after_thinking", "window_size=",
                    "beta=", "return_trace="):
        assert default not in printed
    # Every run is in the table, under its own name.
    for path in runs:
        assert path.stem in printed
    # The whole settings stay in report.json.
    report = json.loads((tmp_path / "report.json").read_text())
    switch = next(run for run in report["runs"] if run["name"] == "switch")
    assert "window_size=512" in switch["settings"]["soft_thinking"]
    assert switch["settings"]["soft_thinking_changes"] == "max_thinking_tokens=256"


def test_a_run_lists_its_own_methods_changes_not_other_methods():
    from benchmarks.report_settings import changed_settings

    defaults = {"enabled": True, "method": "switch", "window_size": 64, "tau": 0.3,
                "after_thinking": {"temperature": 0.6, "top_p": 0.9, "top_k": 30, "min_p": 0.0},
                "max_topk": 10, "noise": None, "unknown_field": 1}
    # window_size is switch's and changed; tau is think_router's; after_thinking.top_p changed;
    # a field the plugin does not know is always listed.
    assert changed_settings(defaults) == {"window_size": 64, "after_thinking.top_p": 0.9,
                                          "unknown_field": 1}
    assert changed_settings({**defaults, "method": "think_router"}) == {
        "tau": 0.3, "after_thinking.top_p": 0.9, "unknown_field": 1}


def label_boxes(figure: Figure, names: set[str]):
    """The display boxes of the figure's texts that are run labels, as drawn (the text
    alone: a label's line to its point may cross others)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return [(text.get_text(), Text.get_window_extent(text, renderer))
            for axes in figure.axes for text in axes.texts if text.get_text() in names]


def point_positions(figure: Figure):
    """Where the scatter points are drawn, in display coordinates."""
    return [xy for axes in figure.axes for collection in axes.collections
            if isinstance(collection, PathCollection)
            for xy in axes.transData.transform(collection.get_offsets())]


@pytest.fixture
def saved_label_boxes(monkeypatch):
    """Every figure saved records the boxes of its run labels, measured by matplotlib's own
    renderer just before it is written."""
    seen = {}
    save = Figure.savefig

    def recording(figure, path, *args, **kwargs):
        seen[Path(path).name] = (point_positions(figure), label_boxes(figure, seen["names"]),
                                 figure.bbox.frozen())
        return save(figure, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording)
    return seen


def assert_apart(points, boxes, figure_box, names):
    assert sorted(name for name, _ in boxes) == sorted(names), "every run is labelled"
    for (first, a), (second, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), f"labels {first!r} and {second!r} overlap"
    for name, box in boxes:
        assert figure_box.contains(box.x0, box.y0) and figure_box.contains(box.x1, box.y1), name
        assert not any(box.contains(x, y) for x, y in points), f"label {name!r} covers a point"


def test_the_ablation_plot_labels_do_not_overlap(tmp_path, saved_label_boxes):
    runs = ablation_runs()
    names = [path.stem for path in runs]
    saved_label_boxes["names"] = set(names)
    report = build_report(runs, names, ["plain", "discrete"])
    write_report(report, tmp_path)
    points, boxes, figure_box = saved_label_boxes["accuracy_vs_tokens.png"]
    assert len(points) == len(names)
    assert_apart(points, boxes, figure_box, names)


def test_labels_of_points_on_top_of_each_other_do_not_overlap(tmp_path, saved_label_boxes):
    from benchmarks.plots import plot_accuracy_vs_tokens

    names = [f"run_{i}_{'x' * i}" for i in range(10)]
    saved_label_boxes["names"] = set(names)
    points = [(name, 250.0 + (i % 3), 0.02) for i, name in enumerate(names)]
    plot_accuracy_vs_tokens(points + [("far", 400.0, 0.5)], tmp_path / "crowded.png",
                            highlight={names[0]})
    points, boxes, figure_box = saved_label_boxes["crowded.png"]
    assert_apart(points, boxes, figure_box, names)
