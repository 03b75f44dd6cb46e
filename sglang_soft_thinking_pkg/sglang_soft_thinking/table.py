"""Per-request soft-thinking state on the device: one row per request slot.

Rows are indexed the way SGLang indexes requests, by ``req_pool_idx`` (the request's row
in ``req_to_token``). The table is three blocks: the integer columns (settings, the phase
machine's state, the methods' state, the think-end ids and the recent output), the float
columns, and the concept token fed next (ids and weights). A column is a view of its
block, so a request's row is written at admission with one copy per block, and a step
reads and writes its rows' blocks whole. Nothing here reads a value back to the host.
No SGLang import.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.phases import KIND_BUDGET, MAX_END_TOKENS, PHASE_FORCING, PhaseState
from sglang_soft_thinking.settings import FLOAT, INT, SETTINGS_COLUMNS, Column, RequestSettings
from sglang_soft_thinking.transfer import to_device

_PHASE_NAMES = ("phase", "force_kind", "forced_pos", "low_entropy_run", "thinking_steps")
_WIDE = {"end_ids": 0, "recent": -1}  # columns MAX_END_TOKENS wide, and their fill


def state_column_name(method, column) -> str:
    return f"{method.name}_{column.name}"


def _layout() -> tuple[dict[str, tuple[torch.dtype, int, int]], dict[str, int | float], int, int]:
    """name -> (block dtype, first index, width), defaults, and the two blocks' widths."""
    columns = [Column("is_soft", INT, 0), *SETTINGS_COLUMNS, Column("end_len", INT, 0),
               *(Column(name, INT, 0) for name in _PHASE_NAMES),
               Column("has_concept", INT, 0), Column("input_mixed", INT, 0),
               Column("wants_hidden", INT, 0), Column("feeds_vector", INT, 0)]
    for method in REGISTRY:
        columns += [Column(state_column_name(method, c), c.dtype, c.initial) for c in method.state]
    where, defaults, width = {}, {}, {INT: 0, FLOAT: 0}
    for c in columns:
        where[c.name] = (c.dtype, width[c.dtype], 1)
        defaults[c.name] = c.default
        width[c.dtype] += 1
    for name, fill in _WIDE.items():
        where[name] = (INT, width[INT], MAX_END_TOKENS)
        defaults[name] = fill
        width[INT] += MAX_END_TOKENS
    return where, defaults, width[INT], width[FLOAT]


LAYOUT, DEFAULTS, INT_WIDTH, FLOAT_WIDTH = _layout()
# A row's progress after a step, as the records keep it (records.py): the phase machine's
# state and every method's state columns, in this order.
SNAPSHOT_COLUMNS = (*_PHASE_NAMES, *(state_column_name(m, c) for m in REGISTRY for c in m.state))


@dataclass
class RowState:
    """A request's progress, host side: where it starts, or resumes after a retraction
    (rebuilt from its own records by resume.py). ``method_state``: its method's state
    columns by name; ``recent``: its last output ids, oldest first."""

    phase: int = 0
    force_kind: int = 0
    forced_pos: int = 0
    low_entropy_run: int = 0
    thinking_steps: int = 0
    recent: tuple[int, ...] = ()
    method_state: dict[str, int | float] | None = None


class RowBlock:
    """Some rows of the table, read out: the same columns by name, [N] (or [N, W])."""

    def __init__(self, ints: torch.Tensor, floats: torch.Tensor):
        self.ints, self.floats = ints, floats

    def __getitem__(self, name: str) -> torch.Tensor:
        dtype, start, width = LAYOUT[name]
        block = self.ints if dtype == INT else self.floats
        return block[:, start] if width == 1 else block[:, start:start + width]

    def __setitem__(self, name: str, value: torch.Tensor) -> None:
        dtype, start, width = LAYOUT[name]
        block = self.ints if dtype == INT else self.floats
        if width == 1:
            block[:, start] = value.to(block.dtype)
        else:
            block[:, start:start + width] = value.to(block.dtype)

    def phase_state(self) -> PhaseState:
        return PhaseState(*(self[name] for name in _PHASE_NAMES), recent=self["recent"])

    def set_phase_state(self, state: PhaseState) -> None:
        for name in _PHASE_NAMES:
            self[name] = getattr(state, name)
        self["recent"] = state.recent

    def method_state(self, method) -> dict[str, torch.Tensor]:
        return {c.name: self[state_column_name(method, c)] for c in method.state}

    def snapshot(self) -> torch.Tensor:
        """[N, len(SNAPSHOT_COLUMNS)] float32: the rows' progress (exact: each value is below 2**24)."""
        return torch.stack([self[name].float() for name in SNAPSHOT_COLUMNS], dim=1)


