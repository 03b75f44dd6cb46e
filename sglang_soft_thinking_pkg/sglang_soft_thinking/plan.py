"""What one forward batch asks of the plugin, decided on the host when SGLang builds it.

The plan is built once per forward batch (hooks/batch.py) and travels on the batch, so
the embedding and sampling hooks read the facts of the batch they run, however late
SGLang samples it. Every row of a batch is sampled by exactly one of three samplers:

* soft rows (:class:`SoftRows`): soft-thinking requests whose sample counts, sampled
  by the table (state.py). They are grouped by how much of the sorted vocabulary their
  settings need (:func:`group_soft_rows`), so one request with no top-k limit or with
  Dirichlet noise sorts the whole vocabulary for itself, not for the whole batch;
* seeded plain rows (:class:`SeededRows`): plain requests with a seed, sampled by the
  plugin from draws of that seed (draws.py);
* every other row (:class:`SglangRows`): SGLang's own sampler, given those rows only.

Plain data and host-side arithmetic; no SGLang import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.settings import RequestSettings


@dataclass
class ExtendInputs:
    """Positions of an extend batch whose input is a concept token.

    ``positions`` index the batch's flattened tokens. A position takes
    ``sum_i weights[i] * E[ids[i]]`` where ``use`` is set and keeps its token's own
    embedding elsewhere. Two sources: the thinking steps of a request re-prefilled after
    a retraction (its recorded concept tokens), and the decode rows of a mixed
    prefill+decode batch (their current concept token, read from the table).
    """

    positions: torch.Tensor  # [N] int64
    ids: torch.Tensor  # [N, K]
    weights: torch.Tensor  # [N, K]
    use: torch.Tensor  # [N] bool
    # The decode rows of a mixed batch whose method feeds vectors: their vectors (table.py).
    vector: torch.Tensor | None = None  # [N] bool
    vectors: torch.Tensor | None = None  # [N, H]


@dataclass
class SeededRows:
    """Batch rows of plain requests that carry a seed, with their seeds."""

    index: list[int]
    seeds: list[int]
    fetch_k: int  # tokens their top_k keeps at most (the vocabulary when one has no limit)
    index_tensor: torch.Tensor | None = None  # ``index`` on the batch's device
    seeds_tensor: torch.Tensor | None = None  # ``seeds`` on the batch's device


@dataclass(frozen=True)
class MethodSlice:
    """Rows ``start:stop`` of a group (relative to its start) of one method; ``method`` is
    None for rows known to have left thinking, which need no thought."""

    method: int | None
    start: int
    stop: int
    samples_vocabulary: bool = False  # some row draws its thinking samples unsorted
    traced: bool = True  # some row returns its trace (a vector step's nearest tokens are for it alone)


@dataclass
class SoftGroup:
    """Soft rows ``start:stop`` (in :class:`SoftRows` order) that share fetch sizes, ordered
    by method (``method_slices``)."""

    start: int
    stop: int
    k_used: int  # the group's widest input (RequestSettings.input_width)
    fetch_k_think: int  # sorted tokens the concept token needs (concept.required_fetch_k)
    fetch_k_answer: int  # sorted tokens the after-thinking sample needs
    noise_kinds: frozenset[int] = frozenset()  # the noise kinds its rows draw (concept.NOISE_*)
    method_slices: tuple[MethodSlice, ...] = ()

    @property
    def methods(self) -> frozenset[int]:
        return frozenset(s.method for s in self.method_slices if s.method is not None)

    @property
    def samples_vocabulary(self) -> bool:
        return any(s.samples_vocabulary for s in self.method_slices)

    @property
    def fetch_k(self) -> int:
        """One sorted prefix serves both: the order of the logits is every temperature's."""
        return max(self.fetch_k_think, self.fetch_k_answer)


