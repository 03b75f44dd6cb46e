"""The phase machine of a soft-thinking request (DESIGN §4), written once.

The same function advances a batch of rows on the device after every sampling step
(step.py) and replays one request on the host, on CPU tensors, when SGLang brings it back
after a retraction (resume.py). No SGLang import; no branch on tensor values::

    THINKING --the model writes the think-end string----------------------------> ANSWER
    THINKING --Cold Stop, budget, or the method's own end--> FORCING (writes the
                                                  think-end ids one by one) --> ANSWER

Each step also says what the token it wrote was (a *kind*, reported per output token,
see records.py) and, for a thinking token, how many of the last tokens (it included) are
the start of the think-end string (``pending``): the server holds those back until the
next tokens show whether they complete it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PHASE_THINKING, PHASE_FORCING, PHASE_ANSWER = 0, 1, 2

# What a written token was. A method that ends thinking itself (the switch method's cap)
# marks its forced think-end tokens KIND_METHOD_END + its id (methods/__init__.py).
KIND_NONE, KIND_THINK, KIND_COLD_STOP, KIND_BUDGET, KIND_ANSWER, KIND_THINK_END = range(6)
# A step that must not count: its input was not mixed, or the tensor-parallel ranks' soft
# states drifted apart. The request is aborted (hooks/results.py).
KIND_ERROR_INPUT, KIND_ERROR_DRIFT = 8, 9
KIND_METHOD_END = 16

# The longest think-end string, in tokens (longer ones are refused when a request is validated).
MAX_END_TOKENS = 32


@dataclass
class PhaseState:
    """Where each row is; [N] int64 each, ``recent`` [N, MAX_END_TOKENS] (right-aligned,
    -1 where the output is shorter)."""

    phase: torch.Tensor
    force_kind: torch.Tensor  # the kind of the forced think-end tokens, while FORCING
    forced_pos: torch.Tensor  # the next think-end id to write, while FORCING
    low_entropy_run: torch.Tensor  # consecutive thinking steps under the Cold Stop threshold
    thinking_steps: torch.Tensor
    recent: torch.Tensor


@dataclass
class PhaseRules:
    """Each row's settings for the machine."""

    entropy_threshold: torch.Tensor  # [N] float32; 0 disables Cold Stop
    length_threshold: torch.Tensor  # [N] int64
    max_thinking_tokens: torch.Tensor  # [N] int64; -1: no budget
    end_ids: torch.Tensor  # [N, MAX_END_TOKENS] int64, left-aligned
    end_len: torch.Tensor  # [N] int64


@dataclass
class StepTokens:
    """What one sampling step proposes for each row; the phase picks one."""

    thought: torch.Tensor  # [N] the token the method writes while thinking
    answer: torch.Tensor  # [N] the after-thinking sample
    entropy: torch.Tensor  # [N] float32, the thinking distribution's
    method_end: torch.Tensor  # [N] bool, the method ends thinking at this step
    method_end_kind: torch.Tensor  # [N] int64, the kind its forced tokens then get
    hold_end: torch.Tensor | None = None  # [N] bool: the method wrote this token itself; it ends nothing


@dataclass
class Advanced:
    state: PhaseState
    tokens: torch.Tensor  # [N] written
    kinds: torch.Tensor  # [N] KIND_*
    thinking: torch.Tensor  # [N] bool: the row was thinking at this step
    end_hit: torch.Tensor  # [N] bool: the model's own tokens just completed the think-end string
    pending: torch.Tensor  # [N] int64 (see the module docstring)


