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

The route is the shared gate (gate.py): ``router_statistic`` and ``router_polarity`` run
the other rules with the same latent input, SeLaR's for one (``topk_entropy``, ``above``,
over the ``router_topk`` most likely tokens). Their defaults are ThinkRouter's.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field

from sglang_soft_thinking import concept as C
from sglang_soft_thinking import gate
from sglang_soft_thinking.limits import TopkWidth
from sglang_soft_thinking.methods.base import Method, Thought, ThinkingView, token_where


class ThinkRouterParams(BaseModel):
    # The gate's threshold: with the defaults, the confidence under which a step is discrete
    # (p_max < tau), at or over which it is latent.
    tau: float = Field(0.6, ge=0, le=1)
    router_statistic: gate.Statistic = "p_max"
    router_polarity: gate.Polarity = "above"
    # The tokens whose normalised entropy the topk_entropy statistic reads.
    router_topk: TopkWidth = Field(3, ge=2)


class ThinkRouter(Method):
    name = "think_router"
    paper = "ThinkRouter, arXiv 2602.11683"
    Params = ThinkRouterParams
    samples_while_thinking = True
    accepts_noise = True  # on its latent steps' concept tokens

    def width(self, settings) -> int:
        """The concept token's, and wide enough for the entropy gate's top-k to be fetched."""
        if settings.value("router_statistic") == gate.TOPK_ENTROPY:
            return max(settings.max_topk, settings.value("router_topk"))
        return settings.max_topk

    def step(self, view: ThinkingView) -> Thought:
        probs = view.prefix.probs  # [N, F] the step's distribution, sorted descending
        width = min(view.k_used, probs.shape[1])
        keep = C.prefix_keep_mask(probs, view.setting("top_k"), view.setting("top_p"), view.setting("min_p"))
        latent, _, _ = gate.decide(probs[:, :width], keep[:, :width], k=view.setting("router_topk"),
                                   kind=view.setting("router_statistic"), threshold=view.setting("tau"),
                                   polarity=view.setting("router_polarity"))
        discrete = ~latent
        concept, sampled = view.concept(), view.sample()[:, 0]
        ids, weights = token_where(discrete, sampled, concept.ids, concept.weights, view.k_used)
        return Thought(ids=ids, weights=weights, token=torch.where(discrete, sampled, concept.ids[:, 0]),
                       discrete=discrete)


METHOD = ThinkRouter()
