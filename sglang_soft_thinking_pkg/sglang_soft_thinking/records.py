"""The engine's per-token records, built from a step on the host, kept compact.

SGLang copies one object per output token from ``logits_output.customized_info`` onto the
request (and on to ``meta_info["soft_thinking"]``). Ours is a record, read as the tuple
``(kind, entropy, ids, weights, pending)`` (see output.py for what each means). A thinking
step's record holds its input (ids, weights): a request SGLang retracts is resumed from
its records (resume.py), so the scheduler keeps them for every request, in one bytes object
per step (float32 entropy, the row's progress after the step, int32 ids, float32 weights:
about 230 bytes at ``max_topk`` 10, against about 1 KB as Python lists). On the wire to the server a record is a plain tuple,
whose ids and weights are sent only to requests that asked for their trace. Records of
other kinds carry nothing per token and are shared. No SGLang import.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from sglang_soft_thinking import faults
from sglang_soft_thinking.agreement import FLAG_DRIFT, FLAG_FAULT, FLAG_INPUT

from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.output import ANSWER, BUDGET, COLD_STOP, ERROR, THINK, THINK_END
from sglang_soft_thinking.phases import (
    KIND_ANSWER, KIND_BUDGET, KIND_COLD_STOP, KIND_ERROR_DRIFT, KIND_ERROR_INPUT, KIND_METHOD_END, KIND_THINK,
    KIND_THINK_END,
)
from sglang_soft_thinking.step import StepResult
from sglang_soft_thinking.table import SNAPSHOT_COLUMNS
from sglang_soft_thinking.transfer import HostCopy

logger = logging.getLogger(__name__)
_SNAPSHOT = len(SNAPSHOT_COLUMNS)
_HEAD = 4 * (1 + _SNAPSHOT)  # bytes before the ids: the entropy and the snapshot

KIND_NAMES = {KIND_THINK: THINK, KIND_THINK_END: THINK_END, KIND_COLD_STOP: COLD_STOP, KIND_BUDGET: BUDGET,
              KIND_ANSWER: ANSWER, KIND_ERROR_INPUT: ERROR, KIND_ERROR_DRIFT: ERROR,
              **{KIND_METHOD_END + i: m.end_reason for i, m in enumerate(REGISTRY) if m.end_reason}}
_STEP_KINDS = (THINK, THINK_END)  # the kinds whose record holds a step's entropy and input
# One shared record per kind that carries nothing per token; an error record says why.
_SHARED = {kind: (name, None, None, None, 0) for kind, name in KIND_NAMES.items() if name not in _STEP_KINDS}
_SHARED[KIND_ERROR_INPUT] = (ERROR, "a concept token was not mixed into the model's input", None, None, 0)
_SHARED[KIND_ERROR_DRIFT] = (ERROR, "the tensor-parallel ranks' soft-thinking states differ", None, None, 0)
# A row some rank flagged as faulty this step (agreement.py); the rank that met the fault
# names it on the request (hooks/results.py).
FAULT_RECORD = (ERROR, "a fault in the plugin's step (on this or another tensor-parallel rank)", None, None, 0)
READ_FAULT_RECORD = (ERROR, "its record of the step could not be read", None, None, 0)
_FLAG_RECORDS = {FLAG_FAULT: FAULT_RECORD, FLAG_INPUT: _SHARED[KIND_ERROR_INPUT],
                 FLAG_DRIFT: _SHARED[KIND_ERROR_DRIFT]}


class StepRecord:
    """A thinking step's record; indexes like ``(kind, entropy, ids, weights, pending)``.
    ``snapshot`` is the row's progress after the step (table.SNAPSHOT_COLUMNS), which only
    the scheduler sees (resume.py)."""

    __slots__ = ("kind", "pending", "traced", "_data")

    def __init__(self, kind: str, pending: int, data: bytes, traced: bool):
        self.kind, self.pending, self.traced, self._data = kind, pending, traced, data

    @property
    def entropy(self) -> float:
        return float(np.frombuffer(self._data, np.float32, 1)[0])

    def _width(self) -> int:
        return (len(self._data) - _HEAD) // 8

    @property
    def snapshot(self) -> dict[str, int | float]:
        values = np.frombuffer(self._data, np.float32, _SNAPSHOT, 4).tolist()
        return dict(zip(SNAPSHOT_COLUMNS, values))

    @property
    def ids(self) -> list[int]:
        return np.frombuffer(self._data, np.int32, self._width(), _HEAD).tolist()

    @property
    def weights(self) -> list[float]:
        return np.frombuffer(self._data, np.float32, self._width(), _HEAD + 4 * self._width()).tolist()

    def as_tuple(self, with_input: bool = True) -> tuple:
        if with_input:
            return self.kind, self.entropy, self.ids, self.weights, self.pending
        return self.kind, self.entropy, None, None, self.pending

    def __getitem__(self, index):
        if isinstance(index, int) and 0 <= index < 5:
            return (lambda: self.kind, lambda: self.entropy, lambda: self.ids, lambda: self.weights,
                    lambda: self.pending)[index]()
        return self.as_tuple()[index]

    def __len__(self) -> int:
        return 5

    def __iter__(self):
        return iter(self.as_tuple())

    def __eq__(self, other) -> bool:
        return tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return repr(self.as_tuple())

    def __reduce__(self):
        # To the server: the input only for a request that asked for its trace.
        return tuple, (self.as_tuple(with_input=self.traced),)


class StepRecords:
    """One batch step's records, indexed by batch row.

    The step's results start for the host at once, in one copy and without a wait; SGLang
    indexes this once per request after it has waited for the step's sampled ids, so the
    copy is done by then. ``position_of`` maps a batch row to its place among the step's
    soft rows (a row that is not there has no record); ``traced`` are the batch rows whose
    requests asked for their trace. :meth:`set_flags` gives the ranks' shared verdict on
    each batch row (agreement.py): a flagged row's record is an error record, for a
    plain row too. ``result`` is None when the soft rows' step failed (each of them is
    flagged). ``fault_positions``: soft rows whose decoding on the host a test makes fail
    (faults.py).
    """

    def __init__(self, result: StepResult | None, position_of: dict[int, int],
                 traced: frozenset[int] = frozenset(), fault_positions: frozenset[int] = frozenset()):
        self._position_of, self._traced, self._fault_positions = position_of, traced, fault_positions
        self._copy = self._width = None
        if result is not None:
            k = result.ids.shape[1]
            packed = torch.cat([result.kinds.float().unsqueeze(1), result.pending.float().unsqueeze(1),
                                result.entropy.float().unsqueeze(1), result.snapshot.float(),
                                result.ids.int().view(torch.float32), result.weights.float()], dim=1)  # one copy
            self._copy, self._width = HostCopy(packed), k
        self._flags: HostCopy | None = None
        self._rows: list | None = None
        self._row_flags: list[int] | None = None

    def _to_host(self) -> list:
        """The soft rows' records; a row whose record cannot be read gets an error record
        (all of them if the batch's copy cannot be read)."""
        try:
            packed = self._copy.wait().numpy()
            k = self._width
            kinds, pending = packed[:, 0].astype(np.int64).tolist(), packed[:, 1].astype(np.int64).tolist()
            head = np.ascontiguousarray(packed[:, 2:3 + _SNAPSHOT])  # the entropy and the snapshot
            ids = np.ascontiguousarray(packed[:, 3 + _SNAPSHOT:3 + _SNAPSHOT + k]).view(np.int32)
            weights = np.ascontiguousarray(packed[:, 3 + _SNAPSHOT + k:])
            # Zero weights come last (unused columns, dropped candidates).
            support = np.where((weights > 0).any(axis=1), k - np.argmax((weights > 0)[:, ::-1], axis=1), 0)
        except Exception:
            logger.exception("soft thinking: a step's records could not be read")
            return [READ_FAULT_RECORD] * len(self._position_of)
        rows = []
        for i, kind in enumerate(kinds):
            try:
                rows.append(self._row(i, kind, pending[i], head, ids, weights, support))
            except Exception:
                logger.exception("soft thinking: a step's record could not be read")
                rows.append(READ_FAULT_RECORD)
        return rows

    def _row(self, i: int, kind: int, pending: int, head, ids, weights, support):
        if i in self._fault_positions:
            raise faults.InjectedFault("a fault injected while reading a record")
        name = KIND_NAMES[kind]
        if name not in _STEP_KINDS:
            return _SHARED[kind]
        s = support[i]
        return name, pending, head[i].tobytes() + ids[i, :s].tobytes() + weights[i, :s].tobytes()

    def set_flags(self, flags: torch.Tensor) -> None:
        """flags [B] int (agreement.FLAG_*, 0 for none); their copy to the host starts now."""
        self._flags = HostCopy(flags.to(torch.int32))

    def _flag(self, row: int) -> int:
        if self._flags is None:
            return 0
        if self._row_flags is None:
            self._row_flags = self._flags.wait().tolist()
        return self._row_flags[row] if row < len(self._row_flags) else 0

    def __getitem__(self, row: int):
        flag = self._flag(row)
        if flag:
            return _FLAG_RECORDS[flag]
        position = self._position_of.get(row)
        if position is None or self._copy is None:
            return None
        if self._rows is None:
            self._rows = self._to_host()
        record = self._rows[position]
        if record[0] in _STEP_KINDS:
            return StepRecord(*record, traced=row in self._traced)
        return record
