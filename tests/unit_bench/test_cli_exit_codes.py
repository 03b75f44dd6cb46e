"""Every benchmark command (``python -m benchmarks.X``, each module with a ``main`` it runs as
a script) exits 2 on a usage error or a bad setting, as argparse does, with a message naming
the option or value, and before any server starts or measurement runs.

The commands run in this process (``main(argv)``), their exit status read as the
interpreter would make it from ``sys.exit(main())``; starting a process is made to fail, so
that a check that lets a bad value through shows as a failure here rather than as a server
start."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO_ROOT / "benchmarks"
ABLATION = BENCHMARKS / "results" / "gsm8k100_ablation_cpu"
URL = "http://127.0.0.1:9/v1"  # nothing listens there; no case gets as far as a request
MISSING = "/no/such/path_xyz"


def commands() -> list[str]:
    """The modules of benchmarks/ that run as commands."""
    return sorted(path.stem for path in BENCHMARKS.glob("*.py")
                  if "def main(" in (text := path.read_text(encoding="utf-8"))
                  and 'if __name__ == "__main__":' in text)


# Arguments each command accepts, so that the one bad argument added is what is refused.
# "{tmp}" is the test's own folder; "{run}" and "{run2}" run files (the committed ablation's
# plain and discrete runs).
VALID = {
    "ablation": ["--base-url", URL, "--dataset", "word_problems", "--out", "{tmp}/out"],
    "latency": [],
    "rank_check": [],
    "record_memory": [],
    "report": ["{run}", "{run2}", "--out-dir", "{tmp}/out"],
    "run": ["--base-url", URL, "--dataset", "word_problems", "--out", "{tmp}/out.jsonl"],
    "sampler_step": [],
    "self_consistency": ["--base-url", URL, "--dataset", "word_problems", "--out", "{tmp}/out"],
    "server_overhead": [],
    "soft_throughput": [],
    "softcot_bench": [],
    "trace_plot": ["{run}", "--out", "{tmp}/out"],
    "tune": ["--base-url", URL, "--dataset", "word_problems", "--limit", "1", "--out", "{tmp}/out"],
    "word_problems": ["--count", "1", "--seed", "0", "--out", "{tmp}/out.jsonl"],
}
BAD_SOFT = ["--soft-thinking", '{"max_topk": 0}']
NO_DATASET = ["--dataset", "no_such_dataset"]
# (command, bad arguments, what the message must name)
BAD_SETTINGS = [
    *[(command, bad, named) for command in ("ablation", "run", "self_consistency", "tune")
      for bad, named in ((BAD_SOFT, "max_topk"), (NO_DATASET, "no_such_dataset"))],
    ("run", ["--timeout", "0"], "--timeout"),
    ("tune", ["--time-budget", "-5"], "--time-budget"),
    ("report", ["--baseline", "7"], "--baseline"),
    ("latency", ["--max-topk", "0"], "--max-topk"),
    ("latency", ["--model-path", MISSING], "--model-path"),
    ("latency", ["--temperature", "0"], "--temperature"),
    ("server_overhead", ["--concurrency", "1", "0"], "--concurrency"),
    ("server_overhead", ["--model-path", MISSING], "--model-path"),
    ("soft_throughput", ["--max-topk", "999"], "--max-topk"),
    ("soft_throughput", ["--model-path", MISSING], "--model-path"),
    ("rank_check", ["--latency", MISSING], "--latency"),
    ("rank_check", ["--repeats", "0"], "--repeats"),
    ("record_memory", ["--out", "{tmp}"], "--out"),
    ("sampler_step", ["--threads", "0"], "--threads"),
    ("sampler_step", ["--batch-sizes", "16", "0"], "--batch-sizes"),
    ("softcot_bench", ["--train-data", MISSING], "--train-data"),
    ("softcot_bench", ["--num-thought-tokens", "0"], "--num-thought-tokens"),
    ("trace_plot", ["--tokenizer", MISSING], "--tokenizer"),
    ("trace_plot", ["--entropy-threshold", "-1"], "--entropy-threshold"),
    ("word_problems", ["--count", "0"], "--count"),
]


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    for command in commands():  # imports may run helpers (ldconfig); the commands may not
        importlib.import_module(f"benchmarks.{command}")

    def refuse(*args, **kwargs):
        raise AssertionError(f"a usage check started a process: {args[:1]}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def fill(argv: list[str], tmp_path: Path) -> list[str]:
    return [arg.replace("{tmp}", str(tmp_path)).replace("{run}", str(ABLATION / "plain.jsonl"))
            .replace("{run2}", str(ABLATION / "discrete.jsonl")) for arg in argv]


def exit_status(command: str, argv: list[str]) -> int:
    """What ``python -m benchmarks.<command> ARGV`` exits with (``sys.exit(main())``)."""
    module = importlib.import_module(f"benchmarks.{command}")
    try:
        value = module.main(argv)
    except SystemExit as exited:
        value = exited.code
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)  # sys.exit("text") prints it and exits 1
    return 1


def test_every_command_has_its_cases():
    assert sorted(VALID) == commands()
    assert {command for command, _, _ in BAD_SETTINGS} == set(commands())


@pytest.mark.parametrize("command", sorted(VALID))
def test_an_unknown_option_exits_2_naming_it(command, tmp_path, capsys):
    argv = fill(VALID[command], tmp_path) + ["--no-such-option", "1"]
    assert exit_status(command, argv) == 2
    assert "--no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize("command, bad, named", BAD_SETTINGS,
                         ids=[f"{command}-{'-'.join(bad)[:30]}" for command, bad, _ in BAD_SETTINGS])
def test_a_bad_setting_exits_2_naming_it(command, bad, named, tmp_path, capsys):
    assert exit_status(command, fill(VALID[command] + bad, tmp_path)) == 2
    err = capsys.readouterr().err
    assert named in err, err
    assert "Traceback" not in err


def test_a_file_without_a_trace_exits_2_naming_it(tmp_path, capsys):
    run = ABLATION / "plain.jsonl"  # saved without return_trace
    assert exit_status("trace_plot", [str(run), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "no choice with a trace" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert exit_status("trace_plot", [str(broken), "--out", str(tmp_path / "out")]) == 2
    assert "broken.json: not valid JSON" in capsys.readouterr().err
