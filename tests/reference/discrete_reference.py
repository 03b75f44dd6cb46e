"""Plain sampled thinking (the ``discrete`` method), written out plainly with transformers.

Per thinking step, from the logits of the last position: the entropy of ``softmax(z / T)``
over the whole vocabulary (what Cold Stop watches), and the cut distribution a token is
sampled from (top-k, top-p, min-p). The tokens are the engine's (teacher forcing): the
reference checks each lies in that support and feeds it as its own embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .concept_math import filtered_probs
from .soft_thinking_reference import _CachedDecoder


@dataclass
class DiscreteStep:
    token: int
    entropy: float
    probability: float  # the token's probability in the cut distribution (> 0: it could be drawn)


@dataclass
class DiscreteResult:
    steps: list[DiscreteStep] = field(default_factory=list)


@torch.no_grad()
def run_reference_discrete(model, prompt_ids: list[int], *, tokens: list[int], temperature: float,
                           top_k: int = -1, top_p: float = 1.0, min_p: float = 0.0) -> DiscreteResult:
    decoder = _CachedDecoder(model)
    logits = decoder.prefill(list(prompt_ids))
    result = DiscreteResult()
    for token in tokens:
        probs, entropy = filtered_probs(logits, temperature, top_k, top_p, min_p)
        result.steps.append(DiscreteStep(token, entropy, float(probs[token])))
        logits = decoder.feed_token(token)
    return result
