"""Run a benchmark against a running OpenAI-compatible server; resumable.

    .venv/bin/python -m benchmarks.run --base-url http://127.0.0.1:30000/v1 \\
        --dataset gsm8k --limit 100 --soft-thinking '{"max_topk": 10}' --out runs/gsm8k_soft.jsonl

Each (problem, sample, repeat) is one streamed chat request; its line (the response, the
reasoning and answer text, token counts, latencies, the seed sent, the verdict) is appended
to ``--out`` as soon as it finishes. Run the same command again after an interruption and
only the missing samples are sent. ``--repeats R`` runs the whole configuration R times,
each repeat with its own seeds, into the same file. Summarise and compare runs with
``python -m benchmarks.report``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import openai
from tqdm import tqdm

from benchmarks.cli_types import positive_float
from benchmarks.client import TRANSPORT_ERRORS, SampleResponse, stream_chat_with_retries
from benchmarks.run_file import RunFile, RunFileError
from benchmarks.settings import (
    RunSettings,
    SettingsError,
    add_judge_args,
    add_sampling_args,
    api_base_url,
    judge_from_args,
    settings_from_args,
)
from evaluation.judge import Judge, review
from evaluation.problems import DatasetError, Problem
from evaluation.scoring import score
from evaluation.tasks import PROMPTS, Dataset, resolve_dataset

logger = logging.getLogger("benchmarks.run")


def record_of(dataset: Dataset, problem: Problem, sample_index: int, settings: RunSettings,
              sample: SampleResponse, judge: Judge | None = None, repeat: int = 0) -> dict:
    """The run file's line for one finished sample (format: benchmarks/README.md)."""
    response = sample.response
    choice = response["choices"][0]
    message = choice["message"]
    usage = response.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    completion_tokens = usage.get("completion_tokens", 0)
    answer, reasoning = message.get("content") or "", message.get("reasoning_content")
    full = (reasoning or "") + answer
    verdict = score(dataset.task, problem.gold, answer, full)
    verdict, judged = review(judge, dataset.task, verdict, problem.question, problem.gold,
                             answer, full)
    soft = choice.get("soft_thinking")
    return {
        "prompt_id": problem.prompt_id, "sample_index": sample_index, "repeat": repeat,
        "seed": settings.sample_seed(sample_index, repeat), "dataset": dataset.name, "task": dataset.task, "gold": problem.gold,
        "request": settings.request_json(), "response": response,
        "reasoning": reasoning, "answer": answer, "finish_reason": choice.get("finish_reason"),
        "usage": {"prompt_tokens": usage.get("prompt_tokens", 0),
                  "completion_tokens": completion_tokens,
                  "reasoning_tokens": details.get("reasoning_tokens") or 0,
                  "cached_tokens": cached},
        "soft_thinking": None if soft is None else {
            "thinking_tokens": soft.get("thinking_tokens"), "end_reason": soft.get("end_reason")},
        "latency": {"ttft_s": sample.ttft_s, "tpot_s": sample.tpot_s(completion_tokens),
                    "e2e_s": sample.e2e_s},
        "started_at": sample.started_at, "finished_at": sample.finished_at,
        "verdict": verdict.to_dict(), "judge": judged,
    }


class Progress:
    """The progress bar: done/total, running accuracy, output tokens/s of this session."""

    def __init__(self, run_file: RunFile, total: int, done: int):
        self.run_file = run_file
        self.bar = tqdm(total=total, initial=done, unit="sample", dynamic_ncols=True)
        self.started = time.monotonic()
        self.tokens = 0
        self._refresh()

    def add(self, record: dict) -> None:
        self.tokens += record["usage"]["completion_tokens"]
        self.bar.update(1)
        self._refresh()

    def _refresh(self) -> None:
        records = self.run_file.records.values()
        correct = sum(1 for r in records if r["verdict"]["correct"])
        accuracy = correct / len(records) if records else 0.0
        rate = self.tokens / max(time.monotonic() - self.started, 1e-9)
        self.bar.set_postfix(acc=f"{accuracy:.3f}", tok_s=f"{rate:.1f}")

    def close(self) -> None:
        self.bar.close()


def missing_samples(dataset: Dataset, settings: RunSettings,
                    run_file: RunFile) -> list[tuple[Problem, int, int]]:
    """(problem, sample index, repeat) of every sample the run file lacks, problem by problem."""
    return [(problem, index, repeat) for problem in dataset.problems
            for repeat in range(settings.num_repeats) for index in range(settings.num_samples)
            if (problem.prompt_id, index, repeat) not in run_file.records]


def _prefix_events(problem: Problem, leader_done: dict[str, asyncio.Event]
                   ) -> tuple[asyncio.Event | None, asyncio.Event | None]:
    """(the event this sample sets when done, the event it waits for): the first sample of a
    problem leads, the others wait for it."""
    if problem.prompt_id in leader_done:
        return None, leader_done[problem.prompt_id]
    leader_done[problem.prompt_id] = asyncio.Event()
    return leader_done[problem.prompt_id], None


