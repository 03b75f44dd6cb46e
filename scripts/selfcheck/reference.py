"""Independent float64 references, written from the rules (DESIGN §4), not from the plugin:

* :func:`mixture` — a concept token's input ``sum_i w_i E[ids_i]`` in float64;
* :func:`concept_weights` — a row's concept token as a dense [V] vector: ``softmax(z / T)``,
  top-k, top-p on the top-k-renormalised mass (the token that crosses it stays), min-p
  (``p < min_p * max p`` dropped), the ``max_topk`` most probable kept, renormalised;
* :func:`support` — the tokens steps 1-3 keep (Dirichlet noise redistributes over them);
* :func:`mixture_of_inputs` — Mixture of Inputs' input for a sampled token: the prior ``q``
  over the ``max_topk`` most probable tokens of the untempered softmax, ``H_n = H(q) / ln N``,
  ``H_n (q + beta y) / (1 + beta) + (1 - H_n) y``;
* :func:`think_router` — ThinkRouter's input: the sampled token alone when the step's
  largest tempered probability is under ``tau``, else the concept token;
* :func:`selar` — SeLaR's input: with ``q`` the ``k`` most probable tokens of the filtered
  distribution renormalised and ``H = H(q) / ln k``, the vector ``e + push H (e - E[top1])``
  (``e = sum q_i E_i``) as weights on the tokens when ``H >= threshold`` and the sampled
  token is no maths token, else the sampled token alone;
* :func:`realign` — LaTER's map from output to input space: ``X`` minimising
  ``|W_out X - W_in|^2 + lambda |X|^2``, written as the stacked least-squares system
  ``[W_out; sqrt(lambda) I] X = [W_in; 0]`` and solved by QR factorisations;
* :func:`latent_input` — a latent step's input: ``h X`` rescaled to the mean norm of the
  rows of ``W_in``, or ``h`` itself (``projection: "none"``);
* :func:`cosines` — a vector's cosine similarity to given rows of ``W_in`` (a vector step's
  trace lists its nearest tokens by this).

One row at a time, by full sorts: slow and plain on purpose.
"""

from __future__ import annotations

import math

import torch


