"""Multiplex Thinking, training-free (arXiv 2601.08808), written out plainly with transformers.

The yardstick for the engine's ``multiplex`` method: batch size 1, float32, one position per
forward pass. Per thinking step, ``K`` tokens are drawn independently, with replacement, from
the thinking distribution (``softmax(z / T)`` after top-k, top-p and min-p), and the next
input merges their embeddings:

- weighted: ``sum_j pi(k_j) E[k_j] / sum_j pi(k_j)``, ``pi`` the tempered distribution
  before the cuts (a token drawn twice counts twice);
- uniform: ``(1 / K) sum_j E[k_j]``.

The draws are random, so the reference is driven by the engine's: for each step it is given
the distinct tokens the engine merged, recovers how often each was drawn from the weights
the engine reports and its own ``pi`` (``count_v`` is proportional to ``w_v / pi_v`` when
weighted, to ``w_v`` when uniform, and the counts add up to ``K``), checks that the counts
are whole numbers, and feeds the merge of those draws computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .concept_math import filtered_probs, temperature_softmax
from .soft_thinking_reference import _CachedDecoder


@dataclass
class MultiplexStep:
    weights: dict[int, float]  # the merged input, token id -> weight
    counts: dict[int, int]  # how often each token was drawn
    entropy: float
    support_ok: bool  # every drawn token lies in the cut distribution's support


@dataclass
class MultiplexResult:
    steps: list[MultiplexStep] = field(default_factory=list)


def draw_counts(engine_weights: dict[int, float], pi: dict[int, float], width: int, weighted: bool) -> dict[int, float]:
    """How often each token was drawn, as the merge's weights imply (not rounded)."""
    raw = {t: (w / pi[t] if weighted else w) for t, w in engine_weights.items()}
    scale = width / sum(raw.values())
    return {t: r * scale for t, r in raw.items()}


@torch.no_grad()
def run_reference_multiplex(model, prompt_ids: list[int], *, engine_steps: list[dict[int, float]], temperature: float,
                            width: int, weighted: bool, top_k: int = -1, top_p: float = 1.0,
                            min_p: float = 0.0) -> MultiplexResult:
    decoder = _CachedDecoder(model)
    logits = decoder.prefill(list(prompt_ids))
    result = MultiplexResult()
    for engine_weights in engine_steps:
        pi_all = temperature_softmax(logits, temperature).double()
        probs, entropy = filtered_probs(logits, temperature, top_k, top_p, min_p)
        pi = {t: float(pi_all[t]) for t in engine_weights}
        counts = {t: round(c) for t, c in draw_counts(engine_weights, pi, width, weighted).items()}
        raw = {t: counts[t] * (pi[t] if weighted else 1.0) for t in counts}
        total = sum(raw.values())
        weights = {t: r / total for t, r in raw.items()}
        result.steps.append(MultiplexStep(weights, counts, entropy, all(float(probs[t]) > 0 for t in counts)))
        embedding = sum(w * decoder.embedding_matrix[t].double() for t, w in weights.items())
        logits = decoder.feed_embedding(embedding.to(decoder.embedding_matrix.dtype))
    return result
