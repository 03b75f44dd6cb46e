"""Search soft-thinking parameters with the benchmark harness; resumable.

    .venv/bin/python -m benchmarks.tune --base-url http://127.0.0.1:30000/v1 \\
        --dataset gsm8k --limit 50 --space space.yaml --strategy random --trials 12 --out runs/tune

Each trial is a harness run (``DIR/trials/<trial>/run.jsonl``); a baseline with soft
thinking off always runs too. Run the command again and finished trials are read back, not
sent again. The result: ``leaderboard.md``/``.json``, ``pareto.png`` (pass@1 against mean
tokens) and ``recommended_soft_thinking.json``, which ``--soft-thinking FILE`` accepts.
With ``--halving-rungs R`` the trials first run on a fraction of the problems and only the
better half goes on, rung after rung, to all ``--limit`` problems.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import openai

from benchmarks.cli_types import positive_float
from benchmarks.leaderboard import BASELINE_ID, TrialResult, rank, write_leaderboard
from benchmarks.run import run_cli, run_samples
from benchmarks.run_file import RunFile
from benchmarks.search_space import SpaceError, Trial, expand, load_space, validate_space
from benchmarks.settings import (
    RunSettings,
    SettingsError,
    add_sampling_args,
    api_base_url,
    settings_from_args,
)
from evaluation.tasks import PROMPTS, Dataset, resolve_dataset
from sglang_soft_thinking.params import SoftThinkingParams

logger = logging.getLogger("benchmarks.tune")


class Study:
    """The trials of one search and the server they run against; the client is made lazily,
    so a search whose trials are all finished sends nothing."""

    def __init__(self, args, dataset: Dataset, settings: RunSettings):
        self.args, self.dataset, self.settings = args, dataset, settings
        self.client: openai.AsyncOpenAI | None = None
        self.started = time.monotonic()

    def out_of_time(self) -> bool:
        budget = self.args.time_budget
        return budget is not None and time.monotonic() - self.started > budget

    async def _ensure_client(self) -> None:
        if self.client is None:
            self.client = openai.AsyncOpenAI(base_url=self.args.base_url,
                                             api_key=self.args.api_key,
                                             timeout=self.args.timeout, max_retries=0)
            if not self.settings.model:
                model = (await self.client.models.list()).data[0].id
                self.settings = replace(self.settings, model=model)

    async def run_trial(self, trial_id: str, params: SoftThinkingParams | None,
                        num_problems: int) -> tuple[list[dict], bool]:
        """The trial's records on the first ``num_problems`` problems, sending what is missing;
        and whether every one of those samples is there."""
        run_file = RunFile(self.args.out / "trials" / trial_id / "run.jsonl")
        records = run_file.open()
        # Finished samples made with other settings must not count for this search.
        settings = self.settings.with_soft_thinking(params)
        run_file.check_settings(settings.request_json(),
                                ignore=() if settings.model else ("model",))
        problems = self.dataset.problems[:num_problems]
        wanted = {(p.prompt_id, i, r) for p in problems for r in range(settings.num_repeats)
                  for i in range(settings.num_samples)}
        if not wanted <= records.keys():
            if self.out_of_time():
                logger.warning("time budget spent: %s not run", trial_id)
            else:
                await self._ensure_client()
                settings = self.settings.with_soft_thinking(params)
                print(f"trial {trial_id}: {num_problems} problems", file=sys.stderr)
                subset = Dataset(self.dataset.name, self.dataset.task, problems)
                failures = await run_samples(self.args, subset, settings, run_file, self.client)
                if failures:
                    logger.error("%s: %d samples failed; run again to retry them",
                                 trial_id, failures)
        kept = [record for key, record in run_file.records.items() if key in wanted]
        return kept, len(kept) == len(wanted)


def rung_sizes(limit: int, num_rungs: int) -> list[int]:
    """Problems per rung, doubling up to ``limit``: 3 rungs of 40 → 10, 20, 40."""
    sizes = [max(1, limit >> (num_rungs - 1 - rung)) for rung in range(num_rungs)]
    return sorted(set(sizes))


def trial_result(trial_id: str, label: str, params: SoftThinkingParams | None,
                 records: list[dict], is_complete: bool, size: int) -> TrialResult:
    """An unfinished trial counts only the problems it covered, so it is never ranked as full."""
    if is_complete:
        return TrialResult(trial_id, label, params, records, size)
    covered = len({record["prompt_id"] for record in records})
    return TrialResult(trial_id, f"{label} (unfinished)", params, records, min(covered, size - 1))


async def search(study: Study, trials: list[Trial]) -> list[TrialResult]:
    limit = len(study.dataset.problems)
    records, is_complete = await study.run_trial(BASELINE_ID, None, limit)
    results = {BASELINE_ID: trial_result(BASELINE_ID, "soft thinking off", None, records,
                                         is_complete, limit)}
    alive = list(trials)
    sizes = rung_sizes(limit, study.args.halving_rungs)
    for position, size in enumerate(sizes):
        for trial in alive:
            folder = study.args.out / "trials" / trial.trial_id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "params.json").write_text(json.dumps(
                {"choice": trial.choice, "soft_thinking": trial.params.model_dump(mode="json")},
                indent=2) + "\n", encoding="utf-8")
            records, is_complete = await study.run_trial(trial.trial_id, trial.params, size)
            results[trial.trial_id] = trial_result(trial.trial_id, trial.label(), trial.params,
                                                   records, is_complete, size)
        if position < len(sizes) - 1:
            ranked = rank([results[t.trial_id].row() for t in alive])
            keep = {row["trial"] for row in ranked[:max(1, len(ranked) // 2)]}
            alive = [trial for trial in alive if trial.trial_id in keep]
    return list(results.values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, type=api_base_url,
                        help="the server's URL (/v1 is added if missing)")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--model")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", choices=sorted(PROMPTS))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--limit", type=int, required=True, help="problems per full trial")
    parser.add_argument("--space", help="search space: inline JSON or a JSON/YAML file "
                                        "(default: the paper-style grid, see benchmarks/search_space.py)")
    parser.add_argument("--strategy", choices=["grid", "random"], default="grid")
    parser.add_argument("--trials", type=int, help="at most this many trials (random: how many)")
    parser.add_argument("--time-budget", type=positive_float,
                        help="seconds; no trial starts after it")
    parser.add_argument("--search-seed", type=int, default=0, help="seed of the random strategy")
    parser.add_argument("--halving-rungs", type=int, default=1,
                        help="successive halving over this many rungs (1: off)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--timeout", type=positive_float, default=1800)
    parser.add_argument("--out", type=Path, required=True, help="the search's folder")
    add_sampling_args(parser)
    args = parser.parse_args(argv)
    for name in ("limit", "trials", "concurrency", "halving_rungs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


async def _main(args) -> int:
    settings = settings_from_args(args, args.model or "")
    base = settings.soft_thinking or SoftThinkingParams()
    if settings.temperature == 0:
        raise SettingsError("--temperature must be > 0: the trials use soft thinking")
    space = load_space(args.space)
    validate_space(space, base)
    trials = expand(space, base, args.strategy, args.trials, args.search_seed)
    dataset = resolve_dataset(args.dataset, args.data_dir, args.task)
    dataset = Dataset(dataset.name, dataset.task, dataset.problems[:args.limit])
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(trials)} trials + baseline on {len(dataset.problems)} problems", file=sys.stderr)
    results = await search(Study(args, dataset, settings), trials)
    summary = write_leaderboard(results, args.out, len(dataset.problems))
    print((args.out / "leaderboard.md").read_text(encoding="utf-8"))
    if summary["recommended"] is None:
        print("no soft-thinking trial finished every problem: nothing recommended", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(_main(args), args, user_errors=(SpaceError,))


if __name__ == "__main__":
    sys.exit(main())
