"""``switch``: SwiReasoning's switch between latent and explicit thinking (Shi et al. 2025,
"SwiReasoning: Switch-Thinking in Latent and Explicit for Pareto-Superior Reasoning LLMs",
arXiv 2510.05069). No SGLang import.

Thinking starts latent: each step feeds a concept token (DESIGN §4). The step's entropy is
compared with a reference, the entropy at the last switch (or at the first step):

* latent -> explicit as soon as the entropy falls below the reference: the model has grown
  more confident since it switched, so it commits to sampled tokens;
* explicit -> latent when the entropy rises above the reference again, but only after at
  least ``window_size`` steps in explicit mode (the paper's window W), so that explicit
  reasoning is not cut short by one uncertain token.

Each switch resets the reference to the current entropy. The number of latent -> explicit
switches is counted; with a cap (``max_switch_count``) the step whose switch reaches the cap
ends thinking, as Cold Stop does (the think-end string is written next). This follows the
authors' code (``generate_swir`` in their ``generation_utils.py``).

Options that run the method as the authors' code does (``switch_preset: "authors"`` sets
them all, with their window of 512):

* ``explicit_tokens: "math"``: a step whose written token is a digit, a one-letter token or
  a maths symbol (any token of the strings in :data:`MATH_STRINGS`) feeds that token
  itself, whatever the mode (the mode does not change);
* ``first_blend``: the first thinking step's latent input is ``(1 - b)`` times the concept
  token plus ``b`` times the newline token's embedding (theirs: 0.1; their code looks up
  the two-character string backslash-n, the engine the newline token);
* ``cap_stages: 2``: from the cap to twice the cap, each latent -> explicit switch writes the
  think-end string as its next tokens while switching goes on (those tokens end nothing);
  the switch past twice the cap ends thinking;
* ``min_p_absolute``: min-p drops the tokens under ``min_p`` after top-k and top-p
  renormalise, instead of under ``min_p`` times the largest.

Where the engine still differs from the authors' code: the latent input is the concept
token (top ``max_topk``, DESIGN §4) rather than the whole untempered distribution; the
entropy is that of the thinking distribution (Cold Stop's); latent steps write ``ids[0]``;
a think-end string the model writes itself ends thinking (theirs locks the row explicit
and goes on); no ``<think>``/``</think>`` embedding is blended in at a switch; and after
the second stage of the cap the answer is sampled with ``after_thinking`` up to the
request's length, not prefixed with "The final answer is" and cut after 32 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, Field, model_validator

from sglang_soft_thinking.methods.base import (
    Advance, Method, StateColumn, Thought, ThinkingView, token_where,
)

MODE_LATENT, MODE_EXPLICIT = 0, 1
MATH = 1  # the index of "math" in SwitchParams.explicit_tokens, as its column holds it
NO_INJECTION = -1
# The authors' forced-explicit tokens: digits, letters, and these maths symbols and LaTeX
# commands; a string of several tokens contributes every one of its tokens.
MATH_STRINGS = (*"0123456789", *"abcdefghijklmnopqrstuvwxyz", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                *"+-*/^=<>()[]{}_|", r"\leq", r"\geq", r"\neq", r"\approx", r"\frac", r"\dfrac",
                r"\sqrt", r"\pi", r"\sin", r"\cos", r"\tan", r"\log", r"\ln", r"\sum", r"\prod",
                r"\int", r"\infty", r"\cdot", r"\times", r"\div", r"\pm", r"\boxed", r"\text",
                r"\left", r"\right", r"\begin{pmatrix}", r"\end{pmatrix}", r"\left\{", r"\right\}")
AUTHORS = {"window_size": 512, "explicit_tokens": "math", "first_blend": 0.1, "cap_stages": 2,
           "min_p_absolute": True}


@dataclass
class SwitchState:
    """Per row: the mode, steps since the last switch, the reference entropy, the count."""

    mode: torch.Tensor  # [B] int64, MODE_*
    stay: torch.Tensor  # [B] int64
    reference: torch.Tensor  # [B] float32
    count: torch.Tensor  # [B] int64, latent -> explicit switches so far


def switch_step(state: SwitchState, entropy: torch.Tensor, first: torch.Tensor, window_size: torch.Tensor,
                max_switch_count: torch.Tensor) -> tuple[SwitchState, torch.Tensor]:
    """One thinking step: the state after it, whose ``mode`` is the step's own, and [B] bool,
    whether this step's switch reached the cap (``max_switch_count`` < 0: no cap).

    ``first`` [B]: the request's first thinking step, which only sets the reference.
    """
    entropy = entropy.float()
    stay = torch.where(first, torch.zeros_like(state.stay), state.stay + 1)
    latent = state.mode == MODE_LATENT
    to_explicit = ~first & latent & (entropy < state.reference)
    to_latent = ~first & ~latent & (entropy > state.reference) & (stay >= window_size)
    switched = to_explicit | to_latent
    mode = torch.where(to_explicit, MODE_EXPLICIT, torch.where(to_latent, MODE_LATENT, state.mode))
    count = state.count + to_explicit.long()
    capped = to_explicit & (max_switch_count >= 0) & (count >= max_switch_count)
    return SwitchState(
        mode=mode,
        stay=torch.where(switched, torch.zeros_like(stay), stay),
        reference=torch.where(first | switched, entropy, state.reference),
        count=count,
    ), capped


class SwitchParams(BaseModel):
    # The fewest explicit steps before thinking may turn latent again (the paper's window),
    # and the latent -> explicit switches after which thinking ends (None: no cap).
    window_size: int = Field(512, ge=1)
    max_switch_count: int | None = Field(None, ge=1)
    # The authors' code's ways (module docstring); switch_preset "authors" sets them all.
    explicit_tokens: Literal["none", "math"] = "none"
    first_blend: float = Field(0.0, ge=0, le=1)
    cap_stages: int = Field(1, ge=1, le=2)
    min_p_absolute: bool = False
    switch_preset: Literal["engine", "authors"] = "engine"

    @model_validator(mode="before")
    @classmethod
    def _authors_preset(cls, data):
        """The preset fills the options the request leaves out."""
        if isinstance(data, dict) and data.get("switch_preset") == "authors":
            return {**AUTHORS, **data}
        return data


_STATE_NAMES = ("mode", "stay", "reference", "count")


class Switch(Method):
    name = "switch"
    paper = "SwiReasoning, arXiv 2510.05069"
    Params = SwitchParams
    samples_while_thinking = True
    accepts_noise = True  # on its latent steps' concept tokens
    end_reason = "switch_cap"
    state = (StateColumn("mode", torch.int64, MODE_LATENT), StateColumn("stay", torch.int64, 0),
             StateColumn("reference", torch.float32, 0.0), StateColumn("count", torch.int64, 0),
             StateColumn("inject", torch.int64, NO_INJECTION))

    def width(self, settings) -> int:
        return settings.max_topk + (settings.value("first_blend") > 0)

    def token_sets(self, tokenizer) -> dict[str, list[int]]:
        ids = {i for text in MATH_STRINGS for i in tokenizer.encode(text, add_special_tokens=False)}
        return {"math": sorted(ids)}

    def tokens(self, tokenizer) -> dict[str, int]:
        return {"newline": tokenizer.encode("\n", add_special_tokens=False)[-1]}

    def advance(self, state, entropy, first, setting) -> Advance:
        """The mode, and with a two-stage cap the think-end string's injection: the token a
        step writes from it is ``end_ids[inject]`` (``inject`` as the step begins)."""
        before = SwitchState(*(state[name] for name in _STATE_NAMES))
        limit = setting("max_switch_count")
        after, reached = switch_step(before, entropy, first, setting("window_size"), limit)
        two_stages = setting("cap_stages") == 2
        to_explicit = after.count > before.count
        past_twice = to_explicit & (limit >= 0) & (after.count > 2 * limit)
        capped = torch.where(two_stages, past_twice, reached)
        start = two_stages & to_explicit & (limit >= 0) & (after.count >= limit) & ~past_twice
        position = state["inject"]
        following = torch.where(position >= 0, position + 1, position)
        following = torch.where(following >= setting("end_len"), NO_INJECTION, following)
        new_state = {name: getattr(after, name) for name in _STATE_NAMES}
        new_state["inject"] = torch.where(start, torch.zeros_like(following), following)
        return Advance(new_state, end=capped, hold_end=position >= 0)

    def step(self, view: ThinkingView) -> Thought:
        decided = self.advance(view.state, view.entropy, view.first, view.setting)
        explicit = decided.state["mode"] == MODE_EXPLICIT
        concept = view.concept()
        sampled = view.sample(min_p_absolute=view.setting("min_p_absolute") > 0)[:, 0]
        injected = view.setting("end_ids").gather(1, view.state["inject"].clamp(min=0).unsqueeze(1)).squeeze(1)
        token = torch.where(decided.hold_end, injected, torch.where(explicit, sampled, concept.ids[:, 0]))
        vocabulary = view.vocabulary
        if vocabulary is not None and "math" in vocabulary.masks:
            explicit = explicit | ((view.setting("explicit_tokens") == MATH) & vocabulary.contains("math", token))
        ids, weights = concept.ids, concept.weights
        if vocabulary is not None and "newline" in vocabulary.tokens:
            ids, weights = _first_blend(view, ids, weights, vocabulary.tokens["newline"])
        ids, weights = token_where(explicit, token, ids, weights, view.k_used)
        return Thought(ids=ids, weights=weights, token=token, discrete=explicit, end=decided.end, hold_end=decided.hold_end,
                       state=decided.state)


def _first_blend(view: ThinkingView, ids: torch.Tensor, weights: torch.Tensor, newline: int):
    """The first step's latent input, ``(1 - b)`` concept token + ``b`` newline, for rows
    with ``first_blend`` b > 0: the newline goes in the column past ``max_topk`` (free)."""
    blend = torch.where(view.first, view.setting("first_blend"), torch.zeros_like(view.setting("first_blend")))
    column = view.setting("max_topk").clamp(max=ids.shape[1] - 1).unsqueeze(1)
    blended_ids = ids.scatter(1, column, torch.full_like(column, newline))
    blended = (weights * (1 - blend).unsqueeze(1)).scatter(1, column, blend.unsqueeze(1))
    blended, order = blended.sort(dim=1, descending=True, stable=True)  # by weight, as every input
    use = (blend > 0).unsqueeze(1)
    return torch.where(use, blended_ids.gather(1, order), ids), torch.where(use, blended, weights)


METHOD = Switch()
