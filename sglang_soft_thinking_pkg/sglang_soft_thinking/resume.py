"""Resuming a request after SGLang retracted it: its state, rebuilt from its own records.

Under memory pressure SGLang retracts running requests: it frees their KV and their
request row, and later prefills them again from ``prompt + output_ids``. The table row
of a soft-thinking request is gone by then (another request may have used it), so the
request's progress is rebuilt here from what the request itself carries: its output ids
and its per-token records (output.py, records.py).

A thinking step's record keeps the row's progress after the step as the device computed
it (its snapshot). :func:`resume` starts from the last thinking step's snapshot and runs
the steps after it through the same code the device runs: the phase machine
(phases.advance) and the method's state step (``Method.advance``), on CPU tensors of one
row, checking each against its record (the kind, and the token the machine writes). It
also replays that last thinking step from the one before it and checks that the result is
its snapshot. So a resume costs a few steps however long the thought, and every step it
relies on was computed by the device or checked against it. ``replay_all`` replays every
record from the beginning instead (the tests compare both with the device's row).

It also says which output tokens were fed back as concept tokens (a thinking step whose
input is more than its written token alone), so that the re-prefill rebuilds those positions
from their ids and weights rather than from the written token. No SGLang import.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from sglang_soft_thinking.output import ANSWER, STEP_KINDS, THINK_END
from sglang_soft_thinking.phases import (
    KIND_METHOD_END, MAX_END_TOKENS, PHASE_ANSWER, PHASE_THINKING, PhaseRules, PhaseState, StepTokens, advance,
)
from sglang_soft_thinking.records import KIND_NAMES
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.table import RowState, initial_row_state, state_column_name

_PHASE_NAMES = ("phase", "force_kind", "forced_pos", "low_entropy_run", "thinking_steps")


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


class _Replay:
    """One request's state on CPU tensors of one row, stepped by the device's own code."""

    def __init__(self, settings: RequestSettings):
        self.settings, self.method = settings, settings.method_object
        ends = list(settings.think_end_ids)
        self.rules = PhaseRules(entropy_threshold=_one(settings.entropy_threshold, torch.float32),
                                length_threshold=_one(settings.length_threshold),
                                max_thinking_tokens=_one(settings.max_thinking_tokens),
                                end_ids=torch.tensor([ends + [0] * (MAX_END_TOKENS - len(ends))]),
                                end_len=_one(len(ends)))
        self.values = settings.column_values()
        self.end_kind = _one(KIND_METHOD_END + settings.method)
        self.start_from(initial_row_state(settings), [])

    def start_from(self, row: RowState, output_ids: list[int]) -> None:
        recent = [int(t) for t in output_ids][-MAX_END_TOKENS:]
        self.state = PhaseState(*(_one(getattr(row, name)) for name in _PHASE_NAMES),
                                recent=torch.tensor([[-1] * (MAX_END_TOKENS - len(recent)) + recent]))
        initial = {c.name: c.initial for c in self.method.state}
        initial.update(row.method_state or {})
        self.method_state = {c.name: _one(initial[c.name], c.dtype) for c in self.method.state}

    def setting(self, name: str) -> torch.Tensor:
        if name in ("end_ids", "end_len"):
            return getattr(self.rules, name)
        value = self.values[name]
        return _one(value, torch.float32 if isinstance(value, float) else torch.int64)

    def step(self, record, token: int) -> None:
        """Advance by one output token and check it against its record."""
        kind = record[0] if record is not None else None
        stepped = kind in STEP_KINDS
        entropy = _one(record[1] if stepped else 0.0, torch.float32)
        thinking = int(self.state.phase) == PHASE_THINKING
        decided = None
        if thinking and stepped:
            decided = self.method.advance(self.method_state, entropy, self.state.thinking_steps == 0, self.setting)
        no_end = torch.zeros(1, dtype=torch.bool)
        moved = advance(self.state, self.rules, StepTokens(
            thought=_one(token), answer=_one(token), entropy=entropy,
            method_end=no_end if decided is None or decided.end is None else decided.end,
            method_end_kind=self.end_kind, hold_end=None if decided is None else decided.hold_end))
        replayed = KIND_NAMES.get(int(moved.kinds))
        if replayed != kind or int(moved.tokens) != int(token):
            raise RecordsMismatch(f"record kind {kind!r} for token {token}; the replay gives "
                                  f"{replayed!r} writing {int(moved.tokens)}")
        if decided is not None:
            self.method_state = decided.state
        self.state = moved.state

    def row(self) -> RowState:
        state = self.state
        return RowState(phase=int(state.phase), force_kind=int(state.force_kind), forced_pos=int(state.forced_pos),
                        low_entropy_run=int(state.low_entropy_run), thinking_steps=int(state.thinking_steps),
                        recent=tuple(t for t in state.recent[0].tolist() if t >= 0),
                        method_state={name: value.item() for name, value in self.method_state.items()})


def _snapshot_row(record, method) -> RowState:
    """The row's progress after a thinking step, as its record keeps it."""
    snapshot = record.snapshot
    return RowState(**{name: int(snapshot[name]) for name in _PHASE_NAMES},
                    method_state={c.name: (int if c.dtype == torch.int64 else float)(
                        snapshot[state_column_name(method, c)]) for c in method.state})


def resume(settings: RequestSettings, records: list | None, output_ids: list[int],
           replay_all: bool = False) -> Resumed:
    records = list(records or [])
    if len(records) != len(output_ids):
        raise RecordsMismatch(f"{len(records)} soft-thinking records for {len(output_ids)} output tokens")
    replay = _Replay(settings)
    steps = [i for i, r in enumerate(records) if r is not None and r[0] in STEP_KINDS]
    start = 0
    if steps and not replay_all and hasattr(records[steps[-1]], "snapshot"):
        last = steps[-1]
        if last > 0:  # the step before it, from its own snapshot, then the last one, checked
            replay.start_from(_snapshot_row(records[last - 1], replay.method), output_ids[:last])
        replay.step(records[last], output_ids[last])
        replayed = replay.row()
        if replayed != replace(_snapshot_row(records[last], replay.method), recent=replayed.recent):
            raise RecordsMismatch("the last thinking step does not replay to its own snapshot")
        start = last + 1
    for i in range(start, len(records)):
        if int(replay.state.phase) == PHASE_ANSWER:  # for good: the rest must be answer tokens
            if any(r is None or r[0] != ANSWER for r in records[i:]):
                raise RecordsMismatch("records of thinking after the answer began")
            break
        replay.step(records[i], output_ids[i])
    # The device's recent ids are the last ones written, whatever the phase.
    row = replace(replay.row(), recent=tuple(int(t) for t in output_ids[-MAX_END_TOKENS:]))
    return Resumed(row, [_fed(r, t) for r, t in zip(records, output_ids)])


def _fed(record, token: int) -> tuple[list[int], list[float]] | None:
    """What a thinking step's record says was fed next: its input, unless that was the
    written token itself (a think-end the model wrote, or an input of the token alone)."""
    if record is None or record[0] not in STEP_KINDS or record[0] == THINK_END:
        return None
    if record[2] is None or record[3] is None:
        raise RecordsMismatch("a thinking step's record lacks its input")
    ids, weights = list(record[2]), list(record[3])
    if len(ids) == 1 and ids[0] == int(token):
        return None
    return ids, weights
