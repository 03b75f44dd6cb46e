"""One sampling step of a batch's soft rows: their tokens, their records, their next inputs.

Per group of rows that share fetch sizes (plan.py), one full-vocabulary pass (DESIGN §4
steps 1-2) gives the sorted prefix every later piece uses: the after-thinking sample of
every row, and each method's thought on the rows of that method (methods/). The phase
machine (phases.py) then picks each row's written token and kind, and the table keeps the
next input. Device ops only, nothing read back to the host. No SGLang import.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.draws import RowDraws
from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.methods.base import Geometry, ThinkingView, Thought, Vocabulary, widen
from sglang_soft_thinking.phases import KIND_ERROR_INPUT, KIND_METHOD_END, PhaseRules, StepTokens, advance
from sglang_soft_thinking.plan import SoftGroup, SoftRows
from sglang_soft_thinking.table import RowBlock, SoftThinkingTable, state_column_name


@dataclass
class StepResult:
    """One step of a batch's soft rows, in :class:`~sglang_soft_thinking.plan.SoftRows` order."""

    tokens: torch.Tensor  # [N] the ids written to the output
    kinds: torch.Tensor  # [N] phases.KIND_*
    entropy: torch.Tensor  # [N]
    ids: torch.Tensor  # [N, K] a thinking step's input (its concept token)
    weights: torch.Tensor  # [N, K]
    pending: torch.Tensor  # [N] trailing tokens that start the think-end string (phases.py)
    vector: torch.Tensor | None = None  # [N] bool: a thinking step whose input is a vector (ids: its trace)
    snapshot: torch.Tensor | None = None  # [N, Z] each row's progress after the step (table.SNAPSHOT_COLUMNS)


@dataclass
class _GroupStep:
    answer: torch.Tensor  # [n]
    entropy: torch.Tensor  # [n]
    thought: Thought  # every row of the group (zeros for rows known to be answering)
    end_kind: torch.Tensor  # [n] the kind of the method's forced tokens
    states: list  # (method, start, stop, its new state) within the group


def soft_step(table: SoftThinkingTable, rows: torch.Tensor, logits: torch.Tensor, soft: SoftRows,
              positions: torch.Tensor | None = None, failed: torch.Tensor | None = None,
              vocabulary: Vocabulary | None = None, geometry: Geometry | None = None) -> StepResult:
    """Sample the soft rows of a batch and advance their state.

    rows [N]: the requests' table rows, in ``soft``'s order; logits [N, V], those rows'
    logits; positions [N]: the position each row samples, which with the row's seed
    determines its draws (draws.py; unseeded without). ``failed`` [N] bool: rows whose input
    was not mixed: their kind is KIND_ERROR_INPUT, which aborts the request
    (hooks/results.py). ``vocabulary``: the model's named tokens, for methods that need them;
    ``geometry``: the model's embedding geometry, for methods that feed vectors (their
    rows' hidden states are read from the table, where the logits hook kept them).
    """
    block = table.read(rows)
    inputs = _VectorInputs(table, rows, geometry)
    groups = [_group_step(block, logits, g, soft.k_used, positions, vocabulary, inputs) for g in soft.groups]
    thought = Thought(
        ids=torch.cat([g.thought.ids for g in groups]), weights=torch.cat([g.thought.weights for g in groups]),
        token=torch.cat([g.thought.token for g in groups]),
        discrete=torch.cat([g.thought.discrete for g in groups]),
        end=torch.cat([g.thought.end for g in groups]), hold_end=torch.cat([g.thought.hold_end for g in groups]))
    thought.vector = inputs.vector_rows(thought.token.shape[0])  # [N] bool
    entropy = torch.cat([g.entropy for g in groups])
    rules = PhaseRules(entropy_threshold=block["entropy_threshold"], length_threshold=block["length_threshold"],
                       max_thinking_tokens=block["max_thinking_tokens"], end_ids=block["end_ids"],
                       end_len=block["end_len"])
    moved = advance(block.phase_state(), rules, StepTokens(
        thought=thought.token, answer=torch.cat([g.answer for g in groups]), entropy=entropy,
        method_end=thought.end, method_end_kind=torch.cat([g.end_kind for g in groups]),
        hold_end=thought.hold_end))
    thinking = moved.thinking
    block.set_phase_state(moved.state)
    offset = 0
    for group, part in zip(soft.groups, groups):
        for method, start, stop, state in part.states:
            a, b = offset + start, offset + stop
            for column in method.state:
                name = state_column_name(method, column)
                old = block[name][a:b]
                block[name][a:b] = torch.where(thinking[a:b], state[column.name].to(old.dtype), old)
        offset += group.stop - group.start
    block["has_concept"] = thinking & ~moved.end_hit & ~feeds_token(thought)
    vector = thought.vector
    block["feeds_vector"] = vector
    table.write(rows, block)
    snapshot = block.snapshot()
    # Stored at full width (zero weights past the thought's) so no column keeps a value
    # from an earlier step or an earlier occupant of the row.
    keep = thinking.unsqueeze(1)
    table.concept_ids[rows] = torch.where(keep, widen(thought.ids, table.k_max), table.concept_ids[rows])
    table.concept_weights[rows] = torch.where(keep, widen(thought.weights, table.k_max),
                                              table.concept_weights[rows])
    inputs.store(thinking)
    kinds = moved.kinds if failed is None else torch.where(failed, KIND_ERROR_INPUT, moved.kinds)
    return StepResult(tokens=moved.tokens, kinds=kinds, entropy=entropy, ids=thought.ids,
                      weights=thought.weights, pending=moved.pending, snapshot=snapshot,
                      vector=vector & thinking)


