"""What a thinking method is: one module behind this interface (DESIGN §4, "Methods").

A method turns one thinking step's distribution into the next input and the token written
to the text. It declares:

* ``name`` (the request's ``soft_thinking.method``) and ``Params``, a pydantic model whose
  fields become request fields beside the others in ``soft_thinking``, flat names, and
  per-row settings columns (:func:`sglang_soft_thinking.settings.param_columns`);
* ``state``: the per-row columns it keeps from step to step, with their initial values;
* ``samples_while_thinking``: whether it draws text tokens from the thinking distribution
  (the request's temperature, ``top_k``, ``top_p`` and ``soft_thinking.min_p``), which
  decides how much of the sorted vocabulary its rows need;
* ``accepts_noise``, ``end_reason`` (the record kind and ``end_reason`` when the method
  itself ends thinking) and :meth:`Method.width` (columns of the input it feeds);
* ``input_kind``: ``"mixture"`` (the input is ``sum_i w_i E[ids_i]``) or ``"vector"`` (the
  input is a dense vector in embedding space the method computes from the step's own
  last-layer final-norm hidden state, :meth:`ThinkingView.hidden`; its ids and weights are
  then only the trace: the tokens nearest to the vector and their cosine similarities);
* :meth:`Method.step`, a pure-tensor function of a :class:`ThinkingView` returning a
  :class:`Thought`; and, for a method with state, :meth:`Method.advance`, the part of the
  step that moves its state, which is also what replays a retracted request (resume.py);
* the model's tokens it needs, if any (:meth:`Method.token_sets`, :meth:`Method.tokens`),
  found once from the tokenizer (:func:`vocabulary_of`).

No SGLang import. The phase machine (phases.py) is not the method's business: it decides,
from the thought, when thinking ends and what is written after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Protocol

import torch
from pydantic import BaseModel

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.draws import STREAM_THINKING_SAMPLE, RowDraws, stream_uniforms

# The streams of a method's extra thinking samples: sample j > 0 draws from stream
# EXTRA_SAMPLE_STREAMS + j (sample 0 from STREAM_THINKING_SAMPLE). Below draws.STREAM_DIRICHLET
# plus its Gamma streams, above every other stream.
EXTRA_SAMPLE_STREAMS = 64


class RowSettings(Protocol):
    """What a method reads of one request's settings on the host (settings.RequestSettings
    is one; methods do not import it: settings imports the methods)."""

    max_topk: int

    def value(self, name: str) -> int | float: ...


@dataclass(frozen=True)
class StateColumn:
    name: str
    dtype: torch.dtype  # torch.int64 or torch.float32
    initial: int | float


@dataclass
class Thought:
    """What a method makes of one thinking step, per row."""

    ids: torch.Tensor  # [N, W] the next input's token ids
    # [N, W]: the next input is sum_i weights[i] * E[ids[i]], a weighted sum: the weights sum
    # to 1 for every method here, but a weight may be negative (selar's push); zero past the support
    weights: torch.Tensor
    token: torch.Tensor  # [N] the token written to the text
    discrete: torch.Tensor  # [N] bool: the next input is ``token`` itself (as is any one-hot input)
    end: torch.Tensor | None = None  # [N] bool: the method ends thinking now (``end_reason``)
    hold_end: torch.Tensor | None = None  # [N] bool: ``token`` does not count toward the think-end string
    state: dict[str, torch.Tensor] = field(default_factory=dict)  # its state after the step
    # The vector input kind: rows whose next input is ``vector_input`` rather than the mixture
    # (their ids and weights are the trace: nearest tokens, cosine similarities).
    vector: torch.Tensor | None = None  # [N] bool
    vector_input: torch.Tensor | None = None  # [N, H] float32


@dataclass
class Advance:
    """What a method's state step decides (:meth:`Method.advance`), per row."""

    state: dict[str, torch.Tensor]  # its state after the step
    end: torch.Tensor | None = None  # [N] bool: the method ends thinking at this step
    hold_end: torch.Tensor | None = None  # [N] bool: this step's token is the method's own (Thought.hold_end)


