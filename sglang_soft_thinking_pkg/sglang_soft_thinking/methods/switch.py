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

Where the engine differs from the authors' code: the latent input is the concept token
(top ``max_topk``, DESIGN §4) rather than the whole untempered distribution, the entropy is
that of the thinking distribution (Cold Stop's), latent steps write ``ids[0]`` like the
concept method, and the ``<think>``/``</think>`` embeddings are not blended in at a switch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import BaseModel, Field

from sglang_soft_thinking.methods.base import Method, StateColumn, Thought, ThinkingView, one_hot_input

MODE_LATENT, MODE_EXPLICIT = 0, 1


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


_STATE_NAMES = ("mode", "stay", "reference", "count")


class Switch(Method):
    name = "switch"
    paper = "SwiReasoning, arXiv 2510.05069"
    Params = SwitchParams
    samples_while_thinking = True
    accepts_noise = True  # on its latent steps' concept tokens
    end_reason = "switch_cap"
    state = (StateColumn("mode", torch.int64, MODE_LATENT), StateColumn("stay", torch.int64, 0),
             StateColumn("reference", torch.float32, 0.0), StateColumn("count", torch.int64, 0))

    def advance(self, state, entropy, first, setting):
        before = SwitchState(*(state[name] for name in _STATE_NAMES))
        after, capped = switch_step(before, entropy, first, setting("window_size"), setting("max_switch_count"))
        return {name: getattr(after, name) for name in _STATE_NAMES}, capped

    def step(self, view: ThinkingView) -> Thought:
        state, capped = self.advance(view.state, view.entropy, view.first, view.setting)
        explicit = state["mode"] == MODE_EXPLICIT
        concept, sampled = view.concept(), view.sample()[:, 0]
        one_hot_ids, one_hot = one_hot_input(sampled, view.k_used)
        pick = explicit.unsqueeze(1)
        return Thought(ids=torch.where(pick, one_hot_ids, concept.ids),
                       weights=torch.where(pick, one_hot, concept.weights),
                       token=torch.where(explicit, sampled, concept.ids[:, 0]),
                       discrete=explicit, end=capped, state=state)


METHOD = Switch()
