"""``discrete``: plain sampled thinking, with everything else of soft thinking kept.

Each thinking step samples a token as plain decoding would (the request's temperature,
``top_k``, ``top_p`` and ``soft_thinking.min_p``), writes it and feeds it back. Cold Stop on
the same entropy, the thinking budget, the forced think-end string, ``after_thinking``, the
records and the trace (each step its token with weight 1) are those of every method. It is
the ablation that tells whether a gain comes from the inputs a method feeds or from Cold
Stop, and it gives plain decoding of a thinking model Cold Stop and a budget.
"""

from __future__ import annotations

from sglang_soft_thinking.methods.base import Method, Thought, ThinkingView, one_hot_input


class Discrete(Method):
    name = "discrete"
    paper = "plain sampled thinking with Cold Stop (an ablation)"
    samples_while_thinking = True

    def width(self, settings) -> int:
        return 1

    def step(self, view: ThinkingView) -> Thought:
        token = view.sample()[:, 0]
        ids, weights = one_hot_input(token, view.k_used)
        return Thought(ids=ids, weights=weights, token=token, discrete=token >= 0)


METHOD = Discrete()
