"""A retracted request's state, rebuilt from its own records, equals the table row it lost."""

import os
import pickle
import random
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from request_settings import SWITCH, all_rows, request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.methods import method_id
from sglang_soft_thinking.records import RankRecords, RequestRecords, StepRecords
from sglang_soft_thinking.reprefill import Wanted, share
from sglang_soft_thinking.resume import RecordsMismatch, resume
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB, K_MAX = 12, 6
END = [10, 11]


def settings(**overrides) -> RequestSettings:
    return request_settings(**{"max_topk": 4, "think_end_ids": END, **overrides})


def random_logits(rng: random.Random) -> torch.Tensor:
    """Sometimes peaked (low entropy), sometimes flat, sometimes steering to the think-end."""
    logits = torch.tensor([rng.gauss(0, 1) for _ in range(VOCAB)])
    roll = rng.random()
    if roll < 0.3:
        logits[rng.randrange(VOCAB)] += 15.0
    elif roll < 0.45:
        logits[END[0]] += 15.0
    elif roll < 0.6:
        logits[END[1]] += 15.0
    return logits


def row_state(table, row):
    names = ("phase", "force_kind", "forced_pos", "low_entropy_run", "thinking_steps", "has_concept",
             "switch_mode", "switch_stay", "switch_reference", "switch_count", "switch_inject")
    state = {name: getattr(table, name)[row].item() for name in names}
    state["recent"] = [t for t in table.recent[row].tolist() if t >= 0]
    return state


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("request_settings", [
    settings(),
    settings(entropy_threshold=0.5, length_threshold=2),
    settings(max_thinking_tokens=5),
    settings(max_thinking_tokens=0),
    settings(method=SWITCH, window_size=2, max_switch_count=3, top_k=1),
    settings(method=SWITCH, window_size=1, entropy_threshold=0.5, length_threshold=3),
    settings(method=method_id("think_router"), tau=0.5, top_k=3, entropy_threshold=0.5, length_threshold=2),
    settings(method=method_id("multiplex"), width=3, top_k=5, max_thinking_tokens=7),
    settings(method=method_id("discrete"), top_k=4, entropy_threshold=0.5, length_threshold=3),
    settings(method=method_id("mixture_of_inputs"), beta=0.5, top_k=4),
    settings(method=SWITCH, window_size=1, max_switch_count=1, cap_stages=2, min_p_absolute=True, top_k=3),
])
def test_state_rebuilt_from_records_equals_the_row(seed, request_settings):
    rng = random.Random(seed)
    table = SoftThinkingTable(3, k_max=K_MAX, device="cpu")
    table.admit([2], [request_settings])
    rows = torch.tensor([2])
    one = all_rows(1, 4, VOCAB, method=request_settings.method)
    records, tokens, concepts = RequestRecords(), [], []
    steps = rng.randrange(1, 30)
    for step in range(steps):
        result = soft_step(table, rows, random_logits(rng).unsqueeze(0), one)
        records.append(StepRecords(result, {0: 0})[0])
        tokens.append(result.tokens.item())
        feeds = table.has_concept[2].item()
        concepts.append((table.concept_ids[2].tolist(), table.concept_weights[2].tolist()) if feeds else None)
        expected = row_state(table, 2)
        # From the last thinking step's snapshot; and, at the end, every record replayed.
        for replay_all in (False, True) if step == steps - 1 else (False,):
            resumed = resume(request_settings, records, tokens, replay_all=replay_all)
            state = resumed.state
            switch = {f"switch_{name}": value for name, value in (state.method_state or {}).items()}
            assert {"phase": state.phase, "force_kind": state.force_kind, "forced_pos": state.forced_pos,
                    "low_entropy_run": state.low_entropy_run, "thinking_steps": state.thinking_steps,
                    "has_concept": resumed.fed[-1] is not None,
                    "switch_mode": 0, "switch_stay": 0, "switch_reference": 0.0, "switch_count": 0,
                    "switch_inject": -1, **switch,
                    "recent": list(state.recent)} == expected
        # Every position fed a concept token is rebuilt from that concept token.
        for fed, stored in zip(resumed.fed, concepts):
            assert (fed is None) == (stored is None)
            if fed is not None:
                ids, weights = fed
                assert ids == stored[0][:len(ids)]
                assert weights == pytest.approx(stored[1][:len(weights)], abs=0)


def test_admitting_a_resumed_state_continues_like_the_original_row():
    rng = random.Random(7)
    original = SoftThinkingTable(2, k_max=K_MAX, device="cpu")
    original.admit([0], [settings(entropy_threshold=0.5, length_threshold=4)])
    rows, one = torch.tensor([0]), all_rows(1, 4, VOCAB)
    records, tokens = RequestRecords(), []
    logits = [random_logits(rng) for _ in range(20)]
    for step_logits in logits[:10]:
        result = soft_step(original, rows, step_logits.unsqueeze(0), one)
        records.append(StepRecords(result, {0: 0})[0])
        tokens.append(result.tokens.item())
    resumed = resume(settings(entropy_threshold=0.5, length_threshold=4), records, tokens)
    moved = SoftThinkingTable(2, k_max=K_MAX, device="cpu")
    moved.admit([1], [settings(entropy_threshold=0.5, length_threshold=4)], [resumed.state])
    for step_logits in logits[10:]:
        a = soft_step(original, rows, step_logits.unsqueeze(0), one)
        b = soft_step(moved, torch.tensor([1]), step_logits.unsqueeze(0), one)
        assert (a.tokens.item(), a.kinds.item()) == (b.tokens.item(), b.kinds.item())


