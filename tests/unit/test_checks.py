"""The cross-rank check of soft-thinking inputs (checks.py), with two real ranks.

Two processes join a gloo group on this machine and compare their rows' inputs through
real all-reduces: rows whose ids or weights differ between the ranks are found, rows that
agree are not.
"""

import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sglang_soft_thinking.checks import drifted_rows


def _rank(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        ids = torch.tensor([[5, 6, 7], [8, 9, 10], [1, 2, 3], [4, 5, 6]])
        weights = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
        if rank == 1:
            weights[1, 0] += 1e-3  # rank 1's row 1 drifted in a weight
            ids[2, 2] = 30  # and its row 2 in an id
            weights[3, 1] += 1e-6  # row 3 within rounding: not drift

        def reduce(op):
            def run(tensor):
                dist.all_reduce(tensor, op=op)
                return tensor
            return run

        drifted = drifted_rows(ids, weights, reduce(dist.ReduceOp.MAX), reduce(dist.ReduceOp.MIN))
        results[rank] = drifted.tolist()
    finally:
        dist.destroy_process_group()


def test_rows_whose_ranks_differ_are_found_on_every_rank():
    init_file = os.path.join(tempfile.mkdtemp(), "init")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(init_file, results), nprocs=2, join=True)
        found = dict(results)
    assert found[0] == found[1] == [False, True, True, False]
