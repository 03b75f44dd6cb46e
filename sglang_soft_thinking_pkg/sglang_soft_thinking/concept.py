"""The soft-thinking maths (DESIGN §4), as plain functions on batched tensors.

No SGLang import. Every function takes one row per request; per-row parameters
are tensors, so requests with different settings share one call and nothing
here synchronises with the host.

Steps 3 and 5 keep a prefix of the probability-sorted vocabulary and
renormalise, and renormalising twice equals renormalising once over the final
support. So instead of sorting the whole vocabulary, the functions fetch the
``fetch_k`` most probable tokens and apply every cut to that prefix. The
caller chooses ``fetch_k`` so nothing is lost (see :func:`required_fetch_k`):
at least the largest ``max_topk``, at least every finite ``top_k``, and the
whole vocabulary when Dirichlet noise needs the full support.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang_soft_thinking.draws import STREAM_ANSWER, STREAM_GUMBEL_NOISE, RowDraws, sample_index

# SGLang's "no top-k limit" is a very large top_k; anything at or above the
# vocabulary size means all tokens.
TOP_K_ALL = 1 << 30
NOISE_NONE, NOISE_GUMBEL, NOISE_DIRICHLET = 0, 1, 2


@dataclass
class ConceptToken:
    ids: torch.Tensor  # [B, K] int64, sorted by weight, descending
    weights: torch.Tensor  # [B, K] float32, each row sums to 1 (zeros past the support)
    entropy: torch.Tensor  # [B] float32, nats, of the full temperature-scaled distribution


def required_fetch_k(vocab_size: int, k_max: int, finite_top_ks: list[int], full_support: bool) -> int:
    """How many top tokens a batch must fetch so that the prefix cuts are exact."""
    if full_support:
        return vocab_size
    return min(vocab_size, max([k_max, *finite_top_ks]))


def scaled_probs(logits: torch.Tensor, temperature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 1: ``p = softmax(z / T)``; also returns ``ln p``. logits [B, V], temperature [B]."""
    log_p = torch.log_softmax(logits.float() / temperature.float().unsqueeze(1), dim=-1)
    return log_p.exp(), log_p


def entropy(probs: torch.Tensor, log_probs: torch.Tensor | None = None) -> torch.Tensor:
    """Step 2: ``H = -sum(p ln p)`` over the full distribution, in nats; 0 ln 0 = 0."""
    if log_probs is None:
        return torch.special.entr(probs).sum(dim=-1)
    # The same sum from ln p already at hand (far cheaper than entr on a CPU); clamping
    # ln 0 = -inf to the lowest float makes 0 ln 0 a 0 instead of a NaN.
    return -(probs * log_probs.clamp_min(torch.finfo(log_probs.dtype).min)).sum(dim=-1)


@dataclass
class Prefix:
    """The ``fetch_k`` most likely tokens of each row, most likely first.

    The order is that of the logits, so one prefix serves every temperature.
    ``probs`` are the thinking distribution's (step 1) probabilities of those tokens.
    """

    ids: torch.Tensor  # [B, F] int64
    probs: torch.Tensor  # [B, F] float32
    entropy: torch.Tensor  # [B], step 2, of the full thinking distribution
    vocab_probs: torch.Tensor | None = None  # [B, V] step 1's whole distribution, in id order


def thinking_prefix(logits: torch.Tensor, temperature: torch.Tensor, fetch_k: int) -> Prefix:
    """Steps 1-2 in one full-vocabulary pass, and the sorted prefix every later step uses."""
    probs, log_probs = scaled_probs(logits, temperature)
    sorted_log_probs, sorted_ids = log_probs.topk(fetch_k, dim=-1)
    return Prefix(ids=sorted_ids, probs=sorted_log_probs.exp(), entropy=entropy(probs, log_probs),
                  vocab_probs=probs)


def prefix_keep_mask(
    sorted_probs: torch.Tensor,  # [B, F], descending
    top_k: torch.Tensor,  # [B] int
    top_p: torch.Tensor,  # [B] float
    min_p: torch.Tensor,  # [B] float
    min_p_absolute: torch.Tensor | None = None,  # [B] bool
) -> torch.Tensor:
    """Step 3 on a sorted prefix: top-k, then top-p on the top-k-renormalised mass, then min-p.

    Top-p keeps token i iff the renormalised mass strictly before it is <= top_p
    (the token that crosses top_p stays). Min-p drops ``p < min_p * max(p)``; it is
    scale-free, so renormalising before it changes nothing. Rows with ``min_p_absolute``
    drop instead the tokens under ``min_p`` after top-k and top-p renormalise (SwiReasoning's
    code's floor).
    """
    positions = torch.arange(sorted_probs.shape[1], device=sorted_probs.device)
    keep = positions.unsqueeze(0) < top_k.unsqueeze(1)
    kept = sorted_probs * keep
    # Mass of the top-k set; 1 when top-k keeps the whole vocabulary (it may reach past the prefix).
    top_k_mass = torch.where(top_k >= TOP_K_ALL, torch.ones_like(top_p), kept.sum(dim=-1))
    mass_before = kept.cumsum(dim=-1) - kept
    keep &= mass_before <= top_p.unsqueeze(1) * top_k_mass.unsqueeze(1)
    floor = min_p.unsqueeze(1) * sorted_probs[:, :1]
    if min_p_absolute is not None:
        # The mass top-k and top-p keep (the whole distribution's when neither cuts: the
        # prefix may then be shorter than the support).
        kept_mass = torch.where((top_k >= TOP_K_ALL) & (top_p >= 1), torch.ones_like(top_p),
                                (sorted_probs * keep).sum(dim=-1))
        floor = torch.where(min_p_absolute.unsqueeze(1), (min_p * kept_mass).unsqueeze(1), floor)
    keep &= sorted_probs >= floor
    return keep


