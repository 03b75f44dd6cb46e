"""Per-request soft-thinking state, on the device, one row per request slot.

Rows are indexed the way SGLang indexes requests: by ``req_pool_idx`` (the
request's row in ``req_to_token``). A request's row is written once when it is
admitted (:meth:`SoftThinkingTable.admit`) and advanced on the device after
every sampling step (:meth:`SoftThinkingTable.step`); nothing here reads a value
back to the host. No SGLang import.

The state machine (DESIGN §4), per soft-thinking request::

    THINKING --think-end string written by the model------------------> ANSWER
    THINKING --Cold Stop or budget--> FORCING (writes the think-end ids) -> ANSWER
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang_soft_thinking import concept as C

PHASE_THINKING, PHASE_FORCING, PHASE_ANSWER = 0, 1, 2
# What each sampled token was, reported per output token (see output.py).
KIND_NONE, KIND_THINK, KIND_COLD_STOP, KIND_BUDGET, KIND_ANSWER = 0, 1, 2, 3, 4
# The longest think-end string, in tokens, the table can match.
MAX_END_TOKENS = 64


@dataclass
class RequestSettings:
    """One soft-thinking request's settings, resolved to numbers (host side)."""

    prompt_len: int
    temperature: float
    top_k: int  # C.TOP_K_ALL for no limit
    top_p: float
    min_p: float
    max_topk: int
    entropy_threshold: float
    length_threshold: int
    max_thinking_tokens: int  # -1: no budget
    noise_kind: int
    noise_param: float
    after_temperature: float
    after_top_k: int
    after_top_p: float
    after_min_p: float
    think_end_ids: list[int]
    return_trace: bool = False  # host-side only: whether the output carries the trace


@dataclass
class BatchPlan:
    """Host-side facts about one batch, known without touching the device."""

    k_used: int  # the largest max_topk in the batch
    fetch_k_think: int  # tokens to fetch for concept tokens (see concept.required_fetch_k)
    fetch_k_answer: int  # tokens to fetch for after-thinking sampling
    any_noise: bool
    any_trace: bool


@dataclass
class StepResult:
    tokens: torch.Tensor  # [B] the ids written to the output (meaningful on soft rows)
    is_soft: torch.Tensor  # [B] bool: rows whose token comes from this table
    kinds: torch.Tensor  # [B] KIND_*
    entropy: torch.Tensor  # [B]
    ids: torch.Tensor  # [B, K] concept token ids
    weights: torch.Tensor  # [B, K]


