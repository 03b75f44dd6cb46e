"""Paired comparison (benchmarks/paired.py) and the report's use of it: McNemar against
scipy, hand-worked differences, the pairing's power over separate intervals, refusals."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from benchmarks.paired import PairingError, ProblemTotals, compare, mcnemar_exact, problem_totals
from benchmarks.report import build_report, main
from benchmarks.report_tables import comparison_verdict, format_markdown, format_table
from benchmarks.uncertainty import wilson_interval

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("baseline_only", range(0, 13, 3))
@pytest.mark.parametrize("other_only", [0, 1, 2, 5, 9, 14])
def test_mcnemar_equals_scipys_binomial_test(baseline_only, other_only):
    discordant = baseline_only + other_only
    expected = 1.0 if discordant == 0 else stats.binomtest(
        baseline_only, discordant, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(baseline_only, other_only) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_by_hand():
    # 6 discordant problems, all won by the other run: 2 * (1/2)^6.
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    # 1 against 4: 2 * (C(5,0) + C(5,1)) / 2^5 = 12 / 32.
    assert mcnemar_exact(4, 1) == pytest.approx(12 / 32)
    assert mcnemar_exact(3, 3) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def records(correct: list[bool], tokens: list[int], samples: int = 1) -> list[dict]:
    return [{"prompt_id": f"p/{i}", "sample_index": s, "verdict": {"correct": ok},
             "usage": {"completion_tokens": t}}
            for i, (ok, t) in enumerate(zip(correct, tokens)) for s in range(samples)]


def test_single_sample_runs_by_hand():
    baseline = problem_totals(records([True, True, False, False, False], [10, 20, 30, 40, 50]))
    other = problem_totals(records([True, False, True, True, False], [15, 25, 35, 45, 55]))
    row = compare("base", baseline, "new", other)
    assert row["num_problems"] == 5
    assert row["pass@1_diff"] == pytest.approx(3 / 5 - 2 / 5)
    assert row["mcnemar"] == {"baseline_only": 1, "other_only": 2,
                              "p_value": pytest.approx(1.0)}
    assert row["pass@1_distinguishable"] is False
    # Every problem costs exactly 5 more tokens: the difference has no spread at all.
    assert row["tokens_diff"] == pytest.approx(5.0)
    assert row["tokens_interval"] == pytest.approx([5.0, 5.0])
    assert row["tokens_distinguishable"] is True


def test_pairing_sees_a_difference_that_separate_intervals_miss():
    # 60 problems, the baseline right on 24; the other run is right on the same ones and on
    # 8 more. Separately the two Wilson intervals overlap; paired, all 8 discordant
    # problems go one way.
    base_correct = [i < 24 for i in range(60)]
    other_correct = [i < 32 for i in range(60)]
    row = compare("base", problem_totals(records(base_correct, [10] * 60)),
                  "new", problem_totals(records(other_correct, [10] * 60)))
    assert wilson_interval(24, 60)[1] > wilson_interval(32, 60)[0]
    assert row["mcnemar"]["p_value"] == pytest.approx(2 / 2 ** 8)
    assert row["pass@1_distinguishable"] is True
    assert row["pass@1_interval"][0] > 0


def test_several_samples_use_the_paired_bootstrap():
    # The other run gets one more sample of every second problem right.
    baseline = {f"p/{i}": ProblemTotals(4, i % 3, 40.0, 4) for i in range(30)}
    other = {f"p/{i}": ProblemTotals(4, i % 3 + i % 2, 44.0, 4) for i in range(30)}
    row = compare("base", baseline, "new", other)
    assert row["mcnemar"] is None
    expected = 15 * 0.25 / 30
    assert row["pass@1_diff"] == pytest.approx(expected)
    low, high = row["pass@1_interval"]
    assert 0 < low < expected < high < 0.25
    assert row["pass@1_distinguishable"] is True
    assert row["tokens_diff"] == pytest.approx(1.0)


def test_runs_on_other_problems_are_refused_naming_them():
    baseline = problem_totals(records([True] * 5, [10] * 5))
    other = problem_totals(records([True] * 3, [10] * 3))
    with pytest.raises(PairingError, match=r"'base' and 'new'.*2 only in 'base', 0 only in 'new', 3 in both"):
        compare("base", baseline, "new", other)


def write_run(path: Path, correct: list[bool], tokens: int) -> Path:
    path.write_text("".join(json.dumps(record) + "\n"
                            for record in records(correct, [tokens] * len(correct))))
    return path


def test_the_report_compares_against_the_chosen_baseline(tmp_path, capsys):
    paths = [write_run(tmp_path / "a.jsonl", [True, False, False, False], 30),
             write_run(tmp_path / "b.jsonl", [True, True, False, False], 20),
             write_run(tmp_path / "c.jsonl", [True, True, True, False], 10)]
    report = build_report(paths)
    assert [c["baseline"] for c in report["comparisons"]] == ["a"]
    assert [row["run"] for row in report["comparisons"][0]["rows"]] == ["b", "c"]
    assert main([str(p) for p in paths] + ["--baseline", "c", "--out-dir", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert "Paired against c" in text and "-50.0 [" in text  # a minus c: 25% - 75%
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["comparisons"][0]["baseline"] == "c"
    assert [row["run"] for row in saved["comparisons"][0]["rows"]] == ["a", "b"]
    assert "## Paired against `c`" in (tmp_path / "r" / "report.md").read_text()
    assert main([str(p) for p in paths] + ["--baseline", "1", "--out-dir", str(tmp_path / "r")]) == 0
    assert "Paired against b" in capsys.readouterr().out


def test_the_report_says_in_words_which_differences_are_real(tmp_path):
    # "same" ties the baseline on accuracy but costs 5 more tokens on every problem (a
    # difference with no spread); "better" wins 8 problems the baseline lost (McNemar
    # p = 2/256), at the baseline's own tokens.
    base = [i < 24 for i in range(60)]
    paths = [write_run(tmp_path / "base.jsonl", base, 10),
             write_run(tmp_path / "same.jsonl", base, 15),
             write_run(tmp_path / "better.jsonl", [i < 32 for i in range(60)], 10)]
    report = build_report(paths)
    markdown = format_markdown(report)
    assert "pass@1 differs from `base` at 95% for better." in markdown
    assert "Mean tokens differ from `base` at 95% for same." in markdown
    tied = build_report(paths[:2], baselines=["same"])
    sentence = comparison_verdict(tied["comparisons"][0])
    assert sentence.startswith("No run's pass@1 is distinguishable from `same` at 95%")
    assert "Mean tokens differ from `same` at 95% for base." in sentence
    # The text table wraps the sentence to fit a terminal: compare its words.
    assert " ".join(sentence.split()) in " ".join(format_table(tied).split())


def test_an_unknown_baseline_is_exit_2_listing_the_runs(tmp_path, capsys):
    paths = [write_run(tmp_path / "a.jsonl", [True], 1), write_run(tmp_path / "b.jsonl", [True], 1)]
    assert main([str(p) for p in paths] + ["--baseline", "zzz"]) == 2
    assert "the runs are: a, b" in capsys.readouterr().err
    assert main([str(p) for p in paths] + ["--baseline", "2"]) == 2


def test_the_cli_refuses_to_pair_runs_on_other_problems(tmp_path):
    short = write_run(tmp_path / "short.jsonl", [True, False], 10)
    long = write_run(tmp_path / "long.jsonl", [True, False, True], 10)
    done = subprocess.run([sys.executable, "-m", "benchmarks.report", str(short), str(long)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "'short' and 'long'" in done.stderr and "1 only in 'long'" in done.stderr
    assert "--unpaired" in done.stderr
    assert not (tmp_path / "report.md").exists()
    assert main([str(short), str(long), "--unpaired"]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["comparisons"] == []