class ThinkingView:
    """One step of the rows of one method, as the method sees it. Every tensor is [N, ...]
    over those rows; the concept token and the thinking samples are computed on demand,
    once, from the step's one full-vocabulary pass (``prefix``)."""

    def __init__(self, *, logits: torch.Tensor, prefix: C.Prefix, settings: Callable[[str], torch.Tensor],
                 state: dict[str, torch.Tensor], draws: RowDraws, first: torch.Tensor, k_used: int,
                 fetch_k_think: int, noise_kinds: frozenset[int], samples_vocabulary: bool,
                 traced: bool = True, vocabulary: "Vocabulary | None" = None, hidden: Callable[[], torch.Tensor] | None = None,
                 geometry: "Geometry | None" = None):
        self.logits, self.prefix, self.state, self.draws = logits, prefix, state, draws
        self.vocabulary = vocabulary  # the model's named token sets and tokens (methods that need them)
        self.first = first  # [N] bool: the request's first thinking step
        self.k_used = k_used  # columns of the widest input among these rows
        self.traced = traced  # some row returns its trace: what only a trace shows must be computed
        self._setting, self._fetch_k, self._noise_kinds = settings, fetch_k_think, noise_kinds
        self._samples_vocabulary = samples_vocabulary
        self._concept: C.ConceptToken | None = None
        self._hidden = hidden
        self.geometry = geometry  # the model's embedding geometry (methods feeding vectors)

    def hidden(self) -> torch.Tensor:
        """[N, H] float32: each row's last-layer final-norm hidden state at this step (the
        state the step's logits were computed from)."""
        if self._hidden is None or self.geometry is None:
            raise RuntimeError("this step has no hidden states: the model's vector inputs are not set up")
        return self._hidden()

    def setting(self, name: str) -> torch.Tensor:
        """The rows' settings column ``name`` (RequestSettings' or a method parameter's)."""
        return self._setting(name)

    @property
    def entropy(self) -> torch.Tensor:
        return self.prefix.entropy

    def concept(self) -> C.ConceptToken:
        """DESIGN §4 steps 3-5 (noise included): the concept token, ``k_used`` columns."""
        if self._concept is None:
            prefix = C.Prefix(ids=self.prefix.ids[:, :self._fetch_k], probs=self.prefix.probs[:, :self._fetch_k],
                              entropy=self.prefix.entropy)
            noise = bool(self._noise_kinds)
            concept = C.concept_from_prefix(
                prefix, top_k=self.setting("top_k"), top_p=self.setting("top_p"), min_p=self.setting("min_p"),
                max_topk=self.setting("max_topk"), k_max=self.k_used,
                noise_kind=self.setting("noise_kind") if noise else None,
                noise_param=self.setting("noise_param") if noise else None,
                draws=self.draws, noise_kinds=self._noise_kinds)
            concept.ids, concept.weights = widen(concept.ids, self.k_used), widen(concept.weights, self.k_used)
            self._concept = concept
        return self._concept

    def sample(self, count: int = 1, min_p_absolute: torch.Tensor | None = None) -> torch.Tensor:
        """``count`` tokens drawn independently, with replacement, from the thinking
        distribution (DESIGN §4 steps 1 and 3, as plain decoding samples): [N, count].

        Sample 0 is the one every sampling method writes; each sample has its own stream,
        so a request's draws do not depend on how many others it takes. A row that neither
        top-k nor top-p cuts draws unsorted over the whole vocabulary
        (:func:`concept.sample_vocabulary`), the others from the sorted prefix.
        """
        streams = (STREAM_THINKING_SAMPLE, *range(EXTRA_SAMPLE_STREAMS + 1, EXTRA_SAMPLE_STREAMS + count))
        temperature, top_k = self.setting("temperature"), self.setting("top_k")
        top_p, min_p = self.setting("top_p"), self.setting("min_p")
        sorted_ids = self.prefix.ids[:, :self._fetch_k]
        scaled = self.logits.float().gather(1, sorted_ids) / temperature.float().unsqueeze(1)
        probs = torch.softmax(scaled, dim=-1)
        weights = C.renormalise(probs * C.prefix_keep_mask(probs, top_k, top_p, min_p, min_p_absolute))  # [N, F]
        uniform = stream_uniforms(self.draws.seeds, self.draws.positions, weights.shape[1], streams)
        gumbel = -torch.log(-torch.log(uniform))  # [N, count, F]
        scores = torch.where(weights.unsqueeze(1) > 0, torch.log(weights).unsqueeze(1) + gumbel,
                             torch.full_like(gumbel, -torch.inf))
        sampled = sorted_ids.gather(1, scores.argmax(dim=-1))  # [N, count]
        if self._samples_vocabulary:
            firsts = stream_uniforms(self.draws.seeds, self.draws.positions, 1, streams)[:, :, 0]
            whole = C.sample_vocabulary(self.prefix.vocab_probs, min_p, firsts, min_p_absolute)
            sampled = torch.where(samples_unsorted(top_k, top_p).unsqueeze(1), whole, sampled)
        return sampled


