"""Harness options (benchmarks/settings.py): validated before any request."""

import argparse
import json

import pytest

from benchmarks.settings import SettingsError, add_sampling_args, settings_from_args


def settings(*argv):
    parser = argparse.ArgumentParser()
    add_sampling_args(parser)
    return settings_from_args(parser.parse_args(list(argv)), "m")


def test_soft_thinking_inline_file_and_flat_names(tmp_path):
    inline = settings("--soft-thinking", '{"max_topk": 5, "noise": {"type": "gumbel"}}')
    assert inline.soft_thinking.max_topk == 5 and inline.soft_thinking.noise.temperature == 0.5
    path = tmp_path / "soft.yaml"
    path.write_text("max_topk: 7\nafter_thinking:\n  temperature: 0\n", encoding="utf-8")
    from_file = settings("--soft-thinking", str(path))
    assert from_file.soft_thinking.max_topk == 7
    assert from_file.soft_thinking.after_thinking.temperature == 0
    flat = settings("--soft-thinking", '{"enable_soft_thinking": true, "dirichlet_alpha": 2, '
                                       '"add_noise_dirichlet": true}')
    assert flat.soft_thinking.noise.alpha == 2
    assert settings("--soft-thinking", '{"enabled": false}').soft_thinking is None


def test_request_body_carries_extras_and_per_sample_seed():
    run = settings("--soft-thinking", '{"max_topk": 3}', "--seed", "10", "--top-k", "20")
    body = run.request_body("What?", sample_index=2)
    assert body["seed"] == 12 and body["messages"] == [{"role": "user", "content": "What?"}]
    assert body["extra_body"]["top_k"] == 20
    assert body["extra_body"]["soft_thinking"]["max_topk"] == 3
    assert "max_thinking_tokens" not in body["extra_body"]["soft_thinking"]  # None left out
    assert json.dumps(run.request_json())  # recorded settings are JSON


@pytest.mark.parametrize("argv, message", [
    (["--soft-thinking", '{"max_topk": 0}'], "soft_thinking.max_topk"),
    (["--soft-thinking", '{"max_topk": 5, "colour": 1}'], "soft_thinking.colour"),
    (["--soft-thinking", "missing.json"], "neither JSON nor an existing file"),
    (["--soft-thinking", '{"max_topk": 5}', "--temperature", "0"], "--temperature must be > 0"),
    (["--num-samples", "0"], "--num-samples"),
    (["--top-p", "1.5"], "--top-p"),
    (["--softcot", "[1]"], "--softcot"),
])
def test_bad_options_name_the_option(argv, message):
    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        settings(*argv)


@pytest.mark.parametrize("given, expected", [
    ("http://127.0.0.1:30000", "http://127.0.0.1:30000/v1"),
    ("http://127.0.0.1:30000/", "http://127.0.0.1:30000/v1"),
    ("http://127.0.0.1:30000/v1", "http://127.0.0.1:30000/v1"),
    ("https://host/serve/v1/", "https://host/serve/v1"),
])
def test_base_url_with_or_without_v1(given, expected):
    from benchmarks.run import parse_args as run_args
    from benchmarks.tune import parse_args as tune_args

    common = ["--dataset", "gsm8k", "--out", "x", "--base-url", given]
    assert run_args(common).base_url == expected
    assert tune_args([*common, "--limit", "2"]).base_url == expected


def test_a_base_url_that_is_not_a_url_is_refused(capsys):
    from benchmarks.run import parse_args as run_args

    with pytest.raises(SystemExit) as exit_info:
        run_args(["--dataset", "gsm8k", "--out", "x", "--base-url", "127.0.0.1:30000"])
    assert exit_info.value.code == 2
    assert "--base-url" in capsys.readouterr().err
