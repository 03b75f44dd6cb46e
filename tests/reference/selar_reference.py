"""SeLaR (arXiv 2604.08299), written out plainly with transformers.

The yardstick for the engine's ``selar`` method: batch size 1, float32, one position per
forward pass. Per thinking step, from the logits of the last position:

- ``p``: ``softmax(z / T)`` cut by top-k, top-p and min-p (the thinking distribution);
- ``q``: its ``k`` most probable tokens, renormalised among themselves; ``H``: their entropy
  over ``ln k``;
- ``H >= threshold`` and the written token not a maths token: a soft step. With
  ``e = sum_i q_i E[i]`` it feeds the vector ``e + push * H * (e - E[top1])``;
- otherwise a discrete step: the written token is fed as itself.

The written token is a sample of ``p``; the caller gives, per step, the token the engine
wrote where the engine's trace shows it (its discrete steps). A soft step's token is not
needed: it is fed nothing but the mixture.

Teacher forcing: given ``fed`` (per step, the ids and coefficients the engine's trace says it
fed), the reference still computes every step from its own logits but then feeds the engine's
input ``sum_i w_i E[ids_i]``, so a long path is compared step by step without the soft loop's
amplified rounding. An engine that fed something other than what it recorded is still caught:
the next step's logits part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .concept_math import filtered_probs
from .soft_thinking_reference import _CachedDecoder


@dataclass
class SelarStep:
    discrete: bool
    ids: list[int]  # the input's tokens: [token] when discrete, else the top-k, most probable first
    weights: list[float]  # the fed vector's coefficients on those tokens' embeddings
    entropy: float  # nats, of the whole temperature-scaled distribution (Cold Stop's)
    topk_entropy: float  # H, normalised


@dataclass
class SelarResult:
    steps: list[SelarStep] = field(default_factory=list)


def top_k_uncertainty(probs: torch.Tensor, k: int) -> tuple[list[int], torch.Tensor, float]:
    """The ``k`` most probable ids of ``probs`` [V], their renormalised probabilities and the
    normalised entropy of those."""
    top, ids = torch.topk(probs.double(), k)
    q = top / top.sum()
    h = -sum(x * math.log(x) for x in q.tolist() if x > 0) / math.log(k)
    return ids.tolist(), q, min(max(h, 0.0), 1.0)


@torch.no_grad()
def run_reference_selar(model, prompt_ids: list[int], *, num_steps: int, temperature: float,
                        tokens: dict[int, int], k: int = 3, threshold: float = 0.5, push: float = 1.0,
                        top_k: int = -1, top_p: float = 1.0, min_p: float = 0.0,
                        math_ids: frozenset[int] = frozenset(),
                        fed: list[tuple[list[int], list[float]]] | None = None) -> SelarResult:
    decoder = _CachedDecoder(model)
    embeddings = decoder.embedding_matrix.double()  # [V, H]
    logits = decoder.prefill(list(prompt_ids))
    result = SelarResult()
    for step in range(num_steps):
        probs, entropy = filtered_probs(logits, temperature, top_k, top_p, min_p)
        ids, q, h = top_k_uncertainty(probs, k)
        token = tokens.get(step)
        if h >= threshold and token not in math_ids:
            mixture = q @ embeddings[ids]  # [H]
            pushed = mixture + push * h * (mixture - embeddings[ids[0]])
            # The same vector as coefficients on the top-k embeddings.
            weights = [(1 + push * h) * w - (push * h if i == 0 else 0.0) for i, w in enumerate(q.tolist())]
            kept = [i for i, w in enumerate(q.tolist()) if w > 0]
            result.steps.append(SelarStep(False, [ids[i] for i in kept], [weights[i] for i in kept], entropy, h))
            fed_here = pushed
        else:
            token = int(torch.argmax(probs)) if token is None else token
            result.steps.append(SelarStep(True, [token], [1.0], entropy, h))
            fed_here = token
        if fed is not None:
            fed_ids, fed_weights = fed[step]
            fed_here = fed_ids[0] if fed_weights == [1.0] else (
                torch.tensor(fed_weights, dtype=torch.float64) @ embeddings[fed_ids])
        if isinstance(fed_here, int):
            logits = decoder.feed_token(fed_here)
        else:
            logits = decoder.feed_embedding(fed_here.to(decoder.embedding_matrix.dtype))
    return result
