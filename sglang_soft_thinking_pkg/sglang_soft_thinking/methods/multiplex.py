"""``multiplex``: Multiplex Thinking, training-free (Tang et al. 2026, "Multiplex Thinking",
arXiv 2601.08808, their "Multiplex Thinking-I"). No SGLang import.

At each thinking step ``width`` tokens are drawn independently, with replacement, from the
thinking distribution (the request's temperature, ``top_k``, ``top_p`` and
``soft_thinking.min_p``), and the next input merges their embeddings:

* ``merge="weighted"`` (the authors' default): each draw weighs its probability ``pi(k_j)``
  under the tempered distribution before the cuts, normalised over the draws,
  ``sum_j pi(k_j) E[k_j] / sum_j pi(k_j)``;
* ``merge="uniform"``: ``(1 / width) sum_j E[k_j]``.

A token drawn twice counts twice; the input lists each distinct token once with its summed
weight, heaviest first. The first draw is written to the text, as in the authors' code (so
thinking ends when the first draw completes the think-end string). As the authors' code
does, nothing else ends thinking but the think-end string and the length; Cold Stop and the
thinking budget apply here as to every method (``early_stopping_entropy_threshold: 0``
switches Cold Stop off, as the authors run it). The authors sample without min-p; the
engine applies ``soft_thinking.min_p`` as for every sampling method (0 to match them).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, Field

from sglang_soft_thinking.limits import TopkWidth
from sglang_soft_thinking.methods.base import Method, Thought, ThinkingView, widen


class MultiplexParams(BaseModel):
    # Independent draws merged into each thinking input (the paper's K), and how they are weighed.
    width: TopkWidth = Field(3, ge=1)
    merge: Literal["weighted", "uniform"] = "weighted"


UNIFORM = 1  # the index of "uniform" in MultiplexParams.merge, as its column holds it


class Multiplex(Method):
    name = "multiplex"
    paper = "Multiplex Thinking, arXiv 2601.08808"
    Params = MultiplexParams
    samples_while_thinking = True

    def width(self, settings) -> int:
        return settings.value("width")

    def step(self, view: ThinkingView) -> Thought:
        count = view.k_used  # the widest row's width; a row uses its own first `width` draws
        draws = view.sample(count)  # [N, count]
        used = torch.arange(count, device=draws.device).unsqueeze(0) < view.setting("width").unsqueeze(1)
        probs = merge_weights(view, draws, used)
        ids, weights = distinct(draws, probs)
        return Thought(ids=widen(ids, view.k_used), weights=widen(weights, view.k_used), token=draws[:, 0],
                       discrete=torch.zeros_like(draws[:, 0], dtype=torch.bool))


def merge_weights(view: ThinkingView, draws: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """[N, count] each used draw's weight (0 for the others), summing to 1 per row."""
    pi = view.prefix.vocab_probs.gather(1, draws)  # each draw's tempered probability, before the cuts
    uniform = (view.setting("merge") == UNIFORM).unsqueeze(1)
    raw = torch.where(uniform, torch.ones_like(pi), pi) * used
    return raw / raw.sum(dim=1, keepdim=True).clamp_min(torch.finfo(raw.dtype).tiny)


def distinct(ids: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's distinct ids with their summed weights, heaviest first (zero-weight
    columns last). ids, weights [N, K]."""
    k = ids.shape[1]
    same = ids.unsqueeze(2) == ids.unsqueeze(1)  # [N, K, K]
    earlier = torch.ones(k, k, dtype=torch.bool, device=ids.device).tril(-1)
    repeated = (same & earlier.unsqueeze(0)).any(dim=2)  # the id occurred in an earlier column
    totals = (same * weights.unsqueeze(1)).sum(dim=2)  # [N, K]: each column's id's total weight
    totals = torch.where(repeated, torch.zeros_like(totals), totals)
    totals, order = totals.sort(dim=1, descending=True, stable=True)  # ties keep the draws' order
    return ids.gather(1, order), totals


METHOD = Multiplex()