@dataclass
class Geometry:
    """What methods feeding vectors need of the model's embeddings, computed once at start-up
    (geometry.py): the least-squares map from output space to input space, the mean norm of
    the input embedding's rows, and, for the trace, those rows and their inverse norms."""

    realign: torch.Tensor  # [H, H] float32: v = h @ realign
    target_norm: torch.Tensor  # [] float32
    rows: torch.Tensor  # [V, H] the input embedding's rows (the model's own weight, not a copy)
    inverse_norms: torch.Tensor  # [V] float32
    # What the model multiplies its embedding module's output by before the first layer
    # (SGLang's Gemma and Gemma 2 scale it by sqrt(H) there, where other code scales inside
    # the embedding): a vector meant to enter the first layer as it is is divided by it.
    after_embedding_scale: float = 1.0

    def nearest(self, vectors: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``count`` tokens whose input embeddings are most similar (cosine) to each of
        ``vectors`` [N, H]: (ids [N, count], similarities [N, count]), most similar first."""
        unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
        similarity = (unit.to(self.rows.dtype) @ self.rows.T).float() * self.inverse_norms  # [N, V]
        values, ids = similarity.topk(count, dim=1)
        return ids, values


@dataclass
class Vocabulary:
    """The model's tokens some methods need, found once from its tokenizer: named sets as
    boolean masks over the vocabulary ([V] on the table's device) and named single tokens."""

    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    def contains(self, name: str, ids: torch.Tensor) -> torch.Tensor:
        """Whether each id is in the set ``name`` (ids past the mask: not)."""
        mask = self.masks[name]
        return mask[ids.clamp(0, mask.shape[0] - 1)] & (ids < mask.shape[0])


def vocabulary_of(methods, tokenizer, device) -> Vocabulary:
    """Every method's named token sets (as masks on ``device``) and tokens, from the tokenizer."""
    vocabulary = Vocabulary()
    size = len(tokenizer)
    for method in methods:
        for name, ids in method.token_sets(tokenizer).items():
            mask = torch.zeros(size, dtype=torch.bool)
            mask[[i for i in ids if i < size]] = True
            vocabulary.masks[name] = mask.to(device)
        vocabulary.tokens.update(method.tokens(tokenizer))
    return vocabulary


class Method:
    """The interface; see the module docstring. Subclasses set the class attributes."""

    name: ClassVar[str]
    paper: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel] | None] = None
    state: ClassVar[tuple[StateColumn, ...]] = ()
    samples_while_thinking: ClassVar[bool] = False
    accepts_noise: ClassVar[bool] = False
    end_reason: ClassVar[str | None] = None
    input_kind: ClassVar[str] = "mixture"  # or "vector" (module docstring)

    def width(self, settings: RowSettings) -> int:
        """Columns of the input the method feeds (the concept token's by default)."""
        return settings.max_topk

    def token_sets(self, tokenizer) -> dict[str, list[int]]:
        """Named sets of the model's token ids the method's step looks tokens up in."""
        return {}

    def tokens(self, tokenizer) -> dict[str, int]:
        """Named single tokens of the model the method's step feeds."""
        return {}

    def step(self, view: ThinkingView) -> Thought:
        raise NotImplementedError

    def advance(self, state: dict[str, torch.Tensor], entropy: torch.Tensor, first: torch.Tensor,
                setting: Callable[[str], torch.Tensor]) -> Advance:
        """How the method's state moves at a thinking step whose entropy is ``entropy``.
        Used by :meth:`step` and, from a request's records, by the replay after a
        retraction; a method without state has nothing to do."""
        return Advance(state)


def widen(columns: torch.Tensor, width: int) -> torch.Tensor:
    """[N, K] zero-padded (or cut) on the right to [N, width]."""
    if columns.shape[1] >= width:
        return columns[:, :width]
    return torch.nn.functional.pad(columns, (0, width - columns.shape[1]))


def one_hot_input(token: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The input of a discrete step as (ids, weights): the token alone, weight 1."""
    ids = widen(token.unsqueeze(1), width)
    weights = widen(torch.ones(token.shape[0], 1, device=token.device), width)
    return ids, weights


def token_where(discrete: torch.Tensor, token: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor,
                width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A step's input as (ids, weights) [N, width]: the token alone where ``discrete`` [N],
    else the given ``ids`` and ``weights`` (a mixture, or a vector step's trace). Branch-free."""
    one_hot_ids, one_hot = one_hot_input(token, width)
    pick = discrete.unsqueeze(1)
    return torch.where(pick, one_hot_ids, widen(ids, width)), torch.where(pick, one_hot, widen(weights, width))


def samples_unsorted(top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Rows whose thinking samples are drawn unsorted: neither top-k nor top-p cuts.
    The rule depends on the request's own settings only, so its draws never depend on its
    batch (plan.samples_vocabulary is the same rule on the host)."""
    return (top_k >= C.TOP_K_ALL) & (top_p >= 1)
