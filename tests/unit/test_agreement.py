"""The ranks' shared decision per step (agreement.py), with two real ranks.

Two processes join a gloo group on this machine and make the step's one all-reduce: a
fault one rank meets on one row is known to both, which both abort, and the other rows
go on; the written tokens end equal; on a check step, rows whose inputs differ between
the ranks are found, rows that agree are not.
"""

import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sglang_soft_thinking.agreement import FLAG_FAULT, FLAG_INPUT, agree, batch_inputs


def _reduce_max(tensor):
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def _rank(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        # Step 1: rank 1 meets a fault on row 2 (an out-of-memory error, say); rank 0 finds
        # row 3's input not mixed. Rank 1 wrote another token for row 2 (its fallback).
        flags = torch.zeros(4, dtype=torch.int32)
        tokens = torch.tensor([11, 12, 13, 14])
        if rank == 1:
            flags[2] = FLAG_FAULT
            tokens[2] = 99
        else:
            flags[3] = FLAG_INPUT
        step = agree(flags, tokens, _reduce_max)
        # Step 2, a check step: rows 1 and 2 of the batch are soft (index), and rank 1's row 2
        # drifted in a weight; a third row, batch row 3, is soft on rank 0 only.
        ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
        weights = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]])
        index = torch.tensor([1, 2])
        if rank == 1:
            weights[1, 0] += 1e-3
        else:
            ids = torch.cat([ids, torch.tensor([[1, 2, 3]])])
            weights = torch.cat([weights, torch.tensor([[0.7, 0.2, 0.1]])])
            index = torch.tensor([1, 2, 3])
        inputs = batch_inputs(4, index, ids, weights, width=4)
        check = agree(torch.zeros(4, dtype=torch.int32), torch.tensor([1, 2, 3, 4]), _reduce_max, inputs)
        results[rank] = (step.flags.tolist(), step.tokens.tolist(), check.drifted.tolist(), check.flags.tolist())
    finally:
        dist.destroy_process_group()


def test_a_fault_on_one_rank_costs_its_row_on_every_rank_and_the_ranks_agree():
    init_file = os.path.join(tempfile.mkdtemp(), "init")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(init_file, results), nprocs=2, join=True)
        found = dict(results)
    assert found[0] == found[1]
    flags, tokens, drifted, check_flags = found[0]
    assert flags == [0, 0, FLAG_FAULT, FLAG_INPUT]  # the faulty row on both ranks; the rest go on
    assert tokens == [11, 12, 13, 14]  # the smaller token: both ranks write the same
    assert drifted == [False, False, True, True]
    assert check_flags == [0, 0, 0, 0]


def test_one_rank_alone_decides_alone():
    flags = torch.tensor([0, FLAG_FAULT], dtype=torch.int32)
    step = agree(flags, torch.tensor([3, 4]), lambda t: t,
                 batch_inputs(2, torch.tensor([0]), torch.tensor([[7, 8]]), torch.tensor([[0.9, 0.1]]), 2))
    assert step.flags.tolist() == [0, FLAG_FAULT] and step.tokens.tolist() == [3, 4]
    assert step.drifted.tolist() == [False, False]
