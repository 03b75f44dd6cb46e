"""SwiReasoning-style switch thinking (arXiv 2510.05069), written out plainly with transformers.

The yardstick for the engine's ``switch`` method: batch size 1, float32, one position per
forward pass. Thinking starts latent. Per step, from the logits of the last position:

- the entropy ``H`` of ``softmax(z / T)`` over the whole vocabulary;
- the first step sets the reference entropy; after it, a latent step whose ``H`` is below the
  reference turns explicit, and an explicit step whose ``H`` is above it turns latent once at
  least ``window_size`` steps have passed since the last switch; each switch sets the
  reference to ``H`` and restarts the step count; the latent -> explicit switches are counted;
- in latent mode the step is a concept token (DESIGN §4, as in concept_math): ``ids[0]`` is
  written and the mixture fed; in explicit mode a sampled token is written and fed itself;
- the switch that makes the count reach ``max_switch_count`` ends thinking.

The sampled tokens of explicit steps are given by the caller (those the engine sampled), or
are the concept's ``ids[0]`` when ``top_k`` is 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .concept_math import concept_embedding, concept_token, filtered_probs
from .soft_thinking_reference import _CachedDecoder


@dataclass
class SwitchStep:
    explicit: bool
    ids: list[int]  # the step's input: [token] when explicit, else the concept token's ids
    weights: list[float]
    entropy: float


@dataclass
class SwitchResult:
    steps: list[SwitchStep] = field(default_factory=list)
    capped: bool = False  # thinking ended on the switch cap after the last step


@torch.no_grad()
def run_reference_switch(model, prompt_ids: list[int], *, num_steps: int, temperature: float,
                         top_k: int = -1, top_p: float = 1.0, min_p: float = 0.0, max_topk: int = 10,
                         window_size: int, max_switch_count: int | None = None,
                         explicit_tokens: dict[int, int] | None = None) -> SwitchResult:
    """At most ``num_steps`` thinking steps. ``explicit_tokens``: step -> the token written
    there if the step is explicit."""
    decoder = _CachedDecoder(model)
    logits = decoder.prefill(list(prompt_ids))
    result = SwitchResult()
    explicit, reference, since_switch, switches = False, 0.0, 0, 0
    for step in range(num_steps):
        probs, entropy = filtered_probs(logits, temperature, top_k, top_p, min_p)
        entropy32 = float(torch.tensor(entropy, dtype=torch.float32))
        if step == 0:
            reference = entropy32
        else:
            since_switch += 1
            if not explicit and entropy32 < reference:
                explicit, reference, since_switch, switches = True, entropy32, 0, switches + 1
            elif explicit and entropy32 > reference and since_switch >= window_size:
                explicit, reference, since_switch = False, entropy32, 0
        ids, weights = concept_token(probs, max_topk)
        if explicit:
            token = ids[0] if explicit_tokens is None else explicit_tokens[step]
            ids, weights = [token], [1.0]
        result.steps.append(SwitchStep(explicit, ids, weights, entropy))
        if explicit and max_switch_count is not None and switches >= max_switch_count and since_switch == 0:
            result.capped = True
            break
        logits = decoder.feed_embedding(concept_embedding(decoder.embedding_matrix, ids, weights))
    return result
