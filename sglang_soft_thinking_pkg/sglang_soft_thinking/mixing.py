"""A soft-thinking request's next input (DESIGN §4 step 6): ``sum_i w_i * E[ids_i]``.

Plain functions on tensors, no SGLang import. A :class:`Mixer` computes the mixtures
``[N, H]`` of token ids and weights ``[N, K]`` the way the model's input embedding would
embed them:

* :class:`ShardMixer`, for a vocabulary-parallel embedding (SGLang's): each rank looks its
  ids up in its own shard of the vocabulary (ids outside it weigh nothing), through the
  shard's own lookup (a quantized shard dequantizes its rows), sums the weighted rows there
  in the rows' dtype (``bmm``, which accumulates in float32), and the ranks' partial sums
  are reduced once, ``[N, H]``: the lookup is linear, so this equals the whole vocabulary's
  mixture. Without a ``reduce`` of its own it gives a rank's partial mixtures, to be put
  into the embedding's own per-rank output before the embedding's one all-reduce
  (hooks/embedding.py), so soft thinking adds no collective at all;
* :class:`ModuleMixer`, for any other embedding module, e.g. one that scales its lookup
  (Gemma 3): the rows come from the module itself, so they are embedded exactly like tokens.

:func:`decode_inputs` is what a decode step runs, also while SGLang captures the step into a
CUDA graph: device ops only, on buffers that exist before capture (the table) and on the
batch's request rows, with no branch on any value. A graph captured while no request thinks
therefore mixes correctly at replay for whatever rows think then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from sglang_soft_thinking.plan import ExtendInputs
from sglang_soft_thinking.table import SoftThinkingTable


def weighted_sum(rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """rows [N, K, H] (the embedding's dtype), weights [N, K] -> [N, H] in that dtype."""
    return torch.bmm(weights.to(rows.dtype).unsqueeze(1), rows).squeeze(1)


@dataclass(frozen=True)
class VocabShard:
    """Which token ids a rank's embedding shard holds, and where (SGLang's layout: the
    original vocabulary's ids ``[org_start, org_end)`` first, then padding up to
    ``org_padded`` rows, then added ids ``[added_start, added_end)``)."""

    org_start: int
    org_end: int
    org_padded: int
    added_start: int
    added_end: int

    @classmethod
    def whole(cls, vocab_size: int) -> "VocabShard":
        return cls(0, vocab_size, vocab_size, vocab_size, vocab_size)

    def local(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shard's row of each id (0 for ids outside it) and whether it holds the id."""
        in_org = (ids >= self.org_start) & (ids < self.org_end)
        in_added = (ids >= self.added_start) & (ids < self.added_end)
        local = torch.where(in_org, ids - self.org_start,
                            torch.where(in_added, ids - self.added_start + self.org_padded, torch.zeros_like(ids)))
        return local, in_org | in_added


class ShardMixer:
    """Mixtures from one rank's shard of the embedding, reduced across ranks once (or,
    with no ``reduce``, the rank's partial mixtures).

    ``lookup`` maps shard-local row indices [T] to rows [T, H] (a quantized embedding's
    dequantizing lookup); by default the rows of ``weight``.
    """

    def __init__(self, weight: torch.Tensor | None, shard: VocabShard,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 output_dtype: torch.dtype | None = None,
                 lookup: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if weight is None and lookup is None:
            raise ValueError("ShardMixer needs the shard's weight or its lookup")
        self.weight, self.shard, self.reduce, self.output_dtype = weight, shard, reduce, output_dtype
        self.lookup = lookup

    def partial(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """This shard's share of the mixtures: [N, H], zero for ids it does not hold."""
        local, inside = self.shard.local(ids)
        if self.lookup is None:
            rows = torch.nn.functional.embedding(local, self.weight)  # [N, K, H]
        else:
            rows = self.lookup(local.reshape(-1)).view(*local.shape, -1)  # [N, K, H]
        return weighted_sum(rows, torch.where(inside, weights, torch.zeros_like(weights)))

    def __call__(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        mixed = self.partial(ids, weights)
        if self.reduce is not None:
            mixed = self.reduce(mixed)
        return mixed if self.output_dtype is None else mixed.to(self.output_dtype)


class ModuleMixer:
    """Mixtures of the rows an embedding module returns for the ids (any linear lookup)."""

    def __init__(self, embed: Callable[[torch.Tensor], torch.Tensor]):
        self.embed = embed

    def __call__(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        num, k = ids.shape
        rows = self.embed(ids.reshape(-1)).view(num, k, -1)  # [N, K, H]
        return weighted_sum(rows, weights)


Mixer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def decode_inputs(mix: Mixer, plain: torch.Tensor, table: SoftThinkingTable,
                  rows: torch.Tensor, k: int, skip: torch.Tensor | None = None,
                  owns_vectors: bool = True) -> torch.Tensor:
    """A decode batch's input embeddings: a row whose request fed back a concept token
    takes its mixture, or its vector for a method that feeds vectors (chosen per row by
    ``torch.where``, no branch), every other row keeps ``plain`` (its token's embedding).
    The rows' marks say they were mixed (the sampler checks them, table.missed_inputs).

    ``owns_vectors``: whether this output carries the vectors. A rank's share of a
    vocabulary-parallel embedding is summed over the ranks by the module's all-reduce, and
    a vector is whole on every rank (the hidden state it comes from is): one rank (0) puts
    it in, the others zero, so the all-reduce counts it once and no collective is added.

    plain [B, H]; rows [B] (request rows); k: columns of the concept tokens to mix
    (the table's full width in a captured graph; zero weights past a request's own).
    ``skip`` [B]: rows not to mix (only a fault a test injects, faults.py).
    """
    use, ids, weights = table.concept_inputs(rows, k)  # [B], [B, k], [B, k]
    if skip is not None:
        use = use & ~skip
    table.mark_mixed(rows, use)
    mixed = torch.where(use.unsqueeze(1), mix(ids, weights).to(plain.dtype), plain)
    if table.vectors is None:
        return mixed
    feeds, vectors = table.vector_inputs(rows)  # [B], [B, H]
    vectors = vectors.to(plain.dtype) if owns_vectors else torch.zeros_like(plain)
    return torch.where((use & feeds).unsqueeze(1), vectors, mixed)


def extend_inputs(mix: Mixer, plain: torch.Tensor, extend: ExtendInputs, owns_vectors: bool = True) -> torch.Tensor:
    """An extend batch's input embeddings with ``extend.positions`` replaced by concept
    tokens where ``extend.use`` is set (by vectors where ``extend.vector`` is also set; see
    :func:`decode_inputs` for ``owns_vectors``). plain [T, H] over the batch's flattened tokens."""
    current = plain.index_select(0, extend.positions)  # [N, H]
    mixed = mix(extend.ids, extend.weights).to(plain.dtype)
    if extend.vector is not None:
        vectors = extend.vectors.to(plain.dtype) if owns_vectors else torch.zeros_like(mixed)
        mixed = torch.where(extend.vector.unsqueeze(1), vectors, mixed)
    return plain.index_copy(0, extend.positions, torch.where(extend.use.unsqueeze(1), mixed, current))
