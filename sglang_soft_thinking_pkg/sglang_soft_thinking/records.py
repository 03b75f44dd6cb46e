"""The engine's per-token records: built from a step on the host, kept per request in flat arrays.

SGLang keeps a list per request under ``req.customized_info``, appends to it the element
each step's ``logits_output.customized_info`` holds for the request's batch row, and sends
slices of it to the server (``meta_info["soft_thinking"]``). For a soft-thinking request that
list is a :class:`RequestRecords` (hooks/results.py puts it there before the first append):
a few flat arrays, no Python object per token. On the wire a record is a plain tuple
``(kind, entropy, ids, weights, pending)`` (see output.py for what each means), whose ids and
weights are sent only to requests that asked for their trace.

What a request keeps, on the rank that sends outputs to the server (:func:`sends_outputs`),
per output token: its kind (1 byte); per thinking step, its input (int32 ids and float32
weights of the candidates that weigh something, and their count), its entropy and pending
count. A request SGLang retracts is re-prefilled from those inputs (resume.py): that rank
plans the re-prefill and shares it with the others (reprefill.py), so every other
tensor-parallel rank keeps only a :class:`RankRecords`: the count of records and the last
one's kind, nothing per token. The row's progress after a step (its snapshot) is kept for
the last two thinking steps only, which is all a resume starts from.
No SGLang import.
"""

from __future__ import annotations

import logging
from array import array
from typing import NamedTuple

import numpy as np
import torch

from sglang_soft_thinking import faults
from sglang_soft_thinking.agreement import FLAG_DRIFT, FLAG_FAULT, FLAG_INPUT
from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.output import ANSWER, BUDGET, COLD_STOP, ERROR, THINK, THINK_END, VECTOR
from sglang_soft_thinking.phases import (
    KIND_ANSWER, KIND_BUDGET, KIND_COLD_STOP, KIND_ERROR_DRIFT, KIND_ERROR_INPUT, KIND_METHOD_END, KIND_THINK,
    KIND_THINK_END,
)
from sglang_soft_thinking.step import StepResult
from sglang_soft_thinking.table import SNAPSHOT_COLUMNS
from sglang_soft_thinking.transfer import HostCopy

logger = logging.getLogger(__name__)
_SNAPSHOT = len(SNAPSHOT_COLUMNS)
NO_RECORD = 255  # the kind code of an output token without a record (a request aborted mid-step)
# Host-side kind codes of error records no device step writes.
KIND_FAULT, KIND_READ_FAULT = 253, 254

KIND_NAMES = {KIND_THINK: THINK, KIND_THINK_END: THINK_END, KIND_COLD_STOP: COLD_STOP, KIND_BUDGET: BUDGET,
              KIND_ANSWER: ANSWER, KIND_ERROR_INPUT: ERROR, KIND_ERROR_DRIFT: ERROR,
              KIND_FAULT: ERROR, KIND_READ_FAULT: ERROR,
              **{KIND_METHOD_END + i: m.end_reason for i, m in enumerate(REGISTRY) if m.end_reason}}
_STEP_CODES = (KIND_THINK, KIND_THINK_END)  # the kinds whose record holds a step's entropy and input
# One shared record per kind that carries nothing per token; an error record says why.
_SHARED = {code: (name, None, None, None, 0) for code, name in KIND_NAMES.items() if code not in _STEP_CODES}
_SHARED[KIND_ERROR_INPUT] = (ERROR, "a concept token was not mixed into the model's input", None, None, 0)
_SHARED[KIND_ERROR_DRIFT] = (ERROR, "the tensor-parallel ranks' soft-thinking states differ", None, None, 0)
# A row some rank flagged as faulty this step (agreement.py); the rank that met the fault
# names it on the request (hooks/results.py).
FAULT_RECORD = _SHARED[KIND_FAULT] = (
    ERROR, "a fault in the plugin's step (on this or another tensor-parallel rank)", None, None, 0)
