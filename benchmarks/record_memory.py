"""What the scheduler keeps per thinking token, and what turning a step into records costs.

    .venv/bin/python -m benchmarks.record_memory [--out FILE.json]

A request SGLang retracts is re-prefilled from its own per-token records: the rank that
sends outputs to the server keeps each thinking step's input (ids and weights), entropy and
pending count, and shares a resume with the other tensor-parallel ranks, which keep nothing
per token (reprefill.py). Measured with ``tracemalloc`` over the records of one request's
2000 thinking steps (real concept tokens from ``step.soft_step``, every candidate kept):

* ``lists``: a tuple ``(kind, entropy, ids, weights)`` of Python lists per token, the form
  the plugin kept before its records were made compact;
* ``rank0`` / ``rank0_trace``: the plugin's :class:`records.RequestRecords` on the rank that
  sends outputs, for a request without and with ``return_trace`` (the scheduler keeps the
  same for both: the trace decides only what goes to the server);
* ``other_rank``: :class:`records.RankRecords`, what a rank that sends no outputs keeps.

It also times the host work of one step's records at batch 64 and 256 (``max_topk`` 10):
the ``lists`` way (``.tolist()`` of each result, a Python loop over batch x k) against the
plugin's (one copy, vectorised support, each row appended to its request's arrays).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import torch

from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.records import RankRecords, RequestRecords, StepRecords
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import StepResult, soft_step
from sglang_soft_thinking.table import SoftThinkingTable

from benchmarks.cli_types import output_file

VOCAB = 49152  # the default model's vocabulary


def step_results(batch: int, max_topk: int, steps: int) -> list[StepResult]:
    """Real thinking steps of ``batch`` requests (no Cold Stop, no budget)."""
    settings = [RequestSettings.build(temperature=0.7, top_p=0.95, min_p=0.001, max_topk=max_topk,
                                      think_end_ids=(1, 2, 3), seed=i, after_top_k=30) for i in range(batch)]
    table = SoftThinkingTable(batch, 33, "cpu")
    table.admit(list(range(batch)), settings)
    soft = group_soft_rows(list(range(batch)), settings, VOCAB)
    rows = torch.tensor(soft.index)
    torch.manual_seed(0)
    return [soft_step(table, rows, 4 * torch.randn(batch, VOCAB), soft, torch.full((batch,), 20 + s))
            for s in range(steps)]


def as_lists(result: StepResult, row: int) -> tuple:
    """The ``lists`` record of one row, built the way the plugin built it before."""
    ids, weights = result.ids[row].tolist(), result.weights[row].tolist()
    support = max((j + 1 for j, w in enumerate(weights) if w > 0), default=0)
    return ("think", result.entropy[row].item(), ids[:support], weights[:support])


def bytes_per_token(records_of, tokens: int) -> float:
    """Memory the records of ``tokens`` thinking tokens hold, per token."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = records_of()  # noqa: F841 (held while measured)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return grown / tokens


def request_records(results: list[StepResult], tokens: int, traced: bool,
                    for_server: bool) -> RequestRecords | RankRecords:
    records = RequestRecords(traced=traced) if for_server else RankRecords()
    for i in range(tokens):
        records.append(StepRecords(results[i % len(results)], {0: 0})[0])
    return records


def memory(max_topk: int, tokens: int = 2000) -> dict:
    results = step_results(1, max_topk, 40)
    out = {"max_topk": max_topk,
           "mean_candidates": round(float((torch.stack([r.weights[0] for r in results]) > 0).sum(1).float().mean()), 2),
           "lists_bytes_per_token": bytes_per_token(
               lambda: [as_lists(results[i % 40], 0) for i in range(tokens)], tokens)}
    for name, traced, for_server in (("rank0", False, True), ("rank0_trace", True, True),
                                     ("other_rank", False, False)):
        out[f"{name}_bytes_per_token"] = bytes_per_token(
            lambda: request_records(results, tokens, traced, for_server), tokens)
    return {key: round(value, 1) if isinstance(value, float) else value for key, value in out.items()}


def host_time(batch: int, repeats: int = 50) -> dict:
    """The fastest of ``repeats`` runs (the machine may be shared), in milliseconds."""
    result = step_results(batch, 10, 1)[0]
    position_of = {i: i for i in range(batch)}
    requests = [RequestRecords() for _ in range(batch)]

    def lists():
        return [as_lists(result, row) for row in range(batch)]

    def compact():
        records = StepRecords(result, position_of)
        for row in range(batch):
            requests[row].append(records[row])

    out = {"batch": batch}
    for name, fn in (("lists_ms", lists), ("compact_ms", compact)):
        fn()
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - began)
        out[name] = round(1000 * best, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=output_file, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = {"memory": [memory(k) for k in (5, 10, 20)], "host_time": [host_time(b) for b in (64, 256)]}
    for row in report["memory"]:
        print(f"max_topk {row['max_topk']:>2}: bytes per thinking token: {row['lists_bytes_per_token']:.0f} as lists; "
              f"rank 0 {row['rank0_bytes_per_token']:.0f} ({row['rank0_trace_bytes_per_token']:.0f} with "
              f"return_trace); other ranks {row['other_rank_bytes_per_token']:.0f}")
    for row in report["host_time"]:
        print(f"batch {row['batch']:>3}: records of a step {row['lists_ms']:.2f} ms as lists, "
              f"{row['compact_ms']:.2f} ms compact")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
