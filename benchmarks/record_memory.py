"""What the scheduler keeps per thinking token, and what turning a step into records costs.

    .venv/bin/python -m benchmarks.record_memory [--out FILE.json]

A request SGLang retracts is resumed from its own per-token records, so the scheduler keeps
every thinking step's input (ids and weights) on the request, on every tensor-parallel
rank. Two representations are measured, with ``tracemalloc``, over the records of one
request's thinking steps (real concept tokens from ``step.soft_step``):

* ``lists``: a tuple ``(kind, entropy, ids, weights)`` of Python lists, the form the plugin
  kept before its records were made compact;
* ``compact``: the plugin's :class:`records.StepRecord` (float32 entropy, int32 ids and
  float32 weights in one bytes object; other kinds share one record).

It also times the host work of one step's records at batch 64 and 256 (``max_topk`` 10):
the ``lists`` way (``.tolist()`` of each result, a Python loop over batch x k) against the
plugin's (one copy, vectorised support, one bytes object per row).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path

import torch

from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.records import StepRecords
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import StepResult, soft_step
from sglang_soft_thinking.table import SoftThinkingTable

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


def bytes_per_token(records_of) -> float:
    """Memory the records of 2000 thinking tokens hold, per token."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = records_of()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / len(kept)


def memory(max_topk: int) -> dict:
    results = step_results(1, max_topk, 40)
    tokens = 2000
    lists = bytes_per_token(lambda: [as_lists(results[i % 40], 0) for i in range(tokens)])
    compact = bytes_per_token(lambda: [StepRecords(results[i % 40], {0: 0})[0] for i in range(tokens)])
    return {"max_topk": max_topk, "lists_bytes_per_token": round(lists, 1),
            "compact_bytes_per_token": round(compact, 1), "ratio": round(lists / compact, 2)}


def host_time(batch: int, repeats: int = 20) -> dict:
    result = step_results(batch, 10, 1)[0]
    position_of = {i: i for i in range(batch)}

    def lists():
        return [as_lists(result, row) for row in range(batch)]

    def compact():
        records = StepRecords(result, position_of)
        return [records[row] for row in range(batch)]

    out = {"batch": batch}
    for name, fn in (("lists_ms", lists), ("compact_ms", compact)):
        fn()
        began = time.perf_counter()
        for _ in range(repeats):
            fn()
        out[name] = round(1000 * (time.perf_counter() - began) / repeats, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = {"memory": [memory(k) for k in (5, 10, 20)], "host_time": [host_time(b) for b in (64, 256)]}
    for row in report["memory"]:
        print(f"max_topk {row['max_topk']:>2}: {row['lists_bytes_per_token']:.0f} bytes per thinking token "
              f"as lists, {row['compact_bytes_per_token']:.0f} compact (x{row['ratio']})")
    for row in report["host_time"]:
        print(f"batch {row['batch']:>3}: records of a step {row['lists_ms']:.2f} ms as lists, "
              f"{row['compact_ms']:.2f} ms compact")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