READ_FAULT_RECORD = _SHARED[KIND_READ_FAULT] = (ERROR, "its record of the step could not be read", None, None, 0)
_SHARED[NO_RECORD] = None
_FLAG_RECORDS = {FLAG_FAULT: FAULT_RECORD, FLAG_INPUT: _SHARED[KIND_ERROR_INPUT],
                 FLAG_DRIFT: _SHARED[KIND_ERROR_DRIFT]}
# An error record given whole (a flagged row, a record that could not be read) -> its code.
_ERROR_CODES = {record: code for code, record in _SHARED.items() if record is not None and record[0] == ERROR}


def sends_outputs(pp_rank: int, attn_tp_rank: int, attn_cp_rank: int) -> bool:
    """Whether a scheduler with these ranks sends its outputs to the server (SGLang 0.5.23 opens
    the channel to the detokenizer only on the first rank of each of these groups): only that
    scheduler keeps a request's records token by token."""
    return pp_rank == 0 and attn_tp_rank == 0 and attn_cp_rank == 0


class _HostStep:
    """One step's results on the host, by position among the step's soft rows; each row's
    input as bytes (int32 ids, float32 weights) to append from without a copy."""

    def __init__(self, packed: np.ndarray, k: int):
        self.kinds = packed[:, 0].astype(np.int64).tolist()
        self.pending = packed[:, 1].astype(np.int64).tolist()
        self.entropy = packed[:, 2].tolist()
        self.vector = (packed[:, 3] > 0).tolist()  # the step's input was a vector (ids, weights: its trace)
        self.snapshot = packed[:, 4:4 + _SNAPSHOT].tolist()
        ids = np.ascontiguousarray(packed[:, 4 + _SNAPSHOT:4 + _SNAPSHOT + k])  # int32 bits
        weights = np.ascontiguousarray(packed[:, 4 + _SNAPSHOT + k:])
        # Zero weights come last (unused columns, dropped candidates); a weight may be
        # negative (selar's push away from its top-1 token; a vector step's cosine), so the
        # support is the nonzero ones.
        nonzero = weights != 0
        self.support = np.where(nonzero.any(axis=1), k - np.argmax(nonzero[:, ::-1], axis=1), 0).tolist()
        self.row_bytes = 4 * k
        self.ids, self.weights = memoryview(ids.tobytes()), memoryview(weights.tobytes())


class StepRow(NamedTuple):
    """A request's share of one step: what SGLang appends to the request's records."""

    step: _HostStep
    position: int


class StepRecords:
    """One batch step's records, indexed by batch row (None for a row without one).

    The step's results start for the host at once, in one copy and without a wait; SGLang
    indexes this once per request after it has waited for the step's sampled ids, so the
    copy is done by then. ``position_of`` maps a batch row to its place among the step's
    soft rows. :meth:`set_flags` gives the ranks' shared verdict on each batch row
    (agreement.py): a flagged row's record is an error record, for a plain row too.
    ``result`` is None when the soft rows' step failed (each of them is flagged).
    ``fault_positions``: soft rows whose reading on the host a test makes fail (faults.py).
    """

    def __init__(self, result: StepResult | None, position_of: dict[int, int],
                 fault_positions: frozenset[int] = frozenset()):
        self._position_of, self._fault_positions = position_of, fault_positions
        self._copy = self._width = None
        if result is not None:
            k = result.ids.shape[1]
            vector = (result.vector if result.vector is not None
                      else torch.zeros_like(result.kinds, dtype=torch.bool))
            packed = torch.cat([result.kinds.float().unsqueeze(1), result.pending.float().unsqueeze(1),
                                result.entropy.float().unsqueeze(1), vector.float().unsqueeze(1),
                                result.snapshot.float(),
                                result.ids.int().view(torch.float32), result.weights.float()], dim=1)  # one copy
            self._copy, self._width = HostCopy(packed), k
        self._host: _HostStep | None = None
        self._flags: HostCopy | None = None
        self._row_flags: list[int] | None = None

    def set_flags(self, flags: torch.Tensor) -> None:
        """flags [B] int (agreement.FLAG_*, 0 for none); their copy to the host starts now."""
        self._flags = HostCopy(flags.to(torch.int32))

    def _flag(self, row: int) -> int:
        if self._flags is None:
            return 0
        if self._row_flags is None:
            self._row_flags = self._flags.wait().tolist()
        return self._row_flags[row] if row < len(self._row_flags) else 0

    def __getitem__(self, row: int) -> StepRow | tuple | None:
        flag = self._flag(row)
        if flag:
            return _FLAG_RECORDS[flag]
        position = self._position_of.get(row)
        if position is None or self._copy is None:
            return None
        try:
            if position in self._fault_positions:
                raise faults.InjectedFault("a fault injected while reading a record")
            if self._host is None:
                self._host = _HostStep(self._copy.wait().numpy(), self._width)
        except Exception:
            logger.exception("soft thinking: a step's record could not be read")
            return READ_FAULT_RECORD
        return StepRow(self._host, position)


