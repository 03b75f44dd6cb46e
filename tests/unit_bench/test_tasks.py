"""Dataset loading and prompts (evaluation/tasks.py, evaluation/problems.py), no server."""

import json

import pytest

from evaluation.problems import DatasetError, gsm8k_final_answer
from evaluation.tasks import DATASETS, PROMPTS, default_data_dir, resolve_dataset


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_shared_format_file_keeps_question_gold_and_extra_keys(tmp_path):
    items = [{"prompt": [{"from": "user", "value": "Which? A. x B. y"}], "final_answer": "B",
              "choices": {"A": "x", "B": "y"}}]
    dataset = resolve_dataset(str(write(tmp_path / "gpqa_diamond.json", json.dumps(items))))
    assert dataset.task == "gpqa"  # guessed from the file's name
    problem = dataset.problems[0]
    assert (problem.prompt_id, problem.question, problem.gold) == ("gpqa_diamond/0", "Which? A. x B. y", "B")
    assert problem.extra == {"choices": {"A": "x", "B": "y"}}
    assert "\\boxed{" in dataset.prompt(problem) and problem.question in dataset.prompt(problem)


def test_gsm8k_jsonl_gold_is_the_final_number(tmp_path):
    line = {"question": "How many?", "answer": "2 * 600 = 1,200\n#### 1,200"}
    dataset = resolve_dataset(str(write(tmp_path / "mine.jsonl", json.dumps(line) + "\n\n")))
    assert dataset.task == "gsm8k"
    assert [p.gold for p in dataset.problems] == ["1200"]
    assert gsm8k_final_answer("x #### 7 ") == "7"


def test_malformed_files_name_file_and_item(tmp_path):
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        resolve_dataset(str(write(tmp_path / "bad.jsonl",
                                  '{"question": "q", "answer": "#### 1"}\n{"question": "q"}\n')))
    with pytest.raises(DatasetError, match="item 0 lacks"):
        resolve_dataset(str(write(tmp_path / "math500.json", '[{"prompt": []}]')))
    with pytest.raises(DatasetError, match="not valid JSON"):
        resolve_dataset(str(write(tmp_path / "math500.json", "[")))


def test_unknown_names_tasks_and_unscorable_sets_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        resolve_dataset("nope")
    with pytest.raises(DatasetError, match="unknown task"):
        resolve_dataset("gsm8k", task="poetry")
    with pytest.raises(DatasetError, match="no test cases"):
        resolve_dataset("livecodebench")
    with pytest.raises(DatasetError, match="pass --task"):
        resolve_dataset(str(write(tmp_path / "other.json", "[]")))
    with pytest.raises(DatasetError, match="not found in"):
        resolve_dataset("aime2024", data_dir=tmp_path)


def test_project_sample_set_loads_with_computed_answers():
    dataset = resolve_dataset("word_problems")
    assert dataset.task == "gsm8k" and len(dataset.problems) == 100
    assert all(problem.gold.lstrip("-").isdigit() for problem in dataset.problems)


def test_shared_files_load_with_their_tasks():
    data_dir = default_data_dir()
    sizes = {"gsm8k": 1319, "math500": 500, "gpqa_diamond": 198, "humaneval": 164, "mbpp": 257}
    for name, size in sizes.items():
        dataset = resolve_dataset(name, data_dir)
        assert len(dataset.problems) == size
        assert dataset.task == DATASETS[name].task and dataset.task in PROMPTS
    mbpp = resolve_dataset("mbpp", data_dir).problems[0]
    assert mbpp.gold["test_list"][0] in PROMPTS["mbpp"](mbpp)


def test_humaneval_gold_carries_the_prompt_for_body_only_completions():
    data_dir = default_data_dir()
    problem = resolve_dataset("humaneval", data_dir).problems[0]
    assert problem.gold["prompt"] == problem.question
    assert problem.gold["entry_point"] in problem.question


def test_a_named_set_missing_locally_falls_back_to_the_hub(tmp_path, monkeypatch):
    # This machine cannot reach the hub: the fallback must say so instead of failing obscurely.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(DatasetError, match="could not load openai/gsm8k from the Hugging Face hub"):
        resolve_dataset("gsm8k", data_dir=tmp_path)
