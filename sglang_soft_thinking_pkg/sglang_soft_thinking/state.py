"""Per-request soft-thinking state, on the device, one row per request slot.

Rows are indexed the way SGLang indexes requests: by ``req_pool_idx`` (the
request's row in ``req_to_token``). A request's row is written once when it is
admitted (:meth:`SoftThinkingTable.admit`) and advanced on the device after
every sampling step (:meth:`SoftThinkingTable.step`); nothing here reads a value
back to the host. No SGLang import.

The state machine (DESIGN §4), per soft-thinking request::

    THINKING --think-end string written by the model------------------> ANSWER
    THINKING --Cold Stop, switch cap or budget--> FORCING (writes the think-end ids) -> ANSWER

A thinking step feeds back what the request's method makes of the step's distribution:
the concept token (``concept``), a blend of a sampled token with the distribution
(``mixture_of_inputs``, mixture.py), or, for ``switch`` (switch.py), the concept token
in latent mode and the sampled token itself in explicit mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.draws import STREAM_THINKING_SAMPLE, RowDraws
from sglang_soft_thinking.mixture import mixture_of_inputs
from sglang_soft_thinking.switch import MODE_EXPLICIT, MODE_LATENT, SwitchState, switch_step

if TYPE_CHECKING:
    from sglang_soft_thinking.plan import SoftGroup, SoftRows

PHASE_THINKING, PHASE_FORCING, PHASE_ANSWER = 0, 1, 2
# What each sampled token was, reported per output token (see output.py).
KIND_NONE, KIND_THINK, KIND_COLD_STOP, KIND_BUDGET, KIND_ANSWER, KIND_SWITCH_CAP = 0, 1, 2, 3, 4, 5
# The longest think-end string, in tokens, the table can match.
MAX_END_TOKENS = 64


@dataclass
class RequestSettings:
    """One soft-thinking request's settings, resolved to numbers (host side).

    Every ``int`` and ``float`` field is also a column of :class:`SoftThinkingTable`, one
    value per row, written at admission; the defaults are what a plain request's row holds
    (never read for it). Fields marked ``host`` stay on the host.
    """

    prompt_len: int = 0
    temperature: float = 1.0
    top_k: int = C.TOP_K_ALL  # C.TOP_K_ALL for no limit
    top_p: float = 1.0
    min_p: float = 0.0
    max_topk: int = 1
    entropy_threshold: float = 0.0
    length_threshold: int = 1
    max_thinking_tokens: int = -1  # -1: no budget
    method: int = C.METHOD_CONCEPT
    noise_kind: int = C.NOISE_NONE
    noise_param: float = 1.0
    beta: float = 1.0  # mixture of inputs (mixture.py)
    window_size: int = 1  # switch (switch.py)
    max_switch_count: int = -1  # switch; -1: no cap
    after_temperature: float = 0.0
    after_top_k: int = 1
    after_top_p: float = 1.0
    after_min_p: float = 0.0
    think_end_ids: list[int] = field(default_factory=list)
    seed: int = 0  # the request's seed, or one derived from its id (draws.seed_of)
    # Whether the output carries the trace.
    return_trace: bool = field(default=False, metadata={"host": True})

    @property
    def width(self) -> int:
        """Columns of the request's concept token: ``max_topk`` candidates, and for the
        mixture of inputs one more, the sampled token, which may lie outside them."""
        return self.max_topk + (self.method == C.METHOD_MIXTURE_OF_INPUTS)


# The table's settings columns: name -> dtype, from RequestSettings' numeric fields.
SETTINGS_COLUMNS = {f.name: (torch.int64 if f.type == "int" else torch.float32)
                    for f in fields(RequestSettings)
                    if f.type in ("int", "float") and not f.metadata.get("host")}


@dataclass
class RowState:
    """A request's progress through the state machine, host side.

    A new request starts from :meth:`initial`; a request that comes back after SGLang
    retracted it resumes from the state rebuilt from its own records (see resume.py).
    """

    phase: int = PHASE_THINKING
    force_kind: int = KIND_NONE
    forced_pos: int = 0
    low_entropy_run: int = 0
    thinking_steps: int = 0
    recent: list[int] = field(default_factory=list)  # the last output ids, oldest first
    concept_ids: list[int] | None = None  # the concept token fed next, if any
    concept_weights: list[float] | None = None
    # The switch method's state (switch.py).
    switch_mode: int = MODE_LATENT
    switch_stay: int = 0
    switch_reference: float = 0.0
    switch_count: int = 0

    @classmethod
    def initial(cls, settings: "RequestSettings") -> "RowState":
        # A zero budget skips thinking: the first token is already the think-end string.
        if settings.max_thinking_tokens == 0:
            return cls(phase=PHASE_FORCING, force_kind=KIND_BUDGET)
        return cls()


@dataclass
class StepResult:
    """One step of a batch's soft rows, in :class:`~sglang_soft_thinking.plan.SoftRows` order."""

    tokens: torch.Tensor  # [N] the ids written to the output
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
        for name, dtype in SETTINGS_COLUMNS.items():
            setattr(self, name, zeros(num_rows, dtype=dtype))
        self.end_ids = zeros(num_rows, MAX_END_TOKENS, dtype=long)  # left-aligned
        self.end_len = zeros(num_rows, dtype=long)
        # Progress, advanced by step().
        self.phase = zeros(num_rows, dtype=long)
        self.force_kind = zeros(num_rows, dtype=long)  # KIND_COLD_STOP or KIND_BUDGET while forcing
        self.forced_pos = zeros(num_rows, dtype=long)
        self.low_entropy_run = zeros(num_rows, dtype=long)
        self.thinking_steps = zeros(num_rows, dtype=long)
        self.switch_mode = zeros(num_rows, dtype=long)
        self.switch_stay = zeros(num_rows, dtype=long)
        self.switch_reference = zeros(num_rows)
        self.switch_count = zeros(num_rows, dtype=long)
        self.recent = torch.full((num_rows, MAX_END_TOKENS), -1, dtype=long, device=self.device)
        # The last concept token, the input of the request's next decode step.
        self.has_concept = zeros(num_rows, dtype=boolean)
        self.concept_ids = zeros(num_rows, k_max, dtype=long)
        self.concept_weights = zeros(num_rows, k_max)

    def admit(self, rows: list[int], settings: list[RequestSettings | None],
              states: list[RowState | None] | None = None) -> None:
        """Write the rows of newly admitted requests: settings and progress.

        None settings mark a plain request; a None state (or no ``states``) starts the
        request from the beginning. Every column of the row is written, so nothing of an
        earlier occupant survives.
        """
        if not rows:
            return
        index = torch.tensor(rows, dtype=torch.int64, device=self.device)
        filled = [s or _PLAIN for s in settings]
        states = [st or RowState.initial(s) for st, s in zip(states or [None] * len(rows), filled)]

        def put(tensor: torch.Tensor, values) -> None:
            tensor[index] = torch.tensor(values, dtype=tensor.dtype).to(self.device, non_blocking=True)

        put(self.is_soft, [s is not None for s in settings])
        for name in SETTINGS_COLUMNS:
            put(getattr(self, name), [getattr(s, name) for s in filled])
        ends = [s.think_end_ids[-MAX_END_TOKENS:] for s in filled]
        put(self.end_ids, [e + [0] * (MAX_END_TOKENS - len(e)) for e in ends])
        put(self.end_len, [len(e) for e in ends])
        for name in ("phase", "force_kind", "forced_pos", "low_entropy_run", "thinking_steps",
                     "switch_mode", "switch_stay", "switch_reference", "switch_count"):
            put(getattr(self, name), [getattr(st, name) for st in states])
        recent = [st.recent[-MAX_END_TOKENS:] for st in states]
        put(self.recent, [[-1] * (MAX_END_TOKENS - len(r)) + r for r in recent])
        put(self.has_concept, [st.concept_ids is not None for st in states])
        width = self.k_max
        put(self.concept_ids, [pad_list(st.concept_ids, width, 0) for st in states])
        put(self.concept_weights, [pad_list(st.concept_weights, width, 0.0) for st in states])

    def concept_inputs(self, rows: torch.Tensor, k: int | None = None):
        """Which rows take a concept token as their next input, and its first ``k`` ids and
        weights (all ``k_max`` by default). Device ops only, no branch on the values, so
        a captured graph replays it correctly for whatever the rows hold at replay time."""
        k = self.k_max if k is None else k
        use = self.is_soft[rows] & self.has_concept[rows]
        return use, self.concept_ids[rows, :k], self.concept_weights[rows, :k]

    def step(self, rows: torch.Tensor, logits: torch.Tensor, soft: "SoftRows",
             positions: torch.Tensor | None = None) -> StepResult:
        """Sample the soft rows of a batch and advance their state.

        rows [N]: the requests' table rows, in ``soft``'s order; logits [N, V], those rows'
        logits; positions [N]: the position of the token each row samples, which with the
        row's seed determines its random draws (draws.py). Without positions the draws are
        unseeded. Every row is a soft-thinking request whose sample counts.
        """
        parts = [self._sample_group(rows[g.start:g.stop], logits[g.start:g.stop], g, soft.k_used,
                                    None if positions is None else positions[g.start:g.stop])
                 for g in soft.groups]
        concept = C.ConceptToken(ids=torch.cat([p[0].ids for p in parts]),
                                 weights=torch.cat([p[0].weights for p in parts]),
                                 entropy=torch.cat([p[0].entropy for p in parts]))
        answer_tokens = torch.cat([p[1] for p in parts])
        phase = self.phase[rows]
        thinking = phase == PHASE_THINKING
        explicit = switch_capped = torch.zeros_like(thinking)
        if any(C.METHOD_SWITCH in g.methods for g in soft.groups):
            sampled = torch.cat([p[2] for p in parts])
            explicit, switch_capped = self._switch(rows, thinking, concept, sampled)
        forcing = phase == PHASE_FORCING

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
        recent = torch.cat([recent[:, 1:], tokens.unsqueeze(1)], dim=1)
        end_hit = thinking & _ends_with(recent, end_ids, end_len)
        length_threshold = self.length_threshold[rows]
        cold_stop = thinking & ~end_hit & (self.entropy_threshold[rows] > 0) & (run >= length_threshold)
        capped = thinking & ~end_hit & ~cold_stop & switch_capped
        budget = self.max_thinking_tokens[rows]
        out_of_budget = thinking & ~end_hit & ~cold_stop & ~capped & (budget >= 0) & (steps >= budget)
        start_forcing = cold_stop | capped | out_of_budget
        forcing_done = forcing & (forced_pos + 1 >= end_len)

        old_force_kind = self.force_kind[rows]
        kinds = torch.where(thinking, KIND_THINK, torch.where(forcing, old_force_kind, KIND_ANSWER))
        new_phase = torch.where(end_hit | forcing_done, PHASE_ANSWER,
                                torch.where(start_forcing, PHASE_FORCING, phase))
        new_force_kind = torch.where(cold_stop, KIND_COLD_STOP, torch.where(
            capped, KIND_SWITCH_CAP, torch.where(out_of_budget, KIND_BUDGET, old_force_kind)))
        new_forced_pos = torch.where(forcing, forced_pos + 1, torch.where(start_forcing, 0, forced_pos))

        self.phase[rows] = new_phase
        self.force_kind[rows] = new_force_kind
        self.forced_pos[rows] = new_forced_pos
        self.low_entropy_run[rows] = run
        self.thinking_steps[rows] = steps
        self.recent[rows] = recent
        # A think-end string the model wrote itself is fed back as its plain token,
        # so the answer starts after a discrete think-end like after a forced one.
        # An explicit step (switch) feeds its sampled token itself, like an answer token.
        self.has_concept[rows] = thinking & ~end_hit & ~explicit
        # Store the concept at full width (zero weights past k_used) so no column
        # keeps a value from an earlier step or an earlier occupant of the row.
        keep = thinking.unsqueeze(1)
        ids, weights = _widen(concept.ids, self.k_max), _widen(concept.weights, self.k_max)
        self.concept_ids[rows] = torch.where(keep, ids, self.concept_ids[rows])
        self.concept_weights[rows] = torch.where(keep, weights, self.concept_weights[rows])
        return StepResult(tokens=tokens, kinds=kinds, entropy=concept.entropy,
                          ids=concept.ids, weights=concept.weights)

    def _sample_group(self, rows: torch.Tensor, logits: torch.Tensor, group: "SoftGroup", k_used: int,
                      positions: torch.Tensor | None) -> tuple[C.ConceptToken, torch.Tensor, torch.Tensor]:
        """A group's concept tokens (``k_used`` columns), after-thinking samples and, for the
        methods that sample while thinking, the thinking samples (zeros for the others).

        One full-vocabulary pass (steps 1-2) per row; its sorted prefix of ``group.fetch_k``
        tokens serves the concept token (steps 3-5) and the answer sample alike.
        """
        draws = (RowDraws.unseeded(rows.shape[0], logits.device) if positions is None
                 else RowDraws(self.seed[rows], positions.long()))
        prefix = C.thinking_prefix(logits, self.temperature[rows], group.fetch_k)
        think_prefix = C.Prefix(ids=prefix.ids[:, :group.fetch_k_think],
                                probs=prefix.probs[:, :group.fetch_k_think], entropy=prefix.entropy)
        noise = bool(group.noise_kinds)
        concept = C.concept_from_prefix(
            think_prefix, top_k=self.top_k[rows], top_p=self.top_p[rows],
            min_p=self.min_p[rows], max_topk=self.max_topk[rows], k_max=group.k_used,
            noise_kind=self.noise_kind[rows] if noise else None,
            noise_param=self.noise_param[rows] if noise else None,
            draws=draws, noise_kinds=group.noise_kinds,
        )
        answer = C.sample_tokens(
            logits, temperature=self.after_temperature[rows], top_k=self.after_top_k[rows],
            top_p=self.after_top_p[rows], min_p=self.after_min_p[rows], fetch_k=group.fetch_k_answer,
            prefix_ids=prefix.ids, draws=draws,
        )
        concept.ids, concept.weights = _widen(concept.ids, k_used), _widen(concept.weights, k_used)
        # The token plain decoding would sample with the thinking settings (steps 1 and 3):
        # the text token of the mixture of inputs and of the switch method's explicit steps.
        sampled = torch.zeros_like(answer)
        if group.methods & {C.METHOD_MIXTURE_OF_INPUTS, C.METHOD_SWITCH}:
            sampled = C.sample_tokens(
                logits, temperature=self.temperature[rows], top_k=self.top_k[rows],
                top_p=self.top_p[rows], min_p=self.min_p[rows], fetch_k=group.fetch_k_think,
                prefix_ids=prefix.ids, draws=draws, stream=STREAM_THINKING_SAMPLE,
            )
        if group.samples_vocabulary:
            whole = C.sample_vocabulary(prefix.vocab_probs, self.min_p[rows],
                                        draws.uniform(STREAM_THINKING_SAMPLE))
            unsorted = samples_vocabulary_rows(self.method[rows], self.top_k[rows], self.top_p[rows])
            sampled = torch.where(unsorted, whole, sampled)
        if C.METHOD_MIXTURE_OF_INPUTS in group.methods:
            # Every mixture row of the group has max_topk + 1 <= k_used columns.
            num_candidates = max(1, min(group.k_used - 1, prefix.ids.shape[1]))
            top_ids = prefix.ids[:, :num_candidates]
            ids, weights, _ = mixture_of_inputs(logits.gather(1, top_ids), top_ids, self.max_topk[rows],
                                                sampled, self.beta[rows])
            is_mixture = (self.method[rows] == C.METHOD_MIXTURE_OF_INPUTS).unsqueeze(1)
            concept.ids = torch.where(is_mixture, _widen(ids, k_used), concept.ids)
            concept.weights = torch.where(is_mixture, _widen(weights, k_used), concept.weights)
        return concept, answer, sampled

    def _switch(self, rows: torch.Tensor, thinking: torch.Tensor, concept: C.ConceptToken,
                sampled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The switch method's step (switch.py) for its thinking rows: advances their mode and
        makes an explicit step's concept token its sampled token alone (in place). Returns
        which rows step explicitly and which reached the switch cap.

        Where the engine differs from the authors' code: the latent input is the concept
        token (top ``max_topk``, DESIGN §4) rather than the whole untempered distribution,
        the entropy is that of the thinking distribution (Cold Stop's), latent steps write
        ``ids[0]`` like the concept method, and the ``<think>``/``</think>`` embeddings are
        not blended in at a switch.
        """
        update = thinking & (self.method[rows] == C.METHOD_SWITCH)
        before = SwitchState(self.switch_mode[rows], self.switch_stay[rows],
                             self.switch_reference[rows], self.switch_count[rows])
        after, capped = switch_step(before, concept.entropy, self.thinking_steps[rows] == 0,
                                    self.window_size[rows], self.max_switch_count[rows])
        for name in ("mode", "stay", "reference", "count"):
            old, new = getattr(before, name), getattr(after, name)
            getattr(self, f"switch_{name}")[rows] = torch.where(update, new, old)
        explicit = update & (after.mode == MODE_EXPLICIT)
        one_hot_ids = _widen(sampled.unsqueeze(1), concept.ids.shape[1])
        one_hot = _widen(torch.ones_like(concept.weights[:, :1]), concept.weights.shape[1])
        concept.ids = torch.where(explicit.unsqueeze(1), one_hot_ids, concept.ids)
        concept.weights = torch.where(explicit.unsqueeze(1), one_hot, concept.weights)
        return explicit, update & capped


def samples_vocabulary_rows(method: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """plan.samples_vocabulary, row by row on the device."""
    samples = (method == C.METHOD_MIXTURE_OF_INPUTS) | (method == C.METHOD_SWITCH)
    return samples & (top_k >= C.TOP_K_ALL) & (top_p >= 1)


def _widen(columns: torch.Tensor, width: int) -> torch.Tensor:
    """[N, K] zero-padded on the right to [N, width]."""
    return torch.nn.functional.pad(columns, (0, width - columns.shape[1]))


def pad_list(values: list | None, width: int, fill) -> list:
    """``values`` cut or padded with ``fill`` to ``width`` items."""
    values = list(values or [])[:width]
    return values + [fill] * (width - len(values))


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
_PLAIN = RequestSettings()
