"""Mixture of Inputs decoding (arXiv 2505.14827), written out plainly with transformers.

The yardstick for the engine's ``mixture_of_inputs`` method: batch size 1, float32, one
position per forward pass, every quantity over the whole vocabulary. Per thinking step, from
the logits ``z`` of the last position:

1. the text token ``s`` is sampled from ``softmax(z / T)`` after top-k, top-p and min-p
   (here: given by the caller, or the most likely token when ``top_k`` is 1);
2. the prior ``q`` is ``softmax(z)`` restricted to the ``N`` most likely tokens, renormalised;
3. ``H_n = H(q) / ln N``;
4. the next input is ``H_n * E_posterior + (1 - H_n) * E[s]``, where ``E_posterior`` is the
   embedding expected under the Dirichlet posterior ``(q + beta * onehot(s)) / (1 + beta)``.

The step reports the token weights of that input: ``{token id: weight}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .soft_thinking_reference import _CachedDecoder


@dataclass
class MixtureStep:
    token: int  # the token written to the text
    weights: dict[int, float]  # the next input as token id -> weight
    entropy: float  # of softmax(z / T), nats, over the whole vocabulary (Cold Stop's)


@dataclass
class MixtureResult:
    steps: list[MixtureStep] = field(default_factory=list)


def _prior(logits: torch.Tensor, num_candidates: int) -> dict[int, float]:
    full = torch.softmax(logits.double(), dim=-1)
    order = torch.argsort(full, descending=True, stable=True)[:num_candidates]
    mass = float(full[order].sum())
    return {int(i): float(full[i]) / mass for i in order}


def _input_weights(prior: dict[int, float], token: int, beta: float) -> dict[int, float]:
    n = len(prior)
    h = -sum(q * math.log(q) for q in prior.values() if q > 0)
    h_n = min(1.0, h / math.log(n)) if n > 1 else 0.0
    posterior = {i: q / (1 + beta) for i, q in prior.items()}
    posterior[token] = posterior.get(token, 0.0) + beta / (1 + beta)
    weights = {i: h_n * w for i, w in posterior.items()}
    weights[token] += 1 - h_n
    return weights


@torch.no_grad()
def run_reference_mixture(model, prompt_ids: list[int], *, num_steps: int, temperature: float,
                          max_topk: int, beta: float, tokens: list[int] | None = None) -> MixtureResult:
    """``num_steps`` thinking steps. ``tokens``: the text tokens to write (e.g. those the
    engine sampled); without them each step writes its most likely token (top_k = 1)."""
    decoder = _CachedDecoder(model)
    logits = decoder.prefill(list(prompt_ids))
    result = MixtureResult()
    for step in range(num_steps):
        token = int(torch.argmax(logits)) if tokens is None else tokens[step]
        probs = torch.softmax(logits.double() / temperature, dim=-1)
        entropy = float(-torch.special.xlogy(probs, probs).sum())
        weights = _input_weights(_prior(logits, max_topk), token, beta)
        result.steps.append(MixtureStep(token, weights, entropy))
        embedding = sum(w * decoder.embedding_matrix[i].double() for i, w in weights.items())
        logits = decoder.feed_embedding(embedding.float())
    return result
