"""``concept``: Soft Thinking (Zhang et al. 2025, arXiv 2505.15778), DESIGN §4.

Each thinking step feeds back the concept token, the probability-weighted mixture of the
embeddings of the step's ``max_topk`` most likely tokens (after top-k, top-p, min-p and
optional noise), and writes its most likely token, ``ids[0]``, to the text.
"""

from __future__ import annotations

import torch

from sglang_soft_thinking.methods.base import Method, Thought, ThinkingView


class Concept(Method):
    name = "concept"
    paper = "Soft Thinking, arXiv 2505.15778"
    accepts_noise = True

    def step(self, view: ThinkingView) -> Thought:
        concept = view.concept()
        token = concept.ids[:, 0]
        return Thought(ids=concept.ids, weights=concept.weights, token=token,
                       discrete=torch.zeros_like(token, dtype=torch.bool))


METHOD = Concept()