def renormalise(weights: torch.Tensor) -> torch.Tensor:
    return weights / weights.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)


def dirichlet_noise(weights: torch.Tensor, alpha: torch.Tensor, draws: RowDraws) -> torch.Tensor:
    """Step 4 (Dirichlet): ``p ~ Dir(alpha * p)`` over the support (weights > 0).

    Sampled as normalised Gamma(alpha * p_i) draws; tokens outside the support
    keep weight 0. If every draw underflows to 0 the row keeps its weights.
    """
    support = weights > 0
    concentration = torch.where(support, alpha.unsqueeze(1) * weights, torch.ones_like(weights))
    gamma = draws.gamma(concentration) * support
    total = gamma.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, gamma / total.clamp_min(torch.finfo(gamma.dtype).tiny), weights)


def gumbel_softmax_noise(weights: torch.Tensor, tau: torch.Tensor, draws: RowDraws) -> torch.Tensor:
    """Step 4 (Gumbel-softmax) on step 5's top-k: ``softmax((ln w + g) / tau)``, g ~ Gumbel(0, 1).

    Zero weights stay zero (ln 0 = -inf).
    """
    gumbel = draws.gumbel(weights.shape[1], STREAM_GUMBEL_NOISE)
    return torch.softmax((torch.log(weights) + gumbel) / tau.unsqueeze(1), dim=-1)


def keep_top(ids: torch.Tensor, weights: torch.Tensor, max_topk: torch.Tensor, k_max: int):
    """Step 5: sort by weight, keep each row's ``max_topk`` largest (<= k_max columns), renormalise."""
    weights, order = weights.topk(min(k_max, weights.shape[1]), dim=-1)  # sorted, descending
    ids = ids.gather(1, order)
    positions = torch.arange(weights.shape[1], device=weights.device)
    weights = weights * (positions.unsqueeze(0) < max_topk.unsqueeze(1))
    return ids, renormalise(weights)


def concept_token(
    logits: torch.Tensor,  # [B, V]
    *,
    temperature: torch.Tensor,  # [B] > 0
    top_k: torch.Tensor,  # [B] int, TOP_K_ALL for no limit
    top_p: torch.Tensor,  # [B]
    min_p: torch.Tensor,  # [B]
    max_topk: torch.Tensor,  # [B] int, 1..k_max
    k_max: int,
    fetch_k: int,
    noise_kind: torch.Tensor | None = None,  # [B] int: NOISE_NONE / NOISE_GUMBEL / NOISE_DIRICHLET
    noise_param: torch.Tensor | None = None,  # [B]: Gumbel tau or Dirichlet alpha
    draws: RowDraws | None = None,  # the rows' noise source (unseeded if None)
) -> ConceptToken:
    """Steps 1-5 for a batch: the concept token of each row."""
    prefix = thinking_prefix(logits, temperature, fetch_k)
    return concept_from_prefix(prefix, top_k=top_k, top_p=top_p, min_p=min_p, max_topk=max_topk,
                               k_max=k_max, noise_kind=noise_kind, noise_param=noise_param,
                               draws=draws)


