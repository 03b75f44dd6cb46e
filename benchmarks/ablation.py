"""One-command ablation: a fixed ladder of thinking methods on one dataset, same sampling and
budget, then one report with paired comparisons; resumable.

    .venv/bin/python -m benchmarks.ablation --base-url http://127.0.0.1:30000/v1 \\
        --dataset gsm8k --limit 100 --max-tokens 512 --seed 0 --out runs/ablation
    # or start the server here (everything after --start-server goes to python -m server):
    .venv/bin/python -m benchmarks.ablation --dataset aime2024 --out runs/ablation \\
        --start-server --model-path models/QwQ-32B --tp-size 8

The ladder (:data:`LADDER`): plain decoding; ``discrete`` (sampled thinking with Cold Stop
and the budget only); concept tokens; concept tokens with Gumbel noise; then every other
thinking method, ``switch`` twice: as the engine runs it and with its authors' preset
(``switch_preset: "authors"``). A rung runs only when the server's plugin knows its method
(``sglang_soft_thinking.params.METHODS``); the others are skipped with the reason logged, and
methods the plugin knows that the ladder does not name get a rung of their own. Every rung
shares the sampling options and ``--soft-thinking`` (Cold Stop, ``max_topk``, budget, after
thinking); only its method and noise differ. Each rung is a run file ``DIR/<rung>.jsonl``
(run the command again and only missing samples are sent); then ``DIR/report.md``/``.json``
and ``accuracy_vs_tokens.png`` compare every rung with ``plain`` and with ``discrete``
problem by problem. With an LLM judge (``--judge-base-url``, ``--judge-model``) the report
sets pass@1 without the judge beside pass@1 with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError
from sglang_soft_thinking.params import METHODS, SoftThinkingParams

from benchmarks.report import PairingError, build_report, format_table, write_report
from benchmarks.run import (add_dataset_args, add_request_args, add_server_args, check_run_args,
                            connect, count_done, load_dataset, open_run_file, run_cli,
                            run_samples)
from benchmarks.server_process import ServerStartError
from benchmarks.settings import (RunSettings, SettingsError, add_judge_args, add_sampling_args,
                                 judge_from_args, settings_from_args)
from benchmarks.target_server import START_SERVER, check_target, split_server_args, target_server
from evaluation.judge import Judge, JudgeSettings
from evaluation.problems import DatasetError
from evaluation.tasks import Dataset

logger = logging.getLogger(__name__)

GUMBEL = {"type": "gumbel", "temperature": 0.5}
LADDER_FILE = "ladder.json"


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: its name (run file and report column), its thinking method
    (None: soft thinking off), its noise and any other soft-thinking parameters of its own
    (``params``; they override the shared settings)."""

    name: str
    method: str | None
    description: str
    noise: dict | None = None
    params: tuple[tuple[str, object], ...] = ()


LADDER = (
    Rung("plain", None, "plain decoding, soft thinking off"),
    Rung("discrete", "discrete", "sampled thinking with Cold Stop and the budget only"),
    Rung("concept", "concept", "concept tokens (Soft Thinking)"),
    Rung("concept_gumbel", "concept", "concept tokens with Gumbel noise (tau 0.5)", GUMBEL),
    Rung("mixture_of_inputs", "mixture_of_inputs", "Mixture of Inputs"),
    Rung("switch", "switch", "SwiReasoning"),
    Rung("switch_authors", "switch", "SwiReasoning, the authors' preset",
         params=(("switch_preset", "authors"),)),
    Rung("think_router", "think_router", "ThinkRouter"),
    Rung("multiplex", "multiplex", "Multiplex Thinking"),
    Rung("selar", "selar", "SeLaR: pushed top-3 mixtures when uncertain (normalised entropy >= 0.5)"),
    Rung("think_router_entropy", "think_router", "ThinkRouter's concept tokens behind SeLaR's gate "
         "(mix when the normalised top-3 entropy >= 0.5)", params=(("router_statistic", "topk_entropy"), ("tau", 0.5))),
    Rung("latent", "latent", "LaTER: hidden-state vectors, then explicit thinking"),
)
# The rungs every other rung is compared with, when they run.
BASELINES = ("plain", "discrete")


def select_rungs(ladder: tuple[Rung, ...] = LADDER, methods: tuple[str, ...] = METHODS
                 ) -> tuple[list[Rung], list[tuple[Rung, str]]]:
    """The rungs to run and the skipped ones with why; methods the ladder does not name
    are added at its end."""
    kept = [rung for rung in ladder if rung.method is None or rung.method in methods]
    skipped = [(rung, f"the installed plugin has no method {rung.method!r} "
                      f"(it has {', '.join(methods)})")
               for rung in ladder if rung not in kept]
    named = {rung.method for rung in ladder}
    kept += [Rung(method, method, f"thinking method {method}") for method in methods
             if method not in named]
    return kept, skipped


