"""A retracted request's state, rebuilt from its own records, equals the table row it lost."""

import pickle
import random

import pytest
import torch
from request_settings import SWITCH, all_rows, request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.methods import method_id
from sglang_soft_thinking.records import RequestRecords, StepRecords
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


def test_every_rank_resumes_alike_and_only_with_what_it_keeps():
    """The rank that sends outputs and the others keep different records; a retracted request
    resumes to the same state and is re-prefilled from the same inputs on each."""
    rng = random.Random(3)
    table = SoftThinkingTable(1, k_max=K_MAX, device="cpu")
    table.admit([0], [settings(entropy_threshold=0.5, length_threshold=4)])
    server, other = RequestRecords(traced=True), RequestRecords(for_server=False)
    tokens = []
    for _ in range(25):
        result = soft_step(table, torch.tensor([0]), random_logits(rng).unsqueeze(0), all_rows(1, 4, VOCAB))
        server.append(StepRecords(result, {0: 0})[0])
        other.append(StepRecords(result, {0: 0})[0])
        tokens.append(result.tokens.item())
    a = resume(settings(entropy_threshold=0.5, length_threshold=4), server, tokens)
    b = resume(settings(entropy_threshold=0.5, length_threshold=4), other, tokens)
    assert a.state == b.state == row_state_of(table, 0)
    assert list(a.fed) == list(b.fed) and any(fed is not None for fed in a.fed)
    with pytest.raises(RecordsMismatch):  # replaying every step needs every entropy: rank 0 only
        resume(settings(entropy_threshold=0.5, length_threshold=4), other, tokens, replay_all=True)


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
