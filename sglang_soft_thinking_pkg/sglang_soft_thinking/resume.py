"""Resuming a request after SGLang retracted it: its state, rebuilt from its own records.

Under memory pressure SGLang retracts running requests: it frees their KV and their
request row, and later prefills them again from ``prompt + output_ids``. The table row
of a soft-thinking request is gone by then (another request may have used it), so the
request's progress is rebuilt here from what the request itself carries: its output ids
and its per-token records (output.py).

:func:`resume` replays the request's steps through the same code the device runs: the
phase machine (phases.advance) and its method's state step (``Method.advance``), on CPU
tensors of one row. It checks every step against its record (the kind and the token the
machine would have written), and says which output tokens were fed back as concept tokens
(a record whose input is more than the written token alone), so that the re-prefill
rebuilds those positions from their ids and weights rather than from the written token.
No SGLang import.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang_soft_thinking.output import STEP_KINDS
from sglang_soft_thinking.phases import (
    KIND_METHOD_END, MAX_END_TOKENS, PHASE_THINKING, PhaseRules, PhaseState, StepTokens, advance,
)
from sglang_soft_thinking.records import KIND_NAMES
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.table import RowState, initial_row_state


@dataclass
class Resumed:
    state: RowState
    # Per output token: the input (ids, weights) it was fed as, or None where the token
    # itself was the input.
    fed: list[tuple[list[int], list[float]] | None]


class RecordsMismatch(RuntimeError):
    """The request's records do not cover its output: its state cannot be rebuilt."""


def _one(value, dtype=torch.int64) -> torch.Tensor:
    return torch.tensor([value], dtype=dtype)


def resume(settings: RequestSettings, records: list | None, output_ids: list[int]) -> Resumed:
    records = list(records or [])
    if len(records) != len(output_ids):
        raise RecordsMismatch(f"{len(records)} soft-thinking records for {len(output_ids)} output tokens")
    method = settings.method_object
    start = initial_row_state(settings)
    state = PhaseState(*(_one(getattr(start, name)) for name in
                         ("phase", "force_kind", "forced_pos", "low_entropy_run", "thinking_steps")),
                       recent=torch.full((1, MAX_END_TOKENS), -1, dtype=torch.int64))
    ends = list(settings.think_end_ids)
    rules = PhaseRules(entropy_threshold=_one(settings.entropy_threshold, torch.float32),
                       length_threshold=_one(settings.length_threshold),
                       max_thinking_tokens=_one(settings.max_thinking_tokens),
                       end_ids=torch.tensor([ends + [0] * (MAX_END_TOKENS - len(ends))]),
                       end_len=_one(len(ends)))
    values = settings.column_values()

    def setting(name: str) -> torch.Tensor:
        value = values[name]
        return _one(value, torch.float32 if isinstance(value, float) else torch.int64)

    method_state = {c.name: _one(c.initial, c.dtype) for c in method.state}
    end_kind = _one(KIND_METHOD_END + settings.method)
    fed: list[tuple[list[int], list[float]] | None] = []
    for record, token in zip(records, output_ids):
        kind = record[0] if record is not None else None
        stepped = kind in STEP_KINDS
        entropy = _one(record[1] if stepped else 0.0, torch.float32)
        thinking = int(state.phase) == PHASE_THINKING
        method_end, moved_state = None, method_state
        if thinking and stepped:
            first = state.thinking_steps == 0
            moved_state, method_end = method.advance(method_state, entropy, first, setting)
        no_end = torch.zeros(1, dtype=torch.bool)
        moved = advance(state, rules, StepTokens(
            thought=_one(token), answer=_one(token), entropy=entropy,
            method_end=no_end if method_end is None else method_end, method_end_kind=end_kind))
        replayed = KIND_NAMES.get(int(moved.kinds))
        if replayed != kind or int(moved.tokens) != int(token):
            raise RecordsMismatch(f"record kind {kind!r} for token {token}; the replay gives "
                                  f"{replayed!r} writing {int(moved.tokens)}")
        concept = None
        if thinking:
            method_state = moved_state
            if record[2] is None or record[3] is None:
                raise RecordsMismatch("a thinking step's record lacks its input")
            ids, weights = list(record[2]), list(record[3])
            # The written token alone is fed as itself, as the device does (step.feeds_token).
            if not moved.end_hit and not (len(ids) == 1 and ids[0] == int(token)):
                concept = (ids, weights)
        fed.append(concept)
        state = moved.state
    recent = tuple(t for t in state.recent[0].tolist() if t >= 0)
    row = RowState(phase=int(state.phase), force_kind=int(state.force_kind), forced_pos=int(state.forced_pos),
                   low_entropy_run=int(state.low_entropy_run), thinking_steps=int(state.thinking_steps),
                   recent=recent, method_state={name: value.item() for name, value in method_state.items()})
    return Resumed(row, fed)
