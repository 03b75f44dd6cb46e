"""What the ranks' per-step agreement costs, and what the cross-rank check adds to it.

    .venv/bin/python -m benchmarks.rank_check --out benchmarks/results/rank_check_cpu.json

Two processes join a gloo group on this machine (tensor parallelism over two ranks, as
far as a CPU machine goes) and time, at each batch size, the median of:

* ``agree_ms``: the step's one all-reduce (agreement.py) without the check: [B, 2]
  float64 (flags and tokens), with its packing;
* ``agree_check_ms``: the same on a check step: [B, 2 + 4K] (the rows' inputs at the
  table's full width K), with the packing and the comparison;
* ``two_reduces_ms``: the earlier check on its own: MAX and MIN all-reduces of [B, 2K].

``check_extra_ms`` = agree_check - agree is what one check costs on top of the step's
agreement. Each is compared with the soft decode step measured on this machine at that
concurrency (``--latency``, benchmarks/results/latency_cpu.json, median time per output
token), and the smallest interval that keeps the amortised check under 0.5% of a step is
``ceil(check_extra_ms / (0.005 * step_ms))``. Not run in CI. Gloo between two processes on
two CPU cores is no model of NCCL between GPUs: the README reasons about those.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sglang_soft_thinking.agreement import agree, batch_inputs

from benchmarks.cli_types import existing_file, output_file, positive_int

K_MAX = 33  # the table's width at the default max_topk limit (32, one column more)


def _median_ms(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        dist.barrier()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _reduce(op):
    def run(tensor):
        dist.all_reduce(tensor, op=op)
        return tensor
    return run


def _rank(rank: int, init_file: str, batches: list[int], repeats: int, results) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        rows = []
        for batch in batches:
            flags = torch.zeros(batch, dtype=torch.int32)
            tokens = torch.randint(0, 49152, (batch,))
            ids = torch.randint(0, 49152, (batch, 10))
            weights = torch.rand(batch, 10)
            index = torch.arange(batch)
            reduce_max, reduce_min = _reduce(dist.ReduceOp.MAX), _reduce(dist.ReduceOp.MIN)
            wide_ids, wide_weights = batch_inputs(batch, index, ids, weights, K_MAX)
            packed = torch.cat([wide_ids.double(), wide_weights], dim=1)
            row = {
                "batch": batch,
                "agree_ms": _median_ms(lambda: agree(flags, tokens, reduce_max), repeats),
                "agree_check_ms": _median_ms(lambda: agree(flags, tokens, reduce_max, batch_inputs(
                    batch, index, ids, weights, K_MAX)), repeats),
                "two_reduces_ms": _median_ms(lambda: (reduce_max(packed.clone()), reduce_min(packed.clone())),
                                             repeats),
            }
            row["check_extra_ms"] = row["agree_check_ms"] - row["agree_ms"]
            rows.append(row)
        if rank == 0:
            results["rows"] = rows
    finally:
        dist.destroy_process_group()


def step_times_ms(latency: Path) -> dict[int, float]:
    """The soft decode step (median time per output token) by concurrency."""
    results = json.loads(latency.read_text())["results"]
    return {r["concurrency"]: 1000 * r["tpot_s"]["p50"] for r in results if r["mode"] == "soft"}


def run(batches: list[int], repeats: int, steps_ms: dict[int, float]) -> dict:
    init_file = os.path.join(tempfile.mkdtemp(), "init")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(init_file, batches, repeats, results), nprocs=2, join=True)
        rows = list(results["rows"])
    for row in rows:
        step_ms = steps_ms[row["batch"]]
        row["step_ms"] = step_ms
        row["agree_share_of_step"] = row["agree_ms"] / step_ms
        row["check_share_of_step"] = row["check_extra_ms"] / step_ms
        # The smallest interval whose amortised check stays under 0.5% of a step.
        row["interval_for_half_percent"] = max(1, math.ceil(max(row["check_extra_ms"], 0.0) / (0.005 * step_ms)))
    return {"config": {"backend": "gloo", "ranks": 2, "k_max": K_MAX, "repeats": repeats,
                       "cpu_count": os.cpu_count()}, "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=existing_file, default=Path("benchmarks/results/latency_cpu.json"),
                        help="the measured soft decode steps the costs are compared with")
    parser.add_argument("--repeats", type=positive_int, default=200)
    parser.add_argument("--out", type=output_file)
    args = parser.parse_args(argv)
    steps = step_times_ms(args.latency)
    results = run(sorted(steps), args.repeats, steps)
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