def test_records_that_do_not_cover_the_output_are_an_error():
    table = SoftThinkingTable(1, k_max=K_MAX, device="cpu")
    table.admit([0], [settings()])
    one_step = RequestRecords()
    result = soft_step(table, torch.tensor([0]), torch.randn(1, VOCAB), all_rows(1, 4, VOCAB))
    one_step.append(StepRecords(result, {0: 0})[0])
    with pytest.raises(RecordsMismatch):
        resume(settings(), one_step, [result.tokens.item(), 2])
    without = RequestRecords()
    without.append(None)
    with pytest.raises(RecordsMismatch):
        resume(settings(), without, [1])
    with pytest.raises(RecordsMismatch):
        resume(settings(), None, [1])


def thought(keeper: bool, steps: int = 25):
    """A soft request's records of ``steps`` steps as one rank keeps them, with its tokens."""
    rng = random.Random(3)
    table = SoftThinkingTable(1, k_max=K_MAX, device="cpu")
    table.admit([0], [settings(entropy_threshold=0.5, length_threshold=4)])
    records, tokens = RequestRecords(traced=True) if keeper else RankRecords(), []
    for _ in range(steps):
        result = soft_step(table, torch.tensor([0]), random_logits(rng).unsqueeze(0), all_rows(1, 4, VOCAB))
        records.append(StepRecords(result, {0: 0})[0])
        tokens.append(result.tokens.item())
    return records, tokens, table


def _share_rank(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        records, tokens, _ = thought(keeper=rank == 0)

        def broadcast(obj):
            box = [obj]
            dist.broadcast_object_list(box, src=0)
            return box[0]

        request = settings(entropy_threshold=0.5, length_threshold=4)
        wanted = [Wanted(row=1, settings=request, records=records, output_ids=tokens, new=True, start=0, stop=9),
                  Wanted(row=2, settings=request, records=records, output_ids=tokens, new=False, start=9, stop=25),
                  # Records that do not cover the output: the keeper's fault, every rank's error.
                  Wanted(row=4, settings=request, records=records, output_ids=tokens + [1], new=True, start=0,
                         stop=4)]
        results[rank] = share(wanted, keeps_records=rank == 0, broadcast=broadcast)
        results[f"none {rank}"] = share([], keeps_records=rank == 0, broadcast=None)  # no collective at all
    finally:
        dist.destroy_process_group()


def test_the_rank_with_the_records_plans_a_re_prefill_for_every_rank():
    """Only rank 0 keeps the records; both ranks end with rank 0's resumed state and chunk
    inputs, equal to a resume from the records and the table row the request lost."""
    init_file = os.path.join(tempfile.mkdtemp(), "init")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_share_rank, args=(init_file, results), nprocs=2, join=True)
        found = dict(results)
    assert found[0] == found[1] and found["none 0"] == found["none 1"] == {}
    records, tokens, table = thought(keeper=True)
    resumed = resume(settings(entropy_threshold=0.5, length_threshold=4), records, tokens)
    first, later, faulty = found[0][1], found[0][2], found[0][4]
    assert first.state == resumed.state == row_state_of(table, 0) and first.error is None
    assert later.state is None
    fed = [(i, *resumed.fed[i]) for i in range(25) if resumed.fed[i] is not None]
    assert first.fed + later.fed == fed and fed and all(i < 9 for i, _, _ in first.fed)
    assert faulty.error is not None and "25 soft-thinking records for 26 output tokens" in faulty.error
    with pytest.raises(RecordsMismatch):  # a rank without the records cannot resume
        resume(settings(), RankRecords(), [])


def row_state_of(table, row):
    from sglang_soft_thinking.table import RowState

    state = row_state(table, row)
    return RowState(phase=state["phase"], force_kind=state["force_kind"], forced_pos=state["forced_pos"],
                    low_entropy_run=state["low_entropy_run"], thinking_steps=state["thinking_steps"],
                    recent=tuple(state["recent"]), method_state={})


def test_the_concept_token_stays_in_the_scheduler_unless_the_trace_was_asked_for():
    table = SoftThinkingTable(3, k_max=K_MAX, device="cpu")
    table.admit([0, 1], [settings(), settings()])
    result = soft_step(table, torch.tensor([0, 1]), torch.randn(2, VOCAB), all_rows(2, 4, VOCAB))
    # Batch rows 3 and 5 hold the two soft requests; batch row 4 is a plain one.
    step = StepRecords(result, {3: 0, 5: 1})
    assert step[4] is None
    local, traced = RequestRecords(), RequestRecords(traced=True)
    local.append(step[3])
    traced.append(step[5])
    assert local.input_of(0)[0] and local.input_of(0)[1], "the scheduler keeps the concept token to resume from"
    assert pickle.loads(pickle.dumps(local[0:1])) == [(local[0][0], local[0][1], None, None, local[0][4])]
    assert pickle.loads(pickle.dumps(traced[0:1]))[0][2:4] == traced.input_of(0)
