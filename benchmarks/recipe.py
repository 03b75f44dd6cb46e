"""Run a recipe: start our server with a paper run's engine options, run the harness on it,
write the report, stop the server.

A recipe (``scripts/recipes/*.py``) names the server's options (SGLang's own names, as
``python -m server`` accepts them) and the harness's (``benchmarks.run``'s). Its command
line takes the model folder and where the results go; options it does not know (for
example ``--judge-base-url`` and ``--judge-model``, or ``--limit 5`` for a first try) are
passed on to the harness, whose checks run before the server starts (a bad option or
setting exits 2 at once). ``--dry-run`` prints the three commands instead of running them. The run file is resumable: run the same recipe again after an
interruption and only the missing samples are sent.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.server_process import ServerProcess, ServerStartError

logger = logging.getLogger("benchmarks.recipe")
# A 32B model on 8 GPUs may take many minutes to load.
STARTUP_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Recipe:
    """One paper run: ``server_args`` for ``python -m server`` (besides the model and port),
    ``harness_args`` for ``benchmarks.run`` (besides the server's URL and the run file)."""

    name: str
    description: str
    model_hint: str
    server_args: tuple[str, ...]
    harness_args: tuple[str, ...]


def commands(recipe: Recipe, model_path: Path, port: int, out_dir: Path,
             extra_harness_args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The server's, the harness's and the report's command lines."""
    run_file = out_dir / f"{recipe.name}.jsonl"
    server = [sys.executable, "-m", "server", "--model-path", str(model_path),
              "--port", str(port), *recipe.server_args]
    harness = [sys.executable, "-m", "benchmarks.run", "--base-url",
               f"http://127.0.0.1:{port}/v1", *recipe.harness_args, *extra_harness_args,
               "--out", str(run_file)]
    report = [sys.executable, "-m", "benchmarks.report", str(run_file),
              "--out-dir", str(out_dir / f"{recipe.name}_report")]
    return server, harness, report


def parse_args(recipe: Recipe, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=f"{recipe.description}\n\nOther options are passed to benchmarks.run "
                    "(e.g. --limit 5, --judge-base-url URL --judge-model NAME).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, required=True,
                        help=f"the local model folder ({recipe.model_hint})")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--out-dir", type=Path, default=Path("runs") / "recipes",
                        help="where the run file and the report go (default runs/recipes)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the server, harness and report commands; run nothing")
    return parser.parse_known_args(argv)


def check_harness_args(harness_cmd: list[str]) -> str | None:
    """The harness's own checks of its options (those passed on included), run here before
    the server starts: a usage error exits 2 as the harness would; a bad setting or dataset
    is returned as the message to show."""
    from benchmarks.run import load_dataset, parse_args
    from benchmarks.settings import SettingsError, judge_from_args, settings_from_args
    from evaluation.problems import DatasetError

    args = parse_args(harness_cmd[3:])
    try:
        settings_from_args(args, "")
        judge_from_args(args)
        load_dataset(args)
    except (SettingsError, DatasetError) as error:
        return str(error)
    return None


def main(recipe: Recipe, argv: list[str] | None = None) -> int:
    args, extra = parse_args(recipe, argv)
    # The server runs in the repository's root, so the model folder is given absolute.
    model_path = args.model_path.expanduser().resolve()
    server_cmd, harness_cmd, report_cmd = commands(recipe, model_path, args.port, args.out_dir,
                                                   extra)
    problem = check_harness_args(harness_cmd)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.dry_run:
        for command in (server_cmd, harness_cmd, report_cmd):
            print(shlex.join(command))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log_path = args.out_dir / f"{recipe.name}_server.log"
    logger.info("starting the server (log: %s): %s", log_path, shlex.join(server_cmd))
    with ServerProcess(server_cmd, args.port, log_path) as server:
        try:
            server.wait_healthy(timeout_s=STARTUP_TIMEOUT_S)
        except ServerStartError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        logger.info("running the harness: %s", shlex.join(harness_cmd))
        status = subprocess.run(harness_cmd).returncode
    if status != 0:
        print(f"error: the harness exited with {status}; run the recipe again to resume",
              file=sys.stderr)
        return status
    return subprocess.run(report_cmd).returncode
