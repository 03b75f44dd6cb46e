"""A soft-thinking request's next input (DESIGN §4 step 6): ``sum_i w_i * E[ids_i]``.

Plain functions on tensors, no SGLang import. ``embed`` maps token ids ``[N]`` to
embeddings ``[N, H]`` (the model's own input embedding, so tensor parallelism stays
right: the lookup is linear and its all-reduce commutes with the weighted sum).

:func:`decode_inputs` is what a decode step runs, also while SGLang captures the step
into a CUDA graph: device ops only, on buffers that exist before capture (the table) and
on the batch's request rows, with no branch on any value. A graph captured while no
request thinks therefore mixes correctly at replay for whatever rows think then.
"""

from __future__ import annotations

from typing import Callable

import torch

from sglang_soft_thinking.concept import mix_embeddings
from sglang_soft_thinking.plan import ExtendInputs
from sglang_soft_thinking.state import SoftThinkingTable

Embed = Callable[[torch.Tensor], torch.Tensor]


def concept_embeddings(embed: Embed, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ids, weights [N, K] -> the concept tokens' embeddings [N, H]."""
    num, k = ids.shape
    token_embeddings = embed(ids.reshape(-1)).view(num, k, -1)  # [N, K, H]
    return mix_embeddings(token_embeddings, weights)


def decode_inputs(embed: Embed, plain: torch.Tensor, table: SoftThinkingTable,
                  rows: torch.Tensor, k: int) -> torch.Tensor:
    """A decode batch's input embeddings: a row whose request fed back a concept token
    takes its mixture, every other row keeps ``plain`` (its token's embedding).

    plain [B, H]; rows [B] (request rows); k: columns of the concept tokens to mix
    (the table's full width in a captured graph; zero weights past a request's own).
    """
    use, ids, weights = table.concept_inputs(rows, k)  # [B], [B, k], [B, k]
    return torch.where(use.unsqueeze(1), concept_embeddings(embed, ids, weights), plain)


def extend_inputs(embed: Embed, plain: torch.Tensor, extend: ExtendInputs) -> torch.Tensor:
    """An extend batch's input embeddings with ``extend.positions`` replaced by concept
    tokens where ``extend.use`` is set. plain [T, H] over the batch's flattened tokens."""
    current = plain.index_select(0, extend.positions)  # [N, H]
    mixed = concept_embeddings(embed, extend.ids, extend.weights)
    return plain.index_copy(0, extend.positions, torch.where(extend.use.unsqueeze(1), mixed, current))