@dataclass
class SoftRows:
    """The soft-thinking rows of a batch whose sample counts, ordered group by group."""

    index: list[int]  # batch rows
    groups: list[SoftGroup]
    k_used: int  # the widest concept token of all
    index_tensor: torch.Tensor | None = None  # ``index`` on the batch's device

    @property
    def methods(self) -> frozenset[int]:
        """The methods of the rows still thinking (answering rows have none)."""
        return frozenset().union(*(g.methods for g in self.groups))

    def position_of(self) -> dict[int, int]:
        """Batch row -> its place in this order."""
        return {row: i for i, row in enumerate(self.index)}


def samples_while_thinking(settings: RequestSettings) -> bool:
    """Whether the request's method draws text tokens from its thinking distribution."""
    return settings.method_object.samples_while_thinking


def samples_vocabulary(settings: RequestSettings) -> bool:
    """Whether its thinking sample is drawn over the whole vocabulary unsorted
    (concept.sample_vocabulary): it samples while thinking, and neither top-k nor top-p cuts.
    A rule of the request alone, so its draws never depend on its batch."""
    return samples_while_thinking(settings) and settings.top_k >= C.TOP_K_ALL and settings.top_p >= 1


def think_fetch_k(settings: RequestSettings, vocab_size: int) -> int:
    """Sorted tokens a request's thinking step needs (DESIGN §4 steps 3-5).

    Its concept token's width and its finite thinking ``top_k`` (the top-k set's mass
    renormalises top-p); Dirichlet noise draws over the whole support of step 3, which a
    finite top_k bounds and which is otherwise the vocabulary. The methods that sample a
    text token while thinking sample from that support too; with neither top-k nor top-p
    it is drawn unsorted (:func:`samples_vocabulary`), so only top-p needs the sort.
    """
    finite = [settings.top_k] if settings.top_k < C.TOP_K_ALL else []
    whole_support = (settings.noise_kind == C.NOISE_DIRICHLET
                     or (samples_while_thinking(settings) and settings.top_p < 1))
    return C.required_fetch_k(vocab_size, settings.input_width, finite, full_support=whole_support and not finite)


def answer_fetch_k(settings: RequestSettings, vocab_size: int) -> int:
    """Sorted tokens a request's after-thinking sample needs: its finite top_k, else all."""
    top_k = settings.after_top_k
    return C.required_fetch_k(vocab_size, 1, [top_k] if top_k < C.TOP_K_ALL else [],
                              full_support=top_k >= C.TOP_K_ALL)


@dataclass
class _Member:
    """A soft row as grouping sees it: what its step needs this time."""

    row: int
    width: int
    think: int  # think_fetch_k
    answer: int  # answer_fetch_k
    noise_kind: int
    method: int | None  # None: known to be answering
    samples_vocabulary: bool
    traced: bool


def _member(row: int, s: RequestSettings, vocab_size: int, answering: bool) -> _Member:
    """A row known to be answering needs only its after-thinking sample: its thinking
    settings (method, noise, a wide thinking support) no longer cost its step anything."""
    answer = answer_fetch_k(s, vocab_size)
    if answering:
        return _Member(row, s.input_width, min(s.input_width, vocab_size), answer, C.NOISE_NONE, None, False,
                       s.return_trace)
    return _Member(row, s.input_width, think_fetch_k(s, vocab_size), answer, s.noise_kind,
                   s.method, samples_vocabulary(s), s.return_trace)


def _method_slices(members: list[_Member]) -> tuple[MethodSlice, ...]:
    """Members sorted in place by method (answering rows last); their slices."""
    members.sort(key=lambda m: (m.method is None, m.method or 0))
    slices, start = [], 0
    for i in range(1, len(members) + 1):
        if i == len(members) or members[i].method != members[start].method:
            part = members[start:i]
            slices.append(MethodSlice(part[0].method, start, i, any(m.samples_vocabulary for m in part),
                                      any(m.traced for m in part)))
            start = i
    return tuple(slices)


