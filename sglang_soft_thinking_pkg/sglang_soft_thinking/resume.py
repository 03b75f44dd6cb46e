"""Resuming a request after SGLang retracted it: its state, rebuilt from its own records.

Under memory pressure SGLang retracts running requests: it frees their KV and their
request row, and later prefills them again from ``prompt + output_ids``. The table row
of a soft-thinking request is gone by then (another request may have used it), so the
request's progress is rebuilt here from what the request itself carries: its output ids
and its per-token records (output.py), each ``(kind, entropy, ids, weights)``.

:func:`resume` replays the state machine of :meth:`SoftThinkingTable.step` (DESIGN §4)
over those records, on the host, and also says which output tokens were fed back as
concept tokens, so that the re-prefill rebuilds those positions from the concept
tokens' ids and weights rather than from the written token ``ids[0]``.
No SGLang import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.output import ANSWER, BUDGET, COLD_STOP, SWITCH_CAP, THINK
from sglang_soft_thinking.state import (
    KIND_BUDGET, KIND_COLD_STOP, KIND_SWITCH_CAP, MAX_END_TOKENS, PHASE_ANSWER, PHASE_FORCING,
    PHASE_THINKING, RequestSettings, RowState,
)
from sglang_soft_thinking.switch import MODE_EXPLICIT, SwitchState, switch_step

_FORCE_KINDS = {COLD_STOP: KIND_COLD_STOP, BUDGET: KIND_BUDGET, SWITCH_CAP: KIND_SWITCH_CAP}


@dataclass
class Resumed:
    state: RowState
    # Per output token: the concept token (ids, weights) that was the input of the next
    # position, or None where the token itself was the input.
    fed: list[tuple[list[int], list[float]] | None]


class RecordsMismatch(RuntimeError):
    """The request's records do not cover its output: its state cannot be rebuilt."""


def resume(settings: RequestSettings, records: list | None, output_ids: list[int]) -> Resumed:
    records = list(records or [])
    if len(records) != len(output_ids):
        raise RecordsMismatch(f"{len(records)} soft-thinking records for {len(output_ids)} output tokens")
    state = RowState.initial(settings)
    end = list(settings.think_end_ids[-MAX_END_TOKENS:])
    threshold = np.float32(settings.entropy_threshold)
    fed: list[tuple[list[int], list[float]] | None] = []
    for record, token in zip(records, output_ids):
        kind = record[0] if record is not None else None
        state.recent = (state.recent + [int(token)])[-MAX_END_TOKENS:]
        concept = None
        if kind == THINK and state.phase == PHASE_THINKING:
            concept = _think_step(state, settings, record, end, threshold)
        elif kind in _FORCE_KINDS and state.phase == PHASE_FORCING:
            state.forced_pos += 1
            if state.forced_pos >= len(end):
                state.phase = PHASE_ANSWER
        elif kind != ANSWER or state.phase != PHASE_ANSWER:
            raise RecordsMismatch(f"record kind {kind!r} in phase {state.phase}")
        state.concept_ids, state.concept_weights = concept if concept else (None, None)
        fed.append(concept)
    return Resumed(state, fed)


def _think_step(state: RowState, settings: RequestSettings, record, end: list[int],
                threshold: np.float32) -> tuple[list[int], list[float]] | None:
    """One thinking step; returns the concept fed back next (None after a think-end or an
    explicit step of the switch method, whose token itself is fed)."""
    _, entropy, ids, weights = record
    explicit, capped = False, False
    if settings.method == C.METHOD_SWITCH:
        explicit, capped = _switch_step(state, settings, entropy)
    state.thinking_steps += 1
    state.low_entropy_run = state.low_entropy_run + 1 if np.float32(entropy) < threshold else 0
    if end and state.recent[-len(end):] == end:
        state.phase = PHASE_ANSWER  # the model wrote the think-end string itself
        return None
    cold_stop = threshold > 0 and state.low_entropy_run >= settings.length_threshold
    budget = settings.max_thinking_tokens
    if cold_stop or capped or (budget >= 0 and state.thinking_steps >= budget):
        state.phase = PHASE_FORCING
        state.force_kind = KIND_COLD_STOP if cold_stop else KIND_SWITCH_CAP if capped else KIND_BUDGET
        state.forced_pos = 0
    if ids is None or weights is None:
        raise RecordsMismatch("a thinking step's record lacks its concept token")
    return None if explicit else (list(ids), list(weights))


def _switch_step(state: RowState, settings: RequestSettings, entropy: float) -> tuple[bool, bool]:
    """The switch method's step (switch.py) replayed on the host, from the recorded entropy,
    with the device step's own function; returns (explicit, capped)."""
    def one(value, dtype=torch.int64):
        return torch.tensor([value], dtype=dtype)

    before = SwitchState(one(state.switch_mode), one(state.switch_stay),
                         one(state.switch_reference, torch.float32), one(state.switch_count))
    first = one(state.thinking_steps == 0, torch.bool)
    after, capped = switch_step(before, one(entropy, torch.float32), first,
                                one(settings.window_size), one(settings.max_switch_count))
    state.switch_mode, state.switch_stay = int(after.mode), int(after.stay)
    state.switch_reference, state.switch_count = float(after.reference), int(after.count)
    return state.switch_mode == MODE_EXPLICIT, bool(capped)