def mixture(weight: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ids, weights [N, K] -> [N, H] float64."""
    rows = weight[ids].double()  # [N, K, H]
    return (weights.double().unsqueeze(2) * rows).sum(dim=1)


def filtered(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float) -> torch.Tensor:
    """Steps 1-3 on one row's logits [V]: the filtered distribution [V] float64."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    sorted_probs, order = probs.sort(descending=True, stable=True)
    keep = torch.ones_like(sorted_probs, dtype=torch.bool)
    if 0 < top_k < probs.numel():
        keep[top_k:] = False
    kept = sorted_probs * keep
    if top_p < 1:
        mass_before = torch.cumsum(kept / kept.sum(), 0) - kept / kept.sum()
        keep &= mass_before <= top_p
    keep &= sorted_probs >= min_p * sorted_probs[0]
    dense = torch.zeros_like(probs)
    dense[order[keep]] = sorted_probs[keep]
    return dense / dense.sum()


def concept_weights(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float,
                    max_topk: int) -> torch.Tensor:
    probs = filtered(logits, temperature, top_k, top_p, min_p)
    values, order = probs.sort(descending=True, stable=True)
    dense = torch.zeros_like(probs)
    dense[order[:max_topk]] = values[:max_topk]
    return dense / dense.sum()


def support(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float) -> torch.Tensor:
    return filtered(logits, temperature, top_k, top_p, min_p) > 0


def near(cut, logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float, *rest):
    """``cut(logits, ...)`` with top-p and min-p exact and nudged by one part in 1e5 either
    way: a token whose float32 mass sits on a cut may fall either side of it."""
    for dp in (1.0, 1 - 1e-5, 1 + 1e-5):
        for dm in (1.0, 1 - 1e-5, 1 + 1e-5):
            yield cut(logits, temperature, top_k, min(top_p * dp, 1.0) if top_p < 1 else top_p, min_p * dm, *rest)


def mixture_of_inputs(logits: torch.Tensor, max_topk: int, sampled: int, beta: float) -> torch.Tensor:
    probs = torch.softmax(logits.double(), dim=-1)
    values, order = probs.sort(descending=True, stable=True)
    q = values[:max_topk] / values[:max_topk].sum()
    h_n = min(1.0, float(-(q * q.log()).sum()) / math.log(max_topk)) if max_topk > 1 else 0.0
    out = torch.zeros_like(probs)
    out[order[:max_topk]] = h_n * q / (1 + beta)
    out[sampled] += h_n * beta / (1 + beta) + (1 - h_n)
    return out


def think_router(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float,
                 max_topk: int, tau: float, written: int):
    """The inputs the step may have fed (a largest probability within 1e-5 of ``tau`` may
    route either way; each route's concept token as :func:`near` allows)."""
    p_max = float(torch.softmax(logits.double() / temperature, dim=-1).max())
    if p_max < tau + 1e-5:
        one_hot = torch.zeros(logits.shape[-1], dtype=torch.float64, device=logits.device)
        one_hot[written] = 1.0
        yield one_hot
    if p_max >= tau - 1e-5:
        yield from near(concept_weights, logits, temperature, top_k, top_p, min_p, max_topk)


def selar(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float, k: int,
          threshold: float, push: float, written: int, is_math: bool):
    """The inputs the step may have fed (an entropy within 1e-5 of the threshold may route
    either way)."""
    values, order = filtered(logits, temperature, top_k, top_p, min_p).sort(descending=True, stable=True)
    q = values[:k] / values[:k].sum()
    h = min(1.0, max(0.0, -sum(x * math.log(x) for x in q.tolist() if x > 0) / math.log(k)))
    if is_math or h < threshold + 1e-5:
        one_hot = torch.zeros(logits.shape[-1], dtype=torch.float64, device=logits.device)
        one_hot[written] = 1.0
        yield one_hot
    if not is_math and h >= threshold - 1e-5:
        pushed = torch.zeros(logits.shape[-1], dtype=torch.float64, device=logits.device)
        pushed[order[:k]] = (1 + push * h) * q
        pushed[order[0]] -= push * h
        yield pushed


def dense(ids: torch.Tensor, weights: torch.Tensor, vocab: int) -> torch.Tensor:
    """A row's (ids, weights) [K] as a [V] float64 vector (repeated ids add up)."""
    out = torch.zeros(vocab, dtype=torch.float64, device=ids.device)
    return out.index_add(0, ids, weights.double())


RIDGE_LAMBDA = 1e-5  # LaTER's regulariser


def realign(w_in: torch.Tensor, w_out: torch.Tensor, lam: float = RIDGE_LAMBDA, chunk_rows: int = 8192) -> torch.Tensor:
    """w_in, w_out [V, H] -> X [H, H] float64: the stacked system solved by Householder QR
    (no normal equations), a chunk of rows at a time: the rows seen so far reduce to their
    ``R`` and ``Q^T b`` (the residual orthogonal to them does not depend on X), so memory
    stays a chunk's whatever the vocabulary."""
    hidden = w_out.shape[1]
    upper = math.sqrt(lam) * torch.eye(hidden, dtype=torch.float64, device=w_out.device)  # [H, H]
    rhs = torch.zeros_like(upper)  # the regulariser's rows aim at 0
    for start in range(0, w_out.shape[0], chunk_rows):
        stacked = torch.cat([upper, w_out[start:start + chunk_rows].double()])  # [H + n, H]
        target = torch.cat([rhs, w_in[start:start + chunk_rows].double()])  # [H + n, H]
        q, upper = torch.linalg.qr(stacked)
        rhs = q.T @ target
    return torch.linalg.solve_triangular(upper, rhs, upper=True)


def latent_input(hidden: torch.Tensor, realign_map: torch.Tensor, w_in: torch.Tensor,
                 as_is: torch.Tensor) -> torch.Tensor:
    """hidden [N, H], as_is [N] bool -> [N, H] float64."""
    h = hidden.double()
    projected = h @ realign_map
    mean_norm = w_in.double().norm(dim=1).mean()
    projected = projected * (mean_norm / projected.norm(dim=1, keepdim=True))
    return torch.where(as_is.unsqueeze(1), h, projected)


def cosines(w_in: torch.Tensor, vectors: torch.Tensor, ids: torch.Tensor | None = None,
            chunk_rows: int = 8192) -> torch.Tensor:
    """vectors [N, H]; ids [N, K] -> [N, K] float64 (every row of ``w_in`` without ids: [N, V],
    a chunk of rows at a time)."""
    unit = vectors.double() / vectors.double().norm(dim=1, keepdim=True)  # [N, H]
    if ids is not None:
        chosen = w_in[ids].double()  # [N, K, H]
        return (chosen @ unit.unsqueeze(2)).squeeze(2) / chosen.norm(dim=2)
    parts = []
    for start in range(0, w_in.shape[0], chunk_rows):
        rows = w_in[start:start + chunk_rows].double()  # [n, H]
        parts.append((unit @ rows.T) / rows.norm(dim=1))
    return torch.cat(parts, dim=1)
