"""The recipe scripts (scripts/recipes/): each prints, with --dry-run, a server command whose
options are SGLang's own, and harness and report commands their own parsers accept."""

import argparse
import importlib.util
import shlex
import subprocess
import sys

import pytest

import benchmarks.recipe as recipe
import benchmarks.report as report
import benchmarks.run as run
from benchmarks.settings import judge_from_args, settings_from_args
from server_process import REPO_ROOT

RECIPES = sorted((REPO_ROOT / "scripts" / "recipes").glob("*.py"))


def dry_run(script, *extra) -> list[list[str]]:
    done = subprocess.run([sys.executable, str(script), "--model-path", "/models/QwQ-32B",
                           "--port", "31000", "--dry-run", *extra],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.splitlines()]


def module_args(command: list[str], module: str) -> list[str]:
    assert command[1:3] == ["-m", module], command
    return command[3:]


def sglang_parser() -> argparse.ArgumentParser:
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(exit_on_error=False)
    ServerArgs.add_cli_args(parser)
    return parser


def test_there_are_recipes_with_and_without_soft_thinking():
    names = {path.stem for path in RECIPES}
    assert {"qwq32b_aime2024_soft_thinking", "qwq32b_aime2024_baseline"} <= names


@pytest.mark.parametrize("script", RECIPES, ids=lambda path: path.stem)
def test_a_recipe_names_only_options_its_commands_accept(script):
    server, harness, report_command = dry_run(script)
    server_args = sglang_parser().parse_args(module_args(server, "server"))
    assert server_args.model_path == "/models/QwQ-32B" and server_args.port == 31000
    assert server_args.tp_size == 8
    harness_args = run.parse_args(module_args(harness, "benchmarks.run"))
    assert harness_args.base_url == "http://127.0.0.1:31000/v1"
    settings = settings_from_args(harness_args, "QwQ-32B")
    assert settings.max_tokens == 32768 and settings.temperature == 0.6
    assert (settings.soft_thinking is not None) == script.stem.endswith("soft_thinking")
    assert judge_from_args(harness_args) is None   # the judge is never on by default
    report_args = report.parse_args(module_args(report_command, "benchmarks.report"))
    assert report_args.runs == [harness_args.out]


def test_options_a_recipe_does_not_know_go_to_the_harness():
    script = REPO_ROOT / "scripts" / "recipes" / "qwq32b_aime2024_baseline.py"
    _, harness, _ = dry_run(script, "--limit", "3", "--judge-base-url", "http://127.0.0.1:9/v1",
                            "--judge-model", "judge")
    args = run.parse_args(module_args(harness, "benchmarks.run"))
    assert args.limit == 3 and judge_from_args(args).model == "judge"
    # The harness's checks run before anything else, --dry-run included.
    done = subprocess.run([sys.executable, str(script), "--model-path", "/models/QwQ-32B",
                           "--dry-run", "--no-such-option"],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 2 and "--no-such-option" in done.stderr and not done.stdout


def load_recipe(script):
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE


@pytest.mark.parametrize("extra, named", [
    (["--no-such-option", "1"], "--no-such-option"),
    (["--limit", "0"], "--limit"),
    (["--dataset", "no_such_dataset"], "no_such_dataset"),
    (["--soft-thinking", '{"max_topk": 0}'], "max_topk"),
])
def test_a_bad_harness_option_exits_2_before_the_server_starts(extra, named, tmp_path, capsys,
                                                                monkeypatch):
    def no_server(*args, **kwargs):
        raise AssertionError("the server was started before the harness's options were checked")

    monkeypatch.setattr(recipe, "ServerProcess", no_server)
    argv = ["--model-path", str(tmp_path), "--out-dir", str(tmp_path / "out"), *extra]
    try:
        status = recipe.main(load_recipe(RECIPES[0]), argv)
    except SystemExit as exited:
        status = exited.code
    assert status == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
