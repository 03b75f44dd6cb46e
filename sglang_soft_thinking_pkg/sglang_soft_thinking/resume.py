"""Resuming a request after SGLang retracted it: its state, rebuilt from its own records.

Under memory pressure SGLang retracts running requests: it frees their KV and their
request row, and later prefills them again from ``prompt + output_ids``. The table row
of a soft-thinking request is gone by then (another request may have used it), so the
request's progress is rebuilt here from what the request itself carries: its output ids
and its per-token records (output.py, records.py).

The records keep the row's progress after each of the last two thinking steps as the device
computed it (its snapshot). :func:`resume` starts from the one before the last thinking step
and runs the steps after it through the same code the device runs: the phase machine
(phases.advance) and the method's state step (``Method.advance``), on CPU tensors of one
row, checking each against its record (the kind, and the token the machine writes), and
checks that the last thinking step replays to its own snapshot. So a resume costs a few
steps however long the thought, and every step it relies on was computed by the device or
checked against it. ``replay_all`` replays every record from the beginning instead (the
tests compare both with the device's row).

Only the rank that sends outputs keeps the records, so only it resumes a request; it
shares the result with the other tensor-parallel ranks (reprefill.py).

It also says which output tokens were fed back as concept tokens (a thinking step whose
input is more than its written token alone), so that the re-prefill rebuilds those positions
from their ids and weights rather than from the written token; it reads them from the
records when asked, so a resumed request holds nothing more per token. A request whose
method feeds vectors (methods/latent.py) is not resumed: each of its inputs is computed from
the hidden state of the position before it, so no single re-prefill can rebuild them, and
the records do not keep them; it is refused with an error that says so. No SGLang import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from sglang_soft_thinking.output import ANSWER, STEP_KINDS, THINK_END
from sglang_soft_thinking.phases import (
    KIND_METHOD_END, MAX_END_TOKENS, PHASE_ANSWER, PHASE_THINKING, PhaseRules, PhaseState, StepTokens, advance,
)
from sglang_soft_thinking.records import KIND_NAMES, RequestRecords
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.table import RowState, initial_row_state, state_column_name

_PHASE_NAMES = ("phase", "force_kind", "forced_pos", "low_entropy_run", "thinking_steps")


class FedInputs:
    """Per output token (of those there were at the resume): the input (ids, weights) it was
    fed as, or None where the token itself was the input; read from the records on demand."""

    def __init__(self, records: RequestRecords, output_ids: Sequence[int]):
        # The request's own sequences, not copies: both only grow, so the first len() stay.
        self._records, self._output_ids, self._len = records, output_ids, len(output_ids)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> tuple[list[int], list[float]] | None:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("output token index out of range")
        kind = self._records.kind(index)
        if kind not in STEP_KINDS or kind == THINK_END:  # a think-end the model wrote feeds itself
            return None
        ids, weights = self._records.input_of(index)
        if len(ids) == 1 and ids[0] == int(self._output_ids[index]):  # the token alone
            return None
        return ids, weights

    def __iter__(self):
        return (self[i] for i in range(len(self)))


@dataclass
class Resumed:
    state: RowState
    fed: FedInputs


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

    def step(self, kind: str | None, entropy: float | None, token: int) -> None:
        """Advance by one output token and check it against its record's kind."""
        stepped = kind in STEP_KINDS
        entropy = _one(entropy if stepped else 0.0, torch.float32)
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


def _snapshot_row(snapshot: dict[str, float], method) -> RowState:
    """The row's progress after a thinking step, as its record keeps it."""
    return RowState(**{name: int(snapshot[name]) for name in _PHASE_NAMES},
                    method_state={c.name: (int if c.dtype == torch.int64 else float)(
                        snapshot[state_column_name(method, c)]) for c in method.state})


def resume(settings: RequestSettings, records: RequestRecords | None, output_ids: Sequence[int],
           replay_all: bool = False) -> Resumed:
    """The request's state after ``output_ids``, from its ``records`` (one per output token)."""
    if records is not None and not isinstance(records, RequestRecords):
        raise RecordsMismatch("this rank keeps no records of the request's steps (records.RankRecords)")
    records = records if records is not None else RequestRecords()
    if settings.method_object.input_kind == "vector" and len(output_ids) > 0:
        raise RecordsMismatch(f"method {settings.method_object.name!r} feeds hidden-state vectors, which a "
                              "re-prefill after a retraction cannot rebuild (each comes from the step before "
                              "it); the request is aborted rather than resumed with other inputs")
    if len(records) != len(output_ids):
        raise RecordsMismatch(f"{len(records)} soft-thinking records for {len(output_ids)} output tokens")
    replay = _Replay(settings)
    kept = records.kept_steps()
    start = 0
    if kept and not replay_all:
        last = kept[-1]
        if last.index > 0:  # the step before it, from its own snapshot, then the last one, checked
            if len(kept) < 2 or kept[-2].index != last.index - 1:
                raise RecordsMismatch("the records keep no snapshot of the token before the last thinking step")
            recent = output_ids[max(0, last.index - MAX_END_TOKENS):last.index]
            replay.start_from(_snapshot_row(kept[-2].snapshot, replay.method), recent)
        replay.step(records.kind(last.index), last.entropy, output_ids[last.index])
        replayed = replay.row()
        if replayed != replace(_snapshot_row(last.snapshot, replay.method), recent=replayed.recent):
            raise RecordsMismatch("the last thinking step does not replay to its own snapshot")
        start = last.index + 1
    for i in range(start, len(records)):
        if int(replay.state.phase) == PHASE_ANSWER:  # for good: the rest must be answer tokens
            if any(records.kind(j) != ANSWER for j in range(i, len(records))):
                raise RecordsMismatch("records of thinking after the answer began")
            break
        kind = records.kind(i)
        replay.step(kind, records.entropy_of(i) if kind in STEP_KINDS else None, output_ids[i])
    # The device's recent ids are the last ones written, whatever the phase.
    row = replace(replay.row(), recent=tuple(int(t) for t in output_ids[-MAX_END_TOKENS:]))
    return Resumed(row, FedInputs(records, output_ids))