def match_end(recent: torch.Tensor, end_ids: torch.Tensor, end_len: torch.Tensor):
    """Whether each row's history ends with its think-end ids, and the length of the
    longest proper prefix of them it ends with otherwise (0 when it ends with none).

    recent [N, W] right-aligned, end_ids [N, W] left-aligned, end_len [N]."""
    width = recent.shape[1]
    m = torch.arange(1, width + 1, device=recent.device)  # candidate match lengths
    j = torch.arange(width, device=recent.device)
    # aligned[n, m-1, j] = recent[n, W - m + j]: the last m tokens, left-aligned.
    columns = (width - m.unsqueeze(1) + j.unsqueeze(0)).clamp(0, width - 1)  # [W, W]
    aligned = recent[:, columns]  # [N, W, W]
    inside = j.unsqueeze(0) < m.unsqueeze(1)  # [W, W]
    equal = (aligned == end_ids.unsqueeze(1)) | ~inside
    matches = equal.all(dim=2)  # [N, W]: the last m tokens are end_ids[:m]
    hit = matches.gather(1, (end_len - 1).clamp(min=0).unsqueeze(1)).squeeze(1) & (end_len > 0)
    proper = matches & (m.unsqueeze(0) < end_len.unsqueeze(1))
    pending = torch.where(proper, m.unsqueeze(0), torch.zeros_like(m).unsqueeze(0)).amax(dim=1)
    return hit, torch.where(hit, torch.zeros_like(pending), pending)


def advance(state: PhaseState, rules: PhaseRules, step: StepTokens) -> Advanced:
    """One step of every row (DESIGN §4). Thinking ends, in this order of precedence, when
    the model's own tokens complete the think-end string, on Cold Stop (the entropy under
    the threshold for ``length_threshold`` steps in a row), when the method ends it, or when
    the budget of thinking steps is spent; the last three then write the think-end ids."""
    phase = state.phase
    thinking, forcing = phase == PHASE_THINKING, phase == PHASE_FORCING
    width = state.recent.shape[1]
    forced_pos = state.forced_pos
    forced = rules.end_ids.gather(1, forced_pos.clamp(max=width - 1).unsqueeze(1)).squeeze(1)
    tokens = torch.where(thinking, step.thought, torch.where(forcing, forced, step.answer))

    low = step.entropy < rules.entropy_threshold
    run = torch.where(thinking, torch.where(low, state.low_entropy_run + 1,
                                            torch.zeros_like(state.low_entropy_run)),
                      state.low_entropy_run)
    steps = state.thinking_steps + thinking.long()
    recent = torch.cat([state.recent[:, 1:], tokens.unsqueeze(1)], dim=1)
    hit, pending = match_end(recent, rules.end_ids, rules.end_len)
    end_hit = thinking & hit if step.hold_end is None else thinking & hit & ~step.hold_end
    open_thinking = thinking & ~end_hit
    cold_stop = open_thinking & (rules.entropy_threshold > 0) & (run >= rules.length_threshold)
    method_end = open_thinking & ~cold_stop & step.method_end
    budget = rules.max_thinking_tokens
    out_of_budget = open_thinking & ~cold_stop & ~method_end & (budget >= 0) & (steps >= budget)
    start_forcing = cold_stop | method_end | out_of_budget
    forcing_done = forcing & (forced_pos + 1 >= rules.end_len)

    kinds = torch.where(thinking, torch.where(end_hit, KIND_THINK_END, KIND_THINK),
                        torch.where(forcing, state.force_kind, KIND_ANSWER))
    new_phase = torch.where(end_hit | forcing_done, PHASE_ANSWER,
                            torch.where(start_forcing, PHASE_FORCING, phase))
    force_kind = torch.where(cold_stop, KIND_COLD_STOP, torch.where(
        method_end, step.method_end_kind, torch.where(out_of_budget, KIND_BUDGET, state.force_kind)))
    new_forced_pos = torch.where(forcing, forced_pos + 1, torch.where(start_forcing, 0, forced_pos))
    new_state = PhaseState(phase=new_phase, force_kind=force_kind, forced_pos=new_forced_pos,
                           low_entropy_run=run, thinking_steps=steps, recent=recent)
    return Advanced(state=new_state, tokens=tokens, kinds=kinds, thinking=thinking, end_hit=end_hit,
                    pending=torch.where(open_thinking, pending, torch.zeros_like(pending)))