class SoftThinkingTable:
    def __init__(self, num_rows: int, k_max: int, device: torch.device | str):
        self.k_max = k_max
        self.device = torch.device(device)

        def zeros(*shape, dtype=torch.float32):
            return torch.zeros(*shape, dtype=dtype, device=self.device)

        long, boolean = torch.int64, torch.bool
        # Settings, written at admission.
        self.is_soft = zeros(num_rows, dtype=boolean)
        self.prompt_len = zeros(num_rows, dtype=long)
        self.temperature = zeros(num_rows)
        self.top_k = zeros(num_rows, dtype=long)
        self.top_p = zeros(num_rows)
        self.min_p = zeros(num_rows)
        self.max_topk = zeros(num_rows, dtype=long)
        self.entropy_threshold = zeros(num_rows)
        self.length_threshold = zeros(num_rows, dtype=long)
        self.max_thinking_tokens = zeros(num_rows, dtype=long)
        self.noise_kind = zeros(num_rows, dtype=long)
        self.noise_param = zeros(num_rows)
        self.after_temperature = zeros(num_rows)
        self.after_top_k = zeros(num_rows, dtype=long)
        self.after_top_p = zeros(num_rows)
        self.after_min_p = zeros(num_rows)
        self.end_ids = zeros(num_rows, MAX_END_TOKENS, dtype=long)  # left-aligned
        self.end_len = zeros(num_rows, dtype=long)
        # Progress, advanced by step().
        self.phase = zeros(num_rows, dtype=long)
        self.force_kind = zeros(num_rows, dtype=long)  # KIND_COLD_STOP or KIND_BUDGET while forcing
        self.forced_pos = zeros(num_rows, dtype=long)
        self.low_entropy_run = zeros(num_rows, dtype=long)
        self.thinking_steps = zeros(num_rows, dtype=long)
        self.recent = torch.full((num_rows, MAX_END_TOKENS), -1, dtype=long, device=self.device)
        # The last concept token, the input of the request's next decode step.
        self.has_concept = zeros(num_rows, dtype=boolean)
        self.concept_ids = zeros(num_rows, k_max, dtype=long)
        self.concept_weights = zeros(num_rows, k_max)

    def admit(self, rows: list[int], settings: list[RequestSettings | None]) -> None:
        """Reset the rows of newly admitted requests; None marks a plain request."""
        if not rows:
            return
        index = torch.tensor(rows, dtype=torch.int64, device=self.device)
        soft = [s is not None for s in settings]
        filled = [s or _PLAIN for s in settings]

        def put(tensor: torch.Tensor, values) -> None:
            tensor[index] = torch.tensor(values, dtype=tensor.dtype).to(self.device, non_blocking=True)

        put(self.is_soft, soft)
        for name in ("prompt_len", "temperature", "top_k", "top_p", "min_p", "max_topk",
                     "entropy_threshold", "length_threshold", "max_thinking_tokens",
                     "noise_kind", "noise_param", "after_temperature", "after_top_k",
                     "after_top_p", "after_min_p"):
            put(getattr(self, name), [getattr(s, name) for s in filled])
        ends = [s.think_end_ids[-MAX_END_TOKENS:] for s in filled]
        put(self.end_ids, [e + [0] * (MAX_END_TOKENS - len(e)) for e in ends])
        put(self.end_len, [len(e) for e in ends])
        # A zero budget skips thinking: the first token is already the think-end string.
        no_budget = [s.max_thinking_tokens == 0 for s in filled]
        put(self.phase, [PHASE_FORCING if z else PHASE_THINKING for z in no_budget])
        put(self.force_kind, [KIND_BUDGET if z else KIND_NONE for z in no_budget])
        for tensor in (self.forced_pos, self.low_entropy_run, self.thinking_steps):
            tensor[index] = 0
        self.recent[index] = -1
        self.has_concept[index] = False

    def concept_inputs(self, rows: torch.Tensor):
        """For a decode batch: which rows take a concept token as input, and its ids and weights."""
        use = self.is_soft[rows] & self.has_concept[rows]
        return use, self.concept_ids[rows], self.concept_weights[rows]

    def step(self, rows: torch.Tensor, logits: torch.Tensor, counts: torch.Tensor, plan: BatchPlan) -> StepResult:
        """Sample every soft row of a batch and advance its state.

        rows [B]: the requests' table rows; logits [B, V]; counts [B] bool: rows whose
        sample is real (False for a prefill chunk that does not end its prompt).
        """
        soft = self.is_soft[rows] & counts
        phase = self.phase[rows]
        thinking = soft & (phase == PHASE_THINKING)
        forcing = soft & (phase == PHASE_FORCING)
        answering = soft & (phase == PHASE_ANSWER)

        concept = C.concept_token(
            logits,
            temperature=self.temperature[rows], top_k=self.top_k[rows], top_p=self.top_p[rows],
            min_p=self.min_p[rows], max_topk=self.max_topk[rows], k_max=plan.k_used,
            fetch_k=plan.fetch_k_think,
            noise_kind=self.noise_kind[rows] if plan.any_noise else None,
            noise_param=self.noise_param[rows] if plan.any_noise else None,
        )
        answer_tokens = C.sample_tokens(
            logits, temperature=self.after_temperature[rows], top_k=self.after_top_k[rows],
            top_p=self.after_top_p[rows], min_p=self.after_min_p[rows], fetch_k=plan.fetch_k_answer,
        )
        forced_pos = self.forced_pos[rows]
        end_ids, end_len = self.end_ids[rows], self.end_len[rows]
        forced_tokens = end_ids.gather(1, forced_pos.clamp(max=MAX_END_TOKENS - 1).unsqueeze(1)).squeeze(1)
        tokens = torch.where(thinking, concept.ids[:, 0], torch.where(forcing, forced_tokens, answer_tokens))

        # Cold Stop counter and thinking budget.
        low = concept.entropy < self.entropy_threshold[rows]
        run = self.low_entropy_run[rows]
        run = torch.where(thinking, torch.where(low, run + 1, torch.zeros_like(run)), run)
        steps = self.thinking_steps[rows] + thinking.long()
        # Did the model's own tokens just complete the think-end string?
        recent = self.recent[rows]
        recent = torch.where(soft.unsqueeze(1), torch.cat([recent[:, 1:], tokens.unsqueeze(1)], dim=1), recent)
        end_hit = thinking & _ends_with(recent, end_ids, end_len)
        length_threshold = self.length_threshold[rows]
        cold_stop = thinking & ~end_hit & (self.entropy_threshold[rows] > 0) & (run >= length_threshold)
        budget = self.max_thinking_tokens[rows]
        out_of_budget = thinking & ~end_hit & ~cold_stop & (budget >= 0) & (steps >= budget)
        start_forcing = cold_stop | out_of_budget
        forcing_done = forcing & (forced_pos + 1 >= end_len)

        old_force_kind = self.force_kind[rows]
        kinds = torch.where(thinking, KIND_THINK, torch.where(
            forcing, old_force_kind, torch.where(answering, KIND_ANSWER, KIND_NONE)))
        new_phase = torch.where(end_hit | forcing_done, PHASE_ANSWER,
                                torch.where(start_forcing, PHASE_FORCING, phase))
        new_force_kind = torch.where(cold_stop, KIND_COLD_STOP,
                                     torch.where(out_of_budget, KIND_BUDGET, old_force_kind))
        new_forced_pos = torch.where(forcing, forced_pos + 1, torch.where(start_forcing, 0, forced_pos))

        self.phase[rows] = new_phase
        self.force_kind[rows] = new_force_kind
        self.forced_pos[rows] = new_forced_pos
        self.low_entropy_run[rows] = run
        self.thinking_steps[rows] = steps
        self.recent[rows] = recent
        # A think-end string the model wrote itself is fed back as its plain token,
        # so the answer starts after a discrete think-end like after a forced one.
        self.has_concept[rows] = torch.where(counts, thinking & ~end_hit, self.has_concept[rows])
        # Store the concept at full width (zero weights past k_used) so no column
        # keeps a value from an earlier step or an earlier occupant of the row.
        keep = thinking.unsqueeze(1)
        pad = (0, self.k_max - plan.k_used)
        ids = torch.nn.functional.pad(concept.ids, pad)
        weights = torch.nn.functional.pad(concept.weights, pad)
        self.concept_ids[rows] = torch.where(keep, ids, self.concept_ids[rows])
        self.concept_weights[rows] = torch.where(keep, weights, self.concept_weights[rows])
        return StepResult(tokens=tokens, is_soft=soft, kinds=kinds, entropy=concept.entropy,
                          ids=concept.ids, weights=concept.weights)


def _ends_with(recent: torch.Tensor, end_ids: torch.Tensor, end_len: torch.Tensor) -> torch.Tensor:
    """Whether each row of ``recent`` (right-aligned history) ends with its ``end_ids[:end_len]``."""
    width = recent.shape[1]
    # Position j of the left-aligned end_ids lines up with column width - end_len + j of recent.
    j = torch.arange(width, device=recent.device).unsqueeze(0)
    columns = (width - end_len.unsqueeze(1) + j).clamp(0, width - 1)
    aligned = recent.gather(1, columns)
    matches = (aligned == end_ids) | (j >= end_len.unsqueeze(1))
    return matches.all(dim=1) & (end_len > 0)


# Settings written to the rows of plain requests; never read for them.
_PLAIN = RequestSettings(
    prompt_len=0, temperature=1.0, top_k=C.TOP_K_ALL, top_p=1.0, min_p=0.0, max_topk=1,
    entropy_threshold=0.0, length_threshold=1, max_thinking_tokens=-1, noise_kind=C.NOISE_NONE,
    noise_param=1.0, after_temperature=0.0, after_top_k=1, after_top_p=1.0, after_min_p=0.0,
    think_end_ids=[],
)