def group_soft_rows(index: list[int], settings: list[RequestSettings], vocab_size: int,
                    answering: list[bool] | None = None, invariant_width: int | None = None) -> SoftRows:
    """Soft rows in at most three groups: those that need only a short sorted prefix, then
    those that need the whole sorted vocabulary (no top-k limit), then those that also draw
    Dirichlet noise over it (a Gamma draw per token). A request therefore never widens
    another request's step, nor makes it draw noise it did not ask for.

    ``answering``: the rows the host knows have left thinking (their records say so; the
    phase never goes back, so knowing it a step late is safe). Their step is an ordinary
    sample, so they group by their after-thinking settings alone.

    ``invariant_width`` (SGLang's deterministic mode: the table's width): every size a row's
    step is computed at depends on the row alone, so its rounding does not depend on its
    batch. Rows group by their exact fetch sizes, noise and way of sampling, and every
    input is ``invariant_width`` wide.
    """
    members = [_member(row, s, vocab_size, bool(answering and answering[i]))
               for i, (row, s) in enumerate(zip(index, settings))]
    if invariant_width is not None:
        buckets: dict[tuple, list[_Member]] = {}
        for m in members:
            buckets.setdefault((m.think, m.answer, m.noise_kind, m.samples_vocabulary), []).append(m)
        return _grouped(list(buckets.values()), invariant_width)
    narrow, wide, wide_dirichlet = [], [], []
    for member in members:
        if max(member.think, member.answer) < vocab_size:
            narrow.append(member)
        elif member.noise_kind == C.NOISE_DIRICHLET:
            wide_dirichlet.append(member)
        else:
            wide.append(member)
    return _grouped([narrow, wide, wide_dirichlet])


def _grouped(member_groups: list[list[_Member]], width: int | None = None) -> SoftRows:
    ordered, groups = [], []
    for members in member_groups:
        if not members:
            continue
        slices = _method_slices(members)
        start = len(ordered)
        ordered.extend(members)
        groups.append(SoftGroup(
            start=start, stop=len(ordered),
            k_used=width or max(m.width for m in members),
            fetch_k_think=max(m.think for m in members),
            fetch_k_answer=max(m.answer for m in members),
            noise_kinds=frozenset(m.noise_kind for m in members) - {C.NOISE_NONE},
            method_slices=slices))
    return SoftRows(index=[m.row for m in ordered], groups=groups,
                    k_used=max((g.k_used for g in groups), default=0))


@dataclass
class SglangRows:
    """The rows left to SGLang's own sampler, and its batch-wide flags for just those rows
    (the flags SGLang derives from its requests' sampling parameters)."""

    index: list[int]
    is_all_greedy: bool = False
    need_top_p_sampling: bool = True
    need_top_k_sampling: bool = True
    need_min_p_sampling: bool = True
    max_top_k: int | None = None  # an upper bound on the rows' top_k, None for no limit
    index_tensor: torch.Tensor | None = None  # ``index`` on the batch's device


@dataclass
class BatchPlan:
    """One forward batch's soft-thinking facts (see the module docstring)."""

    soft: SoftRows | None = None
    seeded_plain: SeededRows | None = None
    sglang: SglangRows | None = None
    extend_inputs: ExtendInputs | None = None
    extend_applied: bool = False  # set by the embedding hook once it has put extend_inputs in
    reqs: list = field(default_factory=list)  # the batch's requests, by batch row
    # Rows whose requests met a fault on this process before sampling (hooks/results.py
    # note_fault): flagged in the step's agreement (agreement.py), then aborted.
    fault_rows: list[int] = field(default_factory=list)
    fault_tensor: torch.Tensor | None = None  # ``fault_rows`` on the batch's device
    inputs_failed: bool = False  # set by the embedding hook when it could not mix this batch

    @property
    def has_soft(self) -> bool:
        return self.soft is not None

    @property
    def has_work(self) -> bool:
        return self.soft is not None or self.seeded_plain is not None or bool(self.fault_rows)
