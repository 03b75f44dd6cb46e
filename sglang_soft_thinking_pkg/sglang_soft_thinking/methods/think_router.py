"""``think_router``: ThinkRouter (Xu et al. 2026, "ThinkRouter: Efficient Reasoning via
Routing Thinking between Latent and Discrete Spaces", arXiv 2602.11683). No SGLang import.

At each thinking step the model's confidence, the largest probability ``p_max`` of the step's
distribution, routes the step: below the threshold ``tau`` the step is discrete (a token is
sampled as plain decoding would, written and fed itself); at or above it the step is latent
(Soft Thinking's concept token is fed and its most likely token written). Flat
distributions are thus never mixed into an input, which the paper finds adds noise.

Where the paper leaves it open, and no code of the authors' is public, the engine takes:
``p_max`` of the thinking distribution after the temperature and before the top-k, top-p
and min-p cuts (DESIGN §4 step 1, the distribution whose entropy drives Cold Stop); the
discrete sample from the cut distribution (the request's ``top_k``, ``top_p`` and
``soft_thinking.min_p``), and the concept token of the request's ``max_topk``. The authors
tuned ``tau`` per model and dataset on a grid from 0.4 to 0.9; the default, 0.6, lies
inside it.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field

from sglang_soft_thinking.methods.base import Method, Thought, ThinkingView, one_hot_input


class ThinkRouterParams(BaseModel):
    # The confidence under which a step is discrete (p_max < tau), at or over which it is latent.
    tau: float = Field(0.6, ge=0, le=1)


class ThinkRouter(Method):
    name = "think_router"
    paper = "ThinkRouter, arXiv 2602.11683"
    Params = ThinkRouterParams
    samples_while_thinking = True
    accepts_noise = True  # on its latent steps' concept tokens

    def step(self, view: ThinkingView) -> Thought:
        p_max = view.prefix.probs[:, 0]  # the sorted prefix's first: the step's largest probability
        discrete = p_max < view.setting("tau")
        concept, sampled = view.concept(), view.sample()[:, 0]
        one_hot_ids, one_hot = one_hot_input(sampled, view.k_used)
        pick = discrete.unsqueeze(1)
        return Thought(ids=torch.where(pick, one_hot_ids, concept.ids),
                       weights=torch.where(pick, one_hot, concept.weights),
                       token=torch.where(discrete, sampled, concept.ids[:, 0]), discrete=discrete)


METHOD = ThinkRouter()
