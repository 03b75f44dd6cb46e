"""SwiReasoning's switch between latent and explicit thinking (Shi et al. 2025,
"SwiReasoning: Switch-Thinking in Latent and Explicit for Pareto-Superior Reasoning LLMs",
arXiv 2510.05069), as a plain function on batched tensors. No SGLang import.

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
authors' code (``generate_swir`` in their ``generation_utils.py``); see the method's notes
in state.py for where the engine differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
