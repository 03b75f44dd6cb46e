"""DESIGN §4, steps 1-6 of Soft Thinking, as pure functions on one probability vector.

Every function takes or returns a 1-D tensor over the full vocabulary ([V]) and works by a full
sort, never by a top-k shortcut, so each reads as the rule it implements.
"""

from __future__ import annotations

import torch


def temperature_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Step 1: ``p = softmax(z / T)``."""
    return torch.softmax(logits.float() / temperature, dim=-1)


def entropy_nats(probs: torch.Tensor) -> float:
    """Step 2: ``H = -sum(p ln p)`` in nats, with ``0 ln 0 = 0``."""
    return float(-torch.special.xlogy(probs, probs).sum())


def renormalise(probs: torch.Tensor) -> torch.Tensor:
    return probs / probs.sum()


def _sort_descending(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # A stable sort: among equal probabilities the lower token id ranks first.
    return torch.sort(probs, descending=True, stable=True)


def top_k_filter(probs: torch.Tensor, top_k: int) -> torch.Tensor:
    """Step 3a: keep the ``top_k`` most probable tokens; -1 (or >= V) keeps all."""
    if top_k < 0 or top_k >= probs.numel():
        return probs
    _, order = _sort_descending(probs)
    kept = torch.zeros_like(probs)
    kept[order[:top_k]] = probs[order[:top_k]]
    return renormalise(kept)


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Step 3b: sorted descending, token i is kept iff the mass strictly before it is <= top_p.

    The token that crosses ``top_p`` is therefore kept; ``top_p = 1`` keeps everything (checked
    explicitly, so rounding in the running sum cannot drop the tail).
    """
    if top_p >= 1.0:
        return probs
    sorted_probs, order = _sort_descending(probs)
    mass_before = torch.cumsum(sorted_probs, dim=0) - sorted_probs
    keep_sorted = mass_before <= top_p
    kept = torch.zeros_like(probs)
    kept[order[keep_sorted]] = sorted_probs[keep_sorted]
    return renormalise(kept)


def min_p_filter(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """Step 3c: drop tokens with ``p < min_p * max(p)``, renormalise."""
    if min_p <= 0.0:
        return probs
    kept = torch.where(probs < min_p * probs.max(), torch.zeros_like(probs), probs)
    return renormalise(kept)


def concept_token(probs: torch.Tensor, max_topk: int) -> tuple[list[int], list[float]]:
    """Step 5: the ``max_topk`` most probable tokens, renormalised, sorted by weight descending.

    Entries of weight exactly 0 (fewer than ``max_topk`` tokens survived step 3) are dropped.
    """
    sorted_probs, order = _sort_descending(probs)
    weights = renormalise(sorted_probs[:max_topk])
    is_kept = weights > 0
    return order[:max_topk][is_kept].tolist(), weights[is_kept].tolist()


def concept_embedding(
    embedding_matrix: torch.Tensor, ids: list[int], weights: list[float]
) -> torch.Tensor:
    """Step 6: the next input embedding ``sum_i weights[i] * E[ids[i]]``, shape [H]."""
    rows = embedding_matrix[torch.tensor(ids)]  # [K, H]
    w = torch.tensor(weights, dtype=embedding_matrix.dtype)  # [K]
    return w @ rows


def filtered_probs(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float
) -> tuple[torch.Tensor, float]:
    """Steps 1-3: the filtered distribution [V] and the entropy of the unfiltered one."""
    probs = temperature_softmax(logits, temperature)
    entropy = entropy_nats(probs)
    probs = min_p_filter(top_p_filter(top_k_filter(probs, top_k), top_p), min_p)
    return probs, entropy