async def run_samples(args, dataset: Dataset, settings: RunSettings, run_file: RunFile,
                      client: openai.AsyncOpenAI, judge: Judge | None = None,
                      prefix_first: bool = False) -> int:
    """Send every missing sample; returns how many failed after their retries.

    With ``prefix_first`` a problem's other samples wait until its first missing sample has
    finished, so the server has the prompt in its prefix cache when they arrive (self-
    consistency sends many samples of one prompt).
    """
    todo = missing_samples(dataset, settings, run_file)
    total = len(dataset.problems) * settings.num_samples * settings.num_repeats
    progress = Progress(run_file, total, total - len(todo))
    semaphore = asyncio.Semaphore(args.concurrency)
    leader_done: dict[str, asyncio.Event] = {}
    failures = 0

    async def one(problem: Problem, sample_index: int, repeat: int, leader: asyncio.Event | None,
                  wait_for: asyncio.Event | None) -> None:
        nonlocal failures
        if wait_for is not None:
            await wait_for.wait()
        body = settings.request_body(dataset.prompt(problem), sample_index, repeat)
        name = f"{problem.prompt_id}#{sample_index}" + (f"/r{repeat}" if repeat else "")
        try:
            async with semaphore:
                try:
                    sample = await stream_chat_with_retries(client, body, args.retries)
                except openai.APIStatusError as error:
                    if error.status_code < 500:  # the settings are wrong: stop the run
                        raise
                    failures += 1
                    logger.error("%s failed: %s", name, error)
                    return
                except TRANSPORT_ERRORS as error:
                    failures += 1
                    logger.error("%s failed: %s", name, error)
                    return
        finally:
            if leader is not None:
                leader.set()
        record = await asyncio.to_thread(record_of, dataset, problem, sample_index, settings,
                                         sample, judge, repeat)
        run_file.append(record)
        progress.add(record)

    no_events = (None, None)
    tasks = [asyncio.create_task(one(problem, index, repeat, *(
                 _prefix_events(problem, leader_done) if prefix_first else no_events)))
             for problem, index, repeat in todo]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        progress.close()
    return failures


def add_server_args(parser: argparse.ArgumentParser, base_url_required: bool = True) -> None:
    parser.add_argument("--base-url", required=base_url_required, type=api_base_url,
                        help="the server's URL, e.g. http://127.0.0.1:30000/v1 (/v1 is added if missing)")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--model", help="model name to send (default: the server's first model)")


def add_dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True,
                        help="a dataset name (see evaluation/tasks.py) or a .json/.jsonl path")
    parser.add_argument("--task", choices=sorted(PROMPTS),
                        help="the task of a dataset file (default: guessed from its name)")
    parser.add_argument("--data-dir", type=Path,
                        help="folder of the benchmark files (default: $SOFTTHINK_DATA_DIR, else datasets/)")
    parser.add_argument("--limit", type=int, help="only the first N problems")


def add_request_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retries", type=int, default=3,
                        help="retries per request on transport errors and 5xx")
    parser.add_argument("--timeout", type=positive_float, default=1800, help="seconds per request")


def check_run_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The counts every harness command shares; a bad one exits 2 naming the option."""
    for name in ("limit", "concurrency"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1")
    if args.retries < 0:
        parser.error("--retries must be 0 or more")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(parser)
    add_dataset_args(parser)
    add_request_args(parser)
    parser.add_argument("--out", type=Path, required=True, help="the run file (JSON lines)")
    add_sampling_args(parser)
    add_judge_args(parser)
    args = parser.parse_args(argv)
    check_run_args(parser, args)
    return args


def load_dataset(args: argparse.Namespace) -> Dataset:
    """``--dataset`` (with ``--data-dir``, ``--task``), cut to its first ``--limit`` problems."""
    dataset = resolve_dataset(args.dataset, args.data_dir, args.task)
    if args.limit is not None:
        dataset = Dataset(dataset.name, dataset.task, dataset.problems[:args.limit])
    return dataset


async def connect(args: argparse.Namespace,
                  settings: RunSettings) -> tuple[openai.AsyncOpenAI, RunSettings]:
    """A client of ``--base-url``, and the settings with the model filled in when not given."""
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key=args.api_key,
                                timeout=args.timeout, max_retries=0)
    if not settings.model:
        settings = replace(settings, model=(await client.models.list()).data[0].id)
    return client, settings


def open_run_file(path: Path, settings: RunSettings) -> RunFile:
    """The run file at ``path`` with its finished samples read; other settings are refused."""
    run_file = RunFile(path)
    run_file.open()
    run_file.check_settings(settings.request_json())
    return run_file


def count_done(dataset: Dataset, settings: RunSettings, run_file: RunFile) -> tuple[int, int]:
    """(finished, wanted) samples of this dataset and these settings in the run file."""
    total = len(dataset.problems) * settings.num_samples * settings.num_repeats
    return total - len(missing_samples(dataset, settings, run_file)), total


async def _main(args) -> int:
    # Everything the user typed is checked before the first request.
    settings = settings_from_args(args, args.model or "")
    judge_settings = judge_from_args(args)
    dataset = load_dataset(args)
    client, settings = await connect(args, settings)
    run_file = open_run_file(args.out, settings)
    started = time.monotonic()
    judge = Judge(judge_settings) if judge_settings is not None else None
    try:
        failures = await run_samples(args, dataset, settings, run_file, client, judge)
    finally:
        if judge is not None:
            judge.close()
    done, total = count_done(dataset, settings, run_file)
    print(f"{done}/{total} samples in {args.out} ({time.monotonic() - started:.0f} s this run)")
    if failures:
        print(f"{failures} samples failed after {args.retries} retries; "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def run_cli(main_coroutine, args, user_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run a harness command; errors the user can fix become one line and exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(main_coroutine)
    except (DatasetError, RunFileError, SettingsError, *user_errors) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except openai.APIStatusError as error:
        print(f"error: the server refused the request ({error.status_code}): "
              f"{error.message}", file=sys.stderr)
        return 2
    except openai.APIConnectionError as error:
        print(f"error: cannot reach {args.base_url} ({error})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; finished samples are in {args.out}", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(_main(args), args)


if __name__ == "__main__":
    sys.exit(main())