class KeptStep(NamedTuple):
    """A thinking step kept whole: its token's index, its entropy, the row's progress after it."""

    index: int
    entropy: float
    snapshot: dict[str, float]


def _code_of(item: StepRow | tuple | None) -> int:
    """The kind code of a record SGLang appends."""
    if item is None:
        return NO_RECORD
    if not isinstance(item, StepRow):  # an error record given whole
        return _ERROR_CODES[item]
    return item.step.kinds[item.position]


class RankRecords:
    """A soft request's records on a rank that sends no outputs, a list to SGLang that keeps
    nothing per token: how many records were appended and the last one's kind (which the
    batch hook reads: whether the request is answering, whether its step failed)."""

    def __init__(self):
        self._count, self._last = 0, NO_RECORD

    def append(self, item: StepRow | tuple | None) -> None:
        self._last = _code_of(item)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    @property
    def last_code(self) -> int:
        """The kind code of the last record (NO_RECORD before the first)."""
        return self._last

    def kind(self, index: int) -> str | None:
        """The kind of the last record (index -1 or len - 1); no other is kept here."""
        if index not in (-1, self._count - 1) or not self._count:
            raise IndexError(f"record {index}: a rank that sends no outputs keeps only its last record's kind")
        return None if self._last == NO_RECORD else KIND_NAMES[self._last]

    def __getitem__(self, index):
        """SGLang's output streamer slices the records on every rank, and sends what it built
        only from the rank that sends outputs: here each record reads as None."""
        if isinstance(index, slice):
            return [None] * len(range(*index.indices(self._count)))
        if not -self._count <= index < self._count:
            raise IndexError("record index out of range")
        return None