def concept_from_prefix(
    prefix: Prefix,
    *,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
    min_p: torch.Tensor,
    max_topk: torch.Tensor,
    k_max: int,
    noise_kind: torch.Tensor | None = None,
    noise_param: torch.Tensor | None = None,
    draws: RowDraws | None = None,
    noise_kinds: frozenset[int] = frozenset({NOISE_GUMBEL, NOISE_DIRICHLET}),
) -> ConceptToken:
    """Steps 3-5 on the sorted prefix of steps 1-2.

    ``noise_kinds``: the kinds ``noise_kind`` may hold (known on the host); a kind no row
    draws is not computed.
    """
    weights = renormalise(prefix.probs * prefix_keep_mask(prefix.probs, top_k, top_p, min_p))
    if noise_kind is not None and draws is None:
        draws = RowDraws.unseeded(weights.shape[0], weights.device)
    if noise_kind is not None and NOISE_DIRICHLET in noise_kinds:
        is_dirichlet = (noise_kind == NOISE_DIRICHLET).unsqueeze(1)
        weights = torch.where(is_dirichlet, dirichlet_noise(weights, noise_param, draws), weights)
    ids, weights = keep_top(prefix.ids, weights, max_topk, k_max)
    if noise_kind is not None and NOISE_GUMBEL in noise_kinds:
        is_gumbel = (noise_kind == NOISE_GUMBEL).unsqueeze(1)
        noisy = gumbel_softmax_noise(weights, noise_param, draws)
        weights = torch.where(is_gumbel, noisy, weights)
        weights, order = weights.sort(dim=-1, descending=True)
        ids = ids.gather(1, order)
    return ConceptToken(ids=ids, weights=weights, entropy=prefix.entropy)


def sample_tokens(
    logits: torch.Tensor,  # [B, V]
    *,
    temperature: torch.Tensor,  # [B]; 0 means greedy
    top_k: torch.Tensor,
    top_p: torch.Tensor,
    min_p: torch.Tensor,
    fetch_k: int,
    prefix_ids: torch.Tensor | None = None,  # [B, >= fetch_k] the logits' sorted ids, if known
    draws: RowDraws | None = None,  # the rows' draw source (unseeded if None)
    stream: int = STREAM_ANSWER,
) -> torch.Tensor:
    """Ordinary sampling for the answer phase, with the after-thinking parameters. Returns [B] ids.

    The kept tokens all lie in the ``fetch_k`` largest logits (``fetch_k`` is at least
    every finite ``top_k``, the vocabulary when one row has none), and renormalising makes
    the softmax over those logits alone exact. ``prefix_ids``, the logits' sorted ids from
    the thinking pass (their order is every temperature's), spare a second sort.
    """
    greedy = temperature <= 0
    safe_temperature = torch.where(greedy, torch.ones_like(temperature), temperature)
    if prefix_ids is not None and prefix_ids.shape[1] >= fetch_k:
        sorted_ids = prefix_ids[:, :fetch_k]
    else:
        sorted_ids = logits.topk(fetch_k, dim=-1).indices
    scaled = logits.float().gather(1, sorted_ids) / safe_temperature.float().unsqueeze(1)
    sorted_probs = torch.softmax(scaled, dim=-1)
    weights = renormalise(sorted_probs * prefix_keep_mask(sorted_probs, top_k, top_p, min_p))
    if draws is None:
        draws = RowDraws.unseeded(weights.shape[0], weights.device)
    choice = sample_index(weights, draws.gumbel(weights.shape[1], stream))  # [B]
    sampled = sorted_ids.gather(1, choice.unsqueeze(1)).squeeze(1)
    return torch.where(greedy, sorted_ids[:, 0], sampled)


def sample_vocabulary(probs: torch.Tensor, min_p: torch.Tensor, uniform: torch.Tensor,
                      min_p_absolute: torch.Tensor | None = None) -> torch.Tensor:
    """Step 3 and a sample, for rows that neither top-k nor top-p cuts: no sort needed.

    probs [B, V], a whole distribution in token-id order; min_p [B]; uniform [B] (or [B, S]
    for S samples) in (0, 1). Min-p keeps ``p >= min_p * max(p)`` (a cut by value, not by
    rank), and a sample is the inverse of the kept mass's cumulative sum at ``uniform`` times
    that mass: the first token whose cumulative mass reaches it. A token of zero mass adds
    nothing to the sum, so the token before it always reaches the target first: it is never
    chosen. One uniform per sample and one pass over the vocabulary, the cost of the softmax
    itself. Returns ids shaped like ``uniform``. Rows with ``min_p_absolute`` keep
    ``p >= min_p`` instead (nothing cuts them before, so their mass is 1).
    """
    peak = probs.amax(dim=-1, keepdim=True)
    if min_p_absolute is not None:
        peak = torch.where(min_p_absolute.unsqueeze(1), torch.ones_like(peak), peak)
    kept = torch.where(probs >= min_p.unsqueeze(1) * peak, probs, torch.zeros_like(probs))
    cumulative = kept.cumsum(dim=-1)
    targets = uniform.to(cumulative.dtype).reshape(uniform.shape[0], -1) * cumulative[:, -1:]
    chosen = torch.searchsorted(cumulative, targets.contiguous()).clamp_max(probs.shape[1] - 1)
    return chosen.reshape(uniform.shape)


def mix_embeddings(token_embeddings: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Step 6: ``sum_i w_i E[ids_i]``. token_embeddings [B, K, H], weights [B, K] -> [B, H]."""
    mixed = torch.einsum("bk,bkh->bh", weights.float(), token_embeddings.float())
    return mixed.to(token_embeddings.dtype)