class SoftThinkingTable:
    def __init__(self, num_rows: int, k_max: int, device: torch.device | str):
        self.k_max, self.device = k_max, torch.device(device)
        self.ints = torch.zeros(num_rows, INT_WIDTH, dtype=INT, device=self.device)
        self.floats = torch.zeros(num_rows, FLOAT_WIDTH, dtype=FLOAT, device=self.device)
        # The concept token fed next: the input of the request's next decode step.
        self.concept_ids = torch.zeros(num_rows, k_max, dtype=INT, device=self.device)
        self.concept_weights = torch.zeros(num_rows, k_max, dtype=FLOAT, device=self.device)
        self._all = RowBlock(self.ints, self.floats)
        # The vector input kind (DESIGN §4 "Input kinds"), allocated by ensure_vectors once the
        # model's width is known: each row's last final-norm hidden state (written by the
        # logits hook for rows whose method feeds vectors) and the vector fed next.
        self.hidden: torch.Tensor | None = None  # [R, H] float32
        self.vectors: torch.Tensor | None = None  # [R, H] float32

    def ensure_vectors(self, hidden_size: int) -> None:
        """Allocate the vector buffers (static: a captured graph reads and writes them)."""
        if self.hidden is None:
            rows = self.ints.shape[0]
            self.hidden = torch.zeros(rows, hidden_size, dtype=FLOAT, device=self.device)
            self.vectors = torch.zeros(rows, hidden_size, dtype=FLOAT, device=self.device)

    def __getattr__(self, name: str) -> torch.Tensor:
        """A column of every row, by name (a view: writing it writes the table)."""
        if name in LAYOUT:
            return self._all[name]
        raise AttributeError(name)

    def read(self, rows: torch.Tensor) -> RowBlock:
        return RowBlock(self.ints[rows], self.floats[rows])

    def write(self, rows: torch.Tensor, block: RowBlock) -> None:
        self.ints[rows] = block.ints
        self.floats[rows] = block.floats

    def admit(self, rows: list[int], settings: list[RequestSettings | None],
              states: list[RowState | None] | None = None) -> None:
        """Write the rows of newly admitted requests whole: settings and progress, so that
        nothing of an earlier occupant survives. None settings mark a plain request; a None
        state (or no ``states``) starts the request from the beginning. The values travel
        in one host-to-device copy per block, from pinned memory without a wait on CUDA."""
        if not rows:
            return
        states = states or [None] * len(rows)
        int_rows, float_rows = [], []
        for row, s, state in zip(rows, settings, states):
            values = _row_values(s, state)
            int_rows.append([values[n] for n in _INT_ORDER] + [row])
            float_rows.append([values[n] for n in _FLOAT_ORDER])
        ints = to_device(int_rows, INT, self.device)
        floats = to_device(float_rows, FLOAT, self.device)
        index = ints[:, -1]
        self.ints[index] = ints[:, :-1]
        self.floats[index] = floats
        self.concept_ids[index] = 0
        self.concept_weights[index] = 0.0
        if self.vectors is not None:
            self.vectors[index] = 0.0

    def store_hidden(self, rows: torch.Tensor, hidden: torch.Tensor) -> None:
        """Keep the step's final-norm hidden states [B, H] of the rows whose method feeds
        vectors; other rows keep what they hold. Device ops only, no branch on values."""
        if self.hidden is None:
            return
        wanted = ((self.is_soft[rows] > 0) & (self.wants_hidden[rows] > 0)).unsqueeze(1)
        self.hidden[rows] = torch.where(wanted, hidden.to(FLOAT), self.hidden[rows])

    def vector_inputs(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Which rows feed a vector next ([B] bool; a subset of concept_inputs' ``use``) and
        the vectors [B, H] (zeros when the table has no vector buffers)."""
        feeds = (self.is_soft[rows] > 0) & (self.has_concept[rows] > 0) & (self.feeds_vector[rows] > 0)
        if self.vectors is None:
            return torch.zeros_like(feeds), torch.zeros(rows.shape[0], 1, dtype=FLOAT, device=self.device)
        return feeds, self.vectors[rows]

    def concept_inputs(self, rows: torch.Tensor, k: int | None = None):
        """Which rows take a concept token as their next input, and its first ``k`` ids and
        weights (all ``k_max`` by default). Device ops only, no branch on the values, so
        a captured graph replays it correctly for whatever the rows hold at replay time."""
        k = self.k_max if k is None else k
        use = (self.is_soft[rows] > 0) & (self.has_concept[rows] > 0)
        return use, self.concept_ids[rows, :k], self.concept_weights[rows, :k]

    def mark_mixed(self, rows: torch.Tensor, use: torch.Tensor) -> None:
        """Record that these rows' inputs were mixed this step (checked by the sampler)."""
        self.input_mixed[rows] = use.to(INT)

    def missed_inputs(self, rows: torch.Tensor) -> torch.Tensor:
        """[N] bool: rows that fed back a concept token whose input was not mixed since; and
        clears the marks for the next step."""
        missed = (self.is_soft[rows] > 0) & (self.has_concept[rows] > 0) & (self.input_mixed[rows] == 0)
        self.input_mixed[rows] = 0
        return missed


def _expand(name: str) -> list[str]:
    dtype, _, width = LAYOUT[name]
    return [name] if width == 1 else [f"{name}[{i}]" for i in range(width)]


_INT_ORDER = [c for name in sorted(LAYOUT, key=lambda n: LAYOUT[n][1]) if LAYOUT[name][0] == INT
              for c in _expand(name)]
_FLOAT_ORDER = [name for name in sorted(LAYOUT, key=lambda n: LAYOUT[n][1]) if LAYOUT[name][0] == FLOAT]


def _row_values(settings: RequestSettings | None, state: RowState | None) -> dict[str, int | float]:
    """Every column's value for one admitted row, by (expanded) column name."""
    values = dict(DEFAULTS)
    if settings is not None:
        values.update(settings.column_values())
        values["is_soft"] = 1
        values["wants_hidden"] = int(settings.method_object.input_kind == "vector")
        ends = list(settings.think_end_ids)
        values["end_len"] = len(ends)
        values.update({f"end_ids[{i}]": t for i, t in enumerate(ends)})
        state = state or initial_row_state(settings)
        for name in _PHASE_NAMES:
            values[name] = getattr(state, name)
        recent = list(state.recent)[-MAX_END_TOKENS:]
        padded = [-1] * (MAX_END_TOKENS - len(recent)) + recent
        values.update({f"recent[{i}]": t for i, t in enumerate(padded)})
        method = settings.method_object
        initial = {c.name: c.initial for c in method.state}
        initial.update(state.method_state or {})
        values.update({state_column_name(method, c): initial[c.name] for c in method.state})
    for name, fill in _WIDE.items():
        for i in range(MAX_END_TOKENS):
            values.setdefault(f"{name}[{i}]", fill)
    return values


def initial_row_state(settings: RequestSettings) -> RowState:
    """A new request's state: thinking, or with a zero budget already writing the think-end
    string (its first token is the first think-end id)."""
    if settings.max_thinking_tokens == 0:
        return RowState(phase=PHASE_FORCING, force_kind=KIND_BUDGET)
    return RowState()