class RequestRecords:
    """One request's records, a list to SGLang: ``append`` a step's :class:`StepRow` (an error
    record, or None), ``len``, and indexing or slicing into wire tuples. ``traced``: the request asked for its
    trace (its wire tuples carry the inputs)."""

    def __init__(self, traced: bool = False):
        self.traced = traced
        self._kinds = bytearray()  # per output token: its kind code
        self._widths = array("B")  # per thinking step: the candidates in its input (wider if need be)
        self._ids, self._weights = array("i"), array("f")  # the steps' inputs, one after another
        self._entropy, self._pending = array("f"), bytearray()  # per thinking step
        self._vector = bytearray()  # per thinking step: 1 when its input was a vector
        # The last two thinking steps: (token index, entropy, the row's progress after it).
        self._kept: tuple = (None, None)
        self._cursor = (0, 0, 0)  # a token's index, the steps before it, the input values before it

    def append(self, item: StepRow | tuple | None) -> None:
        code = _code_of(item)
        self._kinds.append(code)
        if code not in _STEP_CODES:
            return
        step, p = item
        s = step.support[p]
        if s > 255 and self._widths.typecode == "B":
            self._widths = array("I", self._widths)
        self._widths.append(s)
        start = p * step.row_bytes
        self._ids.frombytes(step.ids[start:start + 4 * s])
        self._weights.frombytes(step.weights[start:start + 4 * s])
        self._entropy.append(step.entropy[p])
        self._pending.append(step.pending[p])
        self._vector.append(int(step.vector[p]))
        self._kept = (self._kept[-1], (len(self._kinds) - 1, step.entropy[p], step.snapshot[p]))

    def __len__(self) -> int:
        return len(self._kinds)

    @property
    def last_code(self) -> int:
        """The kind code of the last record (NO_RECORD before the first)."""
        return self._kinds[-1] if self._kinds else NO_RECORD

    def kind(self, index: int) -> str | None:
        """The kind of the record of output token ``index`` (None: it has none)."""
        code = self._kinds[index]
        return None if code == NO_RECORD else KIND_NAMES[code]

    def _locate(self, index: int) -> tuple[int, int]:
        """(thinking steps, input values) before output token ``index``, counted from the last
        token located: reads in order (SGLang's slices, a resume) cost their own length."""
        if index < 0:
            index += len(self)
        token, step, offset = self._cursor
        low, high = min(index, token), max(index, token)
        codes = self._kinds[low:high]
        count = sum(codes.count(code) for code in _STEP_CODES)
        if index >= token:
            offset += sum(self._widths[step:step + count])
            step += count
        else:
            step -= count
            offset -= sum(self._widths[step:step + count])
        self._cursor = (index, step, offset)
        return step, offset

    def input_of(self, index: int) -> tuple[list[int], list[float]]:
        """The input (ids, weights) of the thinking step at output token ``index``."""
        if self._kinds[index] not in _STEP_CODES:
            raise ValueError(f"output token {index} is not a thinking step")
        step, offset = self._locate(index)
        end = offset + self._widths[step]
        return self._ids[offset:end].tolist(), self._weights[offset:end].tolist()

    def entropy_of(self, index: int) -> float:
        """The entropy of the thinking step at output token ``index``."""
        for kept in self._kept:
            if kept is not None and kept[0] == index:
                return kept[1]
        return self._entropy[self._locate(index)[0]]

    def kept_steps(self) -> list[KeptStep]:
        """The last two thinking steps, oldest first, with the row's progress after each."""
        return [KeptStep(kept[0], kept[1], dict(zip(SNAPSHOT_COLUMNS, kept[2])))
                for kept in self._kept if kept is not None]

    def _wire(self, index: int, step: int, offset: int) -> tuple | None:
        code = self._kinds[index]
        if code not in _STEP_CODES:
            return _SHARED[code]
        ids = weights = None
        if self.traced:
            end = offset + self._widths[step]
            ids, weights = self._ids[offset:end].tolist(), self._weights[offset:end].tolist()
        if self._vector[step]:  # a sixth element only for a vector step (output.py)
            return KIND_NAMES[code], self._entropy[step], ids, weights, self._pending[step], VECTOR
        return KIND_NAMES[code], self._entropy[step], ids, weights, self._pending[step]

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, stride = index.indices(len(self))
            if stride != 1:
                return [self[i] for i in range(start, stop, stride)]
            if start >= stop:
                return []
            step, offset = self._locate(start)
            out = []
            for i in range(start, stop):
                out.append(self._wire(i, step, offset))
                if self._kinds[i] in _STEP_CODES:
                    offset += self._widths[step]
                    step += 1
            self._cursor = (stop, step, offset)
            return out
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("record index out of range")
        if self._kinds[index] not in _STEP_CODES:
            return _SHARED[self._kinds[index]]
        return self._wire(index, *self._locate(index))

    def __iter__(self):
        return iter(self[:])
