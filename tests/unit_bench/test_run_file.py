"""The run file (benchmarks/run_file.py): append, torn last line, settings check."""

import json

import pytest

from benchmarks.run_file import RunFile, RunFileError


def record(prompt_id, index, temperature=0.6):
    return {"prompt_id": prompt_id, "sample_index": index, "request": {"temperature": temperature},
            "verdict": {"correct": True}}


def test_append_then_reopen_reads_every_record(tmp_path):
    run = RunFile(tmp_path / "sub" / "run.jsonl")
    assert run.open() == {}
    run.append(record("a", 0))
    run.append(record("a", 1))
    reopened = RunFile(run.path).open()
    assert set(reopened) == {("a", 0, 0), ("a", 1, 0)}  # records without a repeat are repeat 0


def test_a_torn_last_line_is_cut_off(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(record("a", 0)) + "\n" + '{"prompt_id": "b", "sam', encoding="utf-8")
    run = RunFile(path)
    assert set(run.open()) == {("a", 0, 0)}
    run.append(record("b", 0))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["prompt_id"] for line in lines] == ["a", "b"]


def test_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("hello\n", encoding="utf-8")
    with pytest.raises(RunFileError, match="notes.jsonl:1"):
        RunFile(path).open()


def test_other_settings_are_refused_unless_ignored(tmp_path):
    run = RunFile(tmp_path / "run.jsonl")
    run.open()
    run.append(record("a", 0, temperature=0.6))
    run.check_settings({"temperature": 0.6})
    with pytest.raises(RunFileError, match="temperature: 0.6 in the file, 1.0 now"):
        run.check_settings({"temperature": 1.0})
    run.check_settings({"temperature": 1.0}, ignore=("temperature",))
