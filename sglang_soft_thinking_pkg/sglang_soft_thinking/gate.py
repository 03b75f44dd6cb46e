"""The soft/discrete gate of a thinking step: whether a row's next input is a mixture or
its sampled token. No SGLang import; plain functions on batched tensors, per-row settings
as tensors, nothing that waits for the device.

A gate is three settings:

* a **statistic** of the step's thinking distribution (DESIGN §4 step 1, after the
  temperature): ``p_max``, its largest probability, before the top-k, top-p and min-p
  cuts; or ``topk_entropy``, the entropy of its ``k`` most likely tokens that the cuts
  keep, renormalised among themselves, divided by ``ln k`` (so in [0, 1]);
* a **polarity**: the step mixes when the statistic is ``above`` the threshold (at or
  over it) or ``below`` it (strictly under);
* a **threshold**.

ThinkRouter mixes when the model is confident (``p_max`` above ``tau``); SeLaR when it is
uncertain (``topk_entropy`` above its threshold). Each method declares the three as its own
parameters (their names differ: every method's parameters share one request object), with
the literals below as their types, so a column holds the index the constants name.
"""

from __future__ import annotations

from typing import Literal

import torch

Statistic = Literal["p_max", "topk_entropy"]
Polarity = Literal["above", "below"]
P_MAX, TOPK_ENTROPY = 0, 1  # indices into Statistic
MIX_ABOVE, MIX_BELOW = 0, 1  # indices into Polarity


def topk_weights(sorted_probs: torch.Tensor, keep: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The ``k`` most likely tokens the cuts keep, renormalised among themselves.

    sorted_probs [N, W] descending, keep [N, W] bool (the cuts' mask, a prefix of each
    row), k [N] int: -> [N, W], zero past column k (and where the cuts drop a token).
    W must be at least every row's k.
    """
    columns = torch.arange(sorted_probs.shape[1], device=sorted_probs.device)
    inside = keep & (columns.unsqueeze(0) < k.unsqueeze(1))
    kept = torch.where(inside, sorted_probs.float(), torch.zeros_like(sorted_probs, dtype=torch.float32))
    return kept / kept.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)


def normalised_entropy(weights: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``-sum(w ln w) / ln k`` of :func:`topk_weights`' rows, in [0, 1]; 0 ln 0 = 0.
    weights [N, W], k [N] int (at least 2) -> [N]."""
    entropy = torch.special.entr(weights).sum(dim=-1)
    return (entropy / torch.log(k.double()).float()).clamp(0.0, 1.0)


def statistic(kind: torch.Tensor, sorted_probs: torch.Tensor, topk_entropy: torch.Tensor) -> torch.Tensor:
    """Each row's statistic (``kind`` [N] int, P_MAX or TOPK_ENTROPY): its ``p_max`` from the
    sorted probabilities [N, W], else its normalised top-k entropy [N] (computed by the caller,
    who may need it for more than the gate). -> [N] float32."""
    return torch.where(kind == P_MAX, sorted_probs[:, 0].float(), topk_entropy.float())


def mixes(value: torch.Tensor, threshold: torch.Tensor, polarity: torch.Tensor) -> torch.Tensor:
    """[N] bool: the rows whose next input is a mixture. ``above``: value >= threshold;
    ``below``: value < threshold (so the two polarities split every step between them)."""
    above = value >= threshold
    return torch.where(polarity == MIX_ABOVE, above, ~above)


def decide(sorted_probs: torch.Tensor, keep: torch.Tensor, *, k: torch.Tensor, kind: torch.Tensor,
           threshold: torch.Tensor, polarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gate on one step's rows: (mixes [N] bool, the top-k weights [N, W] and their
    normalised entropy [N]), W the columns of ``sorted_probs`` and ``keep`` (at least every k)."""
    weights = topk_weights(sorted_probs, keep, k)
    entropy = normalised_entropy(weights, k)
    return mixes(statistic(kind, sorted_probs, entropy), threshold, polarity), weights, entropy
