"""The report command (benchmarks/report.py): table, md/json/png files, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import ReportError, build_report, main, plot_accuracy_vs_tokens

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SOFT = {"enabled": True, "max_topk": 7, "min_p": 0.001, "noise": {"type": "gumbel", "temperature": 0.5}}


def write_run(path: Path, soft: dict | None, correct: list[list[bool]], tokens: int) -> Path:
    """A run file: one prompt per inner list, one sample per boolean, 1 s per sample."""
    lines = []
    clock = 1_000.0
    for prompt, samples in enumerate(correct):
        for index, ok in enumerate(samples):
            lines.append(json.dumps({
                "prompt_id": f"gsm8k/{prompt}", "sample_index": index, "dataset": "gsm8k",
                "task": "gsm8k", "gold": "18",
                "request": {"model": "m", "max_tokens": 64, "temperature": 0.6, "top_p": 0.95,
                            "soft_thinking": soft, "softcot": None},
                "response": {}, "reasoning": None, "answer": "18" if ok else "17",
                "finish_reason": "stop",
                "usage": {"prompt_tokens": 9, "completion_tokens": tokens, "reasoning_tokens": 0},
                "soft_thinking": {"thinking_tokens": 4, "end_reason": "cold_stop"} if soft else None,
                "latency": {"ttft_s": 0.25, "tpot_s": 0.05, "e2e_s": 1.0},
                "started_at": clock, "finished_at": clock + 1.0,
                "verdict": {"correct": ok, "extracted": "18" if ok else "17", "detail": None}}))
            clock += 1.0
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def two_runs(tmp_path):
    plain = write_run(tmp_path / "plain.jsonl", None, [[True, False], [False, False]], 40)
    soft = write_run(tmp_path / "soft.jsonl", SOFT, [[True, True], [True, False]], 30)
    return plain, soft


def test_report_table_and_files(two_runs, tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main([str(path) for path in two_runs] + ["--out-dir", str(out_dir)]) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0].split()
    assert header == ["metric", "plain", "soft"]
    rows = {line.split("  ")[0]: line.split()[-2:] for line in table.splitlines()[2:] if line.strip()}
    assert rows["pass@1"] == ["25.0%", "75.0%"]
    assert rows["pass@2"] == ["50.0%", "100.0%"]
    assert rows["mean tokens"] == ["40.0", "30.0"]
    assert rows["output tok/s"] == ["40.0", "30.0"]    # tokens per sample over 1 s each
    assert "max_topk=7" in table and "Cold Stop rate" in table

    markdown = (out_dir / "report.md").read_text()
    assert "| metric | plain | soft |" in markdown and "| pass@1 | 25.0% | 75.0% |" in markdown
    report = json.loads((out_dir / "report.json").read_text())
    assert [run["name"] for run in report["runs"]] == ["plain", "soft"]
    assert report["runs"][1]["summary"]["cold_stop_rate"] == 1.0
    png = (out_dir / "accuracy_vs_tokens.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000


def test_report_defaults_to_the_first_run_folder_and_takes_names(two_runs, capsys):
    assert main([str(path) for path in two_runs] + ["--name", "A", "--name", "B"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["metric", "A", "B"]
    folder = two_runs[0].parent
    assert {"report.md", "report.json", "accuracy_vs_tokens.png"} <= {p.name for p in folder.iterdir()}


def test_malformed_line_is_exit_2_naming_file_and_line(tmp_path):
    good = write_run(tmp_path / "run.jsonl", None, [[True]], 10)
    good.write_text(good.read_text() + '{"prompt_id": "x", "sampl\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "benchmarks.report", str(good)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{good}:2" in result.stderr and "not valid JSON" in result.stderr
    assert not (tmp_path / "report.md").exists()


def test_missing_file_and_bad_records_are_errors(tmp_path, capsys):
    assert main([str(tmp_path / "absent.jsonl")]) == 2
    assert "absent.jsonl" in capsys.readouterr().err
    no_verdict = tmp_path / "no_verdict.jsonl"
    no_verdict.write_text('{"prompt_id": "a", "sample_index": 0}\n', encoding="utf-8")
    with pytest.raises(ReportError, match="no_verdict.jsonl:1: record lacks verdict"):
        build_report([no_verdict])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ReportError, match="no records"):
        build_report([empty])


def test_name_count_must_match(two_runs, capsys):
    assert main([str(two_runs[0]), str(two_runs[1]), "--name", "only-one"]) == 2
    assert "--name" in capsys.readouterr().err


def test_plot_with_highlighted_points(tmp_path):
    points = [("a", 10.0, 0.2), ("b", 20.0, 0.5), ("c", 30.0, 0.4)]
    path = plot_accuracy_vs_tokens(points, tmp_path / "pareto.png", title="front", highlight={"a", "b"})
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_the_method_row_sets_methods_side_by_side(tmp_path):
    paths = [write_run(tmp_path / "plain.jsonl", None, [[True]], 10),
             write_run(tmp_path / "concept.jsonl", SOFT, [[True]], 10),
             write_run(tmp_path / "moi.jsonl", {"enabled": True, "method": "mixture_of_inputs", "beta": 1.0},
                       [[False]], 10)]
    report = build_report(paths)
    assert [run["settings"]["method"] for run in report["runs"]] == ["plain", "concept", "mixture_of_inputs"]


def test_every_figure_has_its_interval_and_the_page_says_how(two_runs, tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main([str(path) for path in two_runs] + ["--out-dir", str(out_dir)]) == 0
    table = capsys.readouterr().out
    labels = {line.split("  ")[0] for line in table.splitlines()}
    assert {"pass@1 95% CI", "pass@2 95% CI", "majority vote 95% CI", "mean tokens 95% CI",
            "interval method"} <= labels
    # Two samples per problem: the problem bootstrap, not Wilson.
    assert "bootstrap" in next(line for line in table.splitlines() if line.startswith("interval method"))
    report = json.loads((out_dir / "report.json").read_text())
    for run in report["runs"]:
        interval = run["summary"]["intervals"]["pass@1"]
        assert interval["low"] <= run["summary"]["pass@1"] <= interval["high"]
    markdown = (out_dir / "report.md").read_text()
    assert "Wilson score interval" in markdown and "bootstrap that resamples problems" in markdown
    assert "## Paired against `plain`" in markdown


def test_repeats_add_rows_for_their_count_and_spread(tmp_path, capsys):
    lines = []
    for repeat, correct in enumerate([[True, False], [True, True], [False, False]]):
        for prompt, ok in enumerate(correct):
            lines.append(json.dumps({"prompt_id": f"p/{prompt}", "sample_index": 0,
                                     "repeat": repeat, "verdict": {"correct": ok}}))
    path = tmp_path / "repeats.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main([str(path)]) == 0
    rows = {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows["repeats"].split()[-1] == "3"
    # pass@1 per repeat 50%, 100%, 0%: mean 50%, sd 50 points, range 0-100%.
    assert "50.0% sd 50.0 (0.0–100.0%) of 3" in rows["pass@1 across repeats"]
