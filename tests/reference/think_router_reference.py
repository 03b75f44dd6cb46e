"""ThinkRouter (arXiv 2602.11683), written out plainly with transformers.

The yardstick for the engine's ``think_router`` method: batch size 1, float32, one position
per forward pass. Per thinking step, from the logits of the last position:

- ``p = softmax(z / T)`` over the whole vocabulary, its entropy ``H`` and ``p_max = max p``;
- ``p_max < tau``: a discrete step. A token is sampled from ``p`` after top-k, top-p and min-p
  (the caller gives the token the engine sampled), written and fed as its own embedding;
- otherwise a latent step: Soft Thinking's concept token (the ``max_topk`` most probable of
  the cut distribution, renormalised), its most probable token written, the mixture fed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .concept_math import concept_embedding, concept_token, filtered_probs, temperature_softmax
from .soft_thinking_reference import _CachedDecoder


@dataclass
class RouterStep:
    discrete: bool
    ids: list[int]  # the step's input: [token] when discrete, else the concept token's ids
    weights: list[float]
    entropy: float
    p_max: float


@dataclass
class RouterResult:
    steps: list[RouterStep] = field(default_factory=list)


@torch.no_grad()
def run_reference_think_router(model, prompt_ids: list[int], *, num_steps: int, temperature: float, tau: float,
                               top_k: int = -1, top_p: float = 1.0, min_p: float = 0.0, max_topk: int = 10,
                               tokens: dict[int, int] | None = None) -> RouterResult:
    """``num_steps`` thinking steps. ``tokens``: step -> the token written there if the step
    is discrete (without it, the cut distribution's most probable token)."""
    decoder = _CachedDecoder(model)
    logits = decoder.prefill(list(prompt_ids))
    result = RouterResult()
    for step in range(num_steps):
        p_max = float(temperature_softmax(logits, temperature).max())
        probs, entropy = filtered_probs(logits, temperature, top_k, top_p, min_p)
        if p_max < tau:
            token = int(torch.argmax(probs)) if tokens is None else tokens[step]
            result.steps.append(RouterStep(True, [token], [1.0], entropy, p_max))
            logits = decoder.feed_token(token)
        else:
            ids, weights = concept_token(probs, max_topk)
            result.steps.append(RouterStep(False, ids, weights, entropy, p_max))
            logits = decoder.feed_embedding(concept_embedding(decoder.embedding_matrix, ids, weights))
    return result