def rung_params(rung: Rung, base: SoftThinkingParams) -> SoftThinkingParams | None:
    """The shared soft-thinking settings with the rung's method, noise and own parameters
    (None for plain). Only the shared settings the user gave are carried over, so that a
    preset among the rung's parameters fills every option the user left out."""
    if rung.method is None:
        return None
    fields = base.model_dump(mode="json", exclude_unset=True)
    fields.update(enabled=True, method=rung.method, noise=rung.noise, **dict(rung.params))
    try:
        return SoftThinkingParams.model_validate(fields)
    except ValidationError as error:
        raise SettingsError(f"rung {rung.name!r}: the shared --soft-thinking settings do not "
                            f"fit its method ({error.errors()[0]['msg']})") from None


def ladder_settings(settings: RunSettings, rungs: list[Rung]) -> dict[str, RunSettings]:
    """Each rung's settings: the shared ones, its own method and noise; checked up front."""
    if settings.temperature <= 0:
        raise SettingsError("--temperature must be > 0: the soft-thinking rungs sample while "
                            "thinking, and every rung uses the same sampling")
    base = settings.soft_thinking or SoftThinkingParams()
    return {rung.name: settings.with_soft_thinking(rung_params(rung, base)) for rung in rungs}


def write_ladder(out: Path, rungs: list[Rung], skipped: list[tuple[Rung, str]],
                 per_rung: dict[str, RunSettings]) -> None:
    """``DIR/ladder.json``: what each rung ran with, and which rungs were skipped and why."""
    ladder = {"rungs": [{"name": rung.name, "description": rung.description,
                         "request": per_rung[rung.name].request_json()} for rung in rungs],
              "skipped": [{"name": rung.name, "reason": reason} for rung, reason in skipped]}
    (out / LADDER_FILE).write_text(json.dumps(ladder, indent=2) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str] | None]:
    own, server_args = split_server_args(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(parser, base_url_required=False)
    add_dataset_args(parser)
    add_request_args(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help="the ablation's folder: a run file per rung, the report")
    parser.add_argument(START_SERVER, action="store_true",
                        help="start python -m server with every option after this one "
                             "(it must come last), instead of --base-url")
    add_sampling_args(parser)
    add_judge_args(parser)
    args = parser.parse_args(own)
    check_run_args(parser, args)
    check_target(parser, args, server_args)
    return args, server_args


@dataclass
class Ablation:
    """What the command was asked, checked before any server starts or request is sent."""

    rungs: list[Rung]
    skipped: list[tuple[Rung, str]]
    per_rung: dict[str, RunSettings]
    dataset: Dataset
    judge_settings: JudgeSettings | None


def prepare(args) -> Ablation:
    """Check every option, the dataset and each rung's settings; raises the user's errors."""
    rungs, skipped = select_rungs(LADDER, METHODS)
    for rung, reason in skipped:
        logger.info("rung %s skipped: %s", rung.name, reason)
    per_rung = ladder_settings(settings_from_args(args, args.model or ""), rungs)
    return Ablation(rungs, skipped, per_rung, load_dataset(args), judge_from_args(args))


async def run_ladder(args, ablation: Ablation) -> int:
    """Run every rung (sending only missing samples); returns how many samples failed."""
    client, resolved = await connect(args, next(iter(ablation.per_rung.values())))
    per_rung = {name: replace(settings, model=resolved.model)
                for name, settings in ablation.per_rung.items()}
    write_ladder(args.out, ablation.rungs, ablation.skipped, per_rung)
    judge = Judge(ablation.judge_settings) if ablation.judge_settings is not None else None
    failures = 0
    try:
        for rung in ablation.rungs:
            settings = per_rung[rung.name]
            run_file = open_run_file(args.out / f"{rung.name}.jsonl", settings)
            done, total = count_done(ablation.dataset, settings, run_file)
            logger.info("rung %s (%s): %d of %d samples already done", rung.name,
                        rung.description, done, total)
            started = time.monotonic()
            failures += await run_samples(args, ablation.dataset, settings, run_file, client,
                                          judge)
            logger.info("rung %s: %.0f s", rung.name, time.monotonic() - started)
    finally:
        if judge is not None:
            judge.close()
    return failures


async def _main(args, ablation: Ablation) -> int:
    if await run_ladder(args, ablation):
        print("some samples failed after their retries; run the same command again to "
              "send them, then the report is written", file=sys.stderr)
        return 1
    names = [rung.name for rung in ablation.rungs]
    report = build_report([args.out / f"{name}.jsonl" for name in names], names,
                          [name for name in BASELINES if name in names])
    write_report(report, args.out)
    print(format_table(report))
    print(f"\nwrote report.md, report.json, accuracy_vs_tokens.png in:\n{args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args, server_args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    try:
        ablation = prepare(args)
    except (SettingsError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with target_server(args, server_args, args.out) as base_url:
            args.base_url = base_url
            return run_cli(_main(args, ablation), args, user_errors=(PairingError,))
    except ServerStartError as error:
        print(f"error: the server did not start: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