class _VectorInputs:
    """The vector input kind's share of a step: the rows' hidden states, read once when a
    method asks, and the vectors the methods feed, kept in the table for the next input."""

    def __init__(self, table: SoftThinkingTable, rows: torch.Tensor, geometry: Geometry | None):
        self.table, self.rows, self.geometry = table, rows, geometry
        self._hidden: torch.Tensor | None = None
        self.pieces: list = []  # (group offset + start, stop, vector [n] bool, vector_input [n, H])

    def hidden(self, a: int, b: int) -> torch.Tensor:
        if self.table.hidden is None:
            raise RuntimeError("the state table has no hidden-state buffer")
        if self._hidden is None:
            self._hidden = self.table.hidden[self.rows]  # [N, H]
        return self._hidden[a:b]

    def vector_rows(self, n: int) -> torch.Tensor:
        """[N] bool: the rows whose method feeds a vector after this step."""
        vector = torch.zeros(n, dtype=torch.bool, device=self.rows.device)
        for a, b, rows_vector, _ in self.pieces:
            vector[a:b] = rows_vector
        return vector

    def store(self, thinking: torch.Tensor) -> None:
        """The vectors of the rows still thinking go to the table (the next step's input)."""
        for a, b, rows_vector, vector_input in self.pieces:
            rows = self.rows[a:b]
            keep = (thinking[a:b] & rows_vector).unsqueeze(1)
            self.table.vectors[rows] = torch.where(keep, vector_input.float(), self.table.vectors[rows])


def feeds_token(thought: Thought) -> torch.Tensor:
    """[N] bool: the next input is the written token itself: a discrete step, or any input
    that is the written token alone (its embedding is exactly the token's). The replay after
    a retraction reads the same from the record (resume.py)."""
    one_hot = (thought.weights[:, 1:] == 0).all(dim=1) & (thought.ids[:, 0] == thought.token)
    feeds = thought.discrete | one_hot
    return feeds if thought.vector is None else feeds & ~thought.vector


def _group_step(block: RowBlock, logits: torch.Tensor, group: SoftGroup, k_used: int,
                positions: torch.Tensor | None, vocabulary: Vocabulary | None,
                inputs: _VectorInputs) -> _GroupStep:
    """A group's after-thinking samples and each method's thought on its own rows."""
    lo, hi = group.start, group.stop
    rows = RowBlock(block.ints[lo:hi], block.floats[lo:hi])
    logits = logits[lo:hi]
    n = hi - lo
    draws = (RowDraws.unseeded(n, logits.device) if positions is None
             else RowDraws(rows["seed"], positions[lo:hi].long()))
    prefix = C.thinking_prefix(logits, rows["temperature"], group.fetch_k)
    answer = C.sample_tokens(
        logits, temperature=rows["after_temperature"], top_k=rows["after_top_k"], top_p=rows["after_top_p"],
        min_p=rows["after_min_p"], fetch_k=group.fetch_k_answer, prefix_ids=prefix.ids, draws=draws)
    device = logits.device
    ids = torch.zeros(n, k_used, dtype=torch.int64, device=device)
    weights = torch.zeros(n, k_used, device=device)
    token = torch.zeros(n, dtype=torch.int64, device=device)
    discrete = torch.ones(n, dtype=torch.bool, device=device)
    end = torch.zeros(n, dtype=torch.bool, device=device)
    hold_end = torch.zeros(n, dtype=torch.bool, device=device)
    end_kind = torch.zeros(n, dtype=torch.int64, device=device)
    first = rows["thinking_steps"] == 0
    states = []
    for piece in group.method_slices:
        if piece.method is None:  # rows known to be answering: no thought to compute
            continue
        a, b = piece.start, piece.stop
        method = REGISTRY[piece.method]
        view = ThinkingView(
            logits=logits[a:b], prefix=_slice_prefix(prefix, a, b),
            settings=lambda name, a=a, b=b: rows[name][a:b], state=_slice_state(rows, method, a, b),
            draws=RowDraws(draws.seeds[a:b], draws.positions[a:b]), first=first[a:b], k_used=k_used,
            fetch_k_think=group.fetch_k_think, noise_kinds=group.noise_kinds,
            samples_vocabulary=piece.samples_vocabulary, traced=piece.traced, vocabulary=vocabulary,
            hidden=lambda a=a, b=b: inputs.hidden(lo + a, lo + b), geometry=inputs.geometry)
        thought = method.step(view)
        if thought.vector is not None:
            inputs.pieces.append((lo + a, lo + b, thought.vector, thought.vector_input))
        ids[a:b], weights[a:b] = widen(thought.ids, k_used), widen(thought.weights, k_used)
        token[a:b], discrete[a:b] = thought.token, thought.discrete
        if thought.end is not None:
            end[a:b] = thought.end
        if thought.hold_end is not None:
            hold_end[a:b] = thought.hold_end
        end_kind[a:b] = KIND_METHOD_END + piece.method
        if method.state:
            states.append((method, a, b, thought.state))
    return _GroupStep(answer=answer, entropy=prefix.entropy, end_kind=end_kind, states=states,
                      thought=Thought(ids=ids, weights=weights, token=token, discrete=discrete, end=end,
                                      hold_end=hold_end))


def _slice_prefix(prefix: C.Prefix, a: int, b: int) -> C.Prefix:
    return C.Prefix(ids=prefix.ids[a:b], probs=prefix.probs[a:b], entropy=prefix.entropy[a:b],
                    vocab_probs=None if prefix.vocab_probs is None else prefix.vocab_probs[a:b])


def _slice_state(rows: RowBlock, method, a: int, b: int) -> dict[str, torch.Tensor]:
    return {name: value[a:b] for name, value in rows.method_state(method).items()}
