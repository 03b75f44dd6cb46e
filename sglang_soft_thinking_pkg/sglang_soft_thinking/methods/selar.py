"""``selar``: SeLaR, selective latent reasoning (arXiv 2604.08299, ACL 2026; the authors'
code: ``generate_selar`` in Parker-rfu/SeLaReasoning). No SGLang import.

Each thinking step samples a token from the thinking distribution (the request's
temperature, ``top_k``, ``top_p`` and ``soft_thinking.min_p``) and writes it. What it feeds
next depends on the step's uncertainty, the normalised entropy ``H`` of the ``selar_topk``
most likely tokens the cuts keep, renormalised among themselves (``q``), over ``ln k``:

* ``H`` at or above ``selar_threshold`` (the shared gate, gate.py): the top-k mixture
  ``e = sum_i q_i E[i]`` pushed away from the top-1 token by ``H`` (times ``selar_push``,
  the authors' contrastive weight): ``e' = e + H (e - E[top1])``. As a weighted sum of the
  same embeddings that is ``w_i = (1 + H) q_i`` for every i, less ``H`` on the top-1: the
  weights still sum to 1, and the top-1's is negative where ``q_top1 < H / (1 + H)``. The
  input's columns stay in probability order (top-1 first), not sorted by weight.
* below it, or when the sampled token is a maths token (the authors' list,
  :data:`MATH_STRINGS`): the sampled token itself.

Where the engine departs from the authors' code: it decides per row (theirs feeds every
row soft whenever any row of the batch is, ``use_soft_input.any()``, so a request's path
depends on its neighbours); it runs while thinking only (theirs for the whole generation),
after which the answer is ordinary sampling with ``after_thinking``; the entropy carries no
``1e-10`` guard terms; Cold Stop, the budget and the think-end string end thinking as for
every method. ``selar_statistic`` and ``selar_polarity`` run the gate's other rules
(ThinkRouter's, say) with SeLaR's input; the push is always scaled by ``H``.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field

from sglang_soft_thinking import concept as C
from sglang_soft_thinking import gate
from sglang_soft_thinking.limits import TopkWidth
from sglang_soft_thinking.methods.base import Method, Thought, ThinkingView, token_where

# The authors' maths symbols (their get_math_symbols_ids), every token of each string:
# a step that samples one of them feeds it, whatever its entropy.
MATH_STRINGS = (
    *"+-*/^=<>()[]{}_|", *"0123456789", *"abcdefghijklmnopqrstuvwxyz", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    *(rf"\{name}" for name in (
        "leq geq neq approx sim equiv to implies iff frac dfrac sqrt in notin subset supset subseteq "
        "supseteq cup cap emptyset varnothing pi theta alpha beta gamma delta epsilon zeta lambda mu nu "
        "sin cos tan arcsin arccos arctan log ln exp binom choose cdot dots ldots cdots vdots ddots "
        "mathbb mathbf mathrm text mbox infty circ prime ast star triangle triangleleft triangleright "
        "perp parallel angle boxed overline underline lceil rceil lfloor rfloor left right mid vert Vert "
        "because therefore forall exists wedge vee neg sum prod int lim min max arg deg gcd operatorname "
        "cot cotg sec csc").split()),
    r"\left(", r"\right)", r"\left[", r"\right]", r"\left\{", r"\right\}", r"\begin{pmatrix}",
    r"\end{pmatrix}", r"\sqrt[]",
)
MATH_SET = "selar_math"


class SelarParams(BaseModel):
    # The gate: with the defaults, a step mixes when its normalised top-k entropy is at or
    # above selar_threshold (the authors' default 0.5; they tuned 0.4 to 0.7 per dataset).
    selar_threshold: float = Field(0.5, ge=0, le=1)
    selar_statistic: gate.Statistic = "topk_entropy"
    selar_polarity: gate.Polarity = "above"
    # The tokens mixed and whose entropy is read (the authors' k), and the push's weight.
    selar_topk: TopkWidth = Field(3, ge=2)
    selar_push: float = Field(1.0, ge=0)


class Selar(Method):
    name = "selar"
    paper = "SeLaR, arXiv 2604.08299"
    Params = SelarParams
    samples_while_thinking = True

    def width(self, settings) -> int:
        return settings.value("selar_topk")

    def token_sets(self, tokenizer) -> dict[str, list[int]]:
        ids = {i for text in MATH_STRINGS for i in tokenizer.encode(text, add_special_tokens=False)}
        return {MATH_SET: sorted(ids)}

    def step(self, view: ThinkingView) -> Thought:
        probs = view.prefix.probs  # [N, F] the step's distribution, sorted descending
        width = min(view.k_used, probs.shape[1])
        keep = C.prefix_keep_mask(probs, view.setting("top_k"), view.setting("top_p"), view.setting("min_p"))
        mixed, q, entropy = gate.decide(probs[:, :width], keep[:, :width], k=view.setting("selar_topk"),
                                        kind=view.setting("selar_statistic"),
                                        threshold=view.setting("selar_threshold"),
                                        polarity=view.setting("selar_polarity"))
        sampled = view.sample()[:, 0]
        if view.vocabulary is not None and MATH_SET in view.vocabulary.masks:
            mixed = mixed & ~view.vocabulary.contains(MATH_SET, sampled)
        push = (view.setting("selar_push") * entropy).unsqueeze(1)  # [N, 1]
        pushed = q * (1 + push)
        pushed[:, :1] -= push  # e + H (e - E[top1]) as weights on the same tokens
        ids, weights = token_where(~mixed, sampled, view.prefix.ids[:, :width], pushed, view.k_used)
        return Thought(ids=ids, weights=weights, token=sampled, discrete=~mixed)


METHOD = Selar()
