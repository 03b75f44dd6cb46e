"""The model's embedding geometry that methods feeding vectors need, computed once at start-up.

LaTER's map from the output space (where the last hidden state ``h`` lives: logits are
``h @ W_out^T``) back to the input space (rows of ``W_in``) is the ridge least-squares
solution ``W_a = (W_out^T W_out + lambda I)^-1 W_out^T W_in`` [H, H]: ``h @ W_a`` is the
input whose embedding dot products best match ``h``'s logits. Both Gram products are
accumulated over the vocabulary in chunks (float32, as the authors compute them), so no
``[V, H]`` float32 copy of either matrix is made; the ``[H, H]`` system is solved in float64.
Plain torch, no SGLang import.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import torch

from sglang_soft_thinking.methods.base import Geometry

logger = logging.getLogger(__name__)
RIDGE_LAMBDA = 1e-5  # the authors' regulariser
CHUNK_ROWS = 8192


def build_geometry(input_rows: Callable[[torch.Tensor], torch.Tensor], output_weight: torch.Tensor,
                   trace_weight: torch.Tensor, vocab_size: int, lam: float = RIDGE_LAMBDA,
                   chunk_rows: int = CHUNK_ROWS) -> Geometry:
    """``input_rows(ids)`` [n, H]: the input embedding of ids as the model reads them (a
    scaled lookup scaled); ``output_weight`` [>= V, H]: the output head's rows;
    ``trace_weight`` [>= V, H]: the input rows the trace's cosine similarities use (kept by
    reference, not copied: cosines ignore a lookup's uniform scale)."""
    started = time.perf_counter()
    device = output_weight.device
    hidden = output_weight.shape[1]
    gram = torch.zeros(hidden, hidden, dtype=torch.float32, device=device)
    cross = torch.zeros(hidden, hidden, dtype=torch.float32, device=device)
    norm_sum = torch.zeros((), dtype=torch.float64, device=device)
    trace_norms = torch.empty(vocab_size, dtype=torch.float32, device=device)
    for start in range(0, vocab_size, chunk_rows):
        ids = torch.arange(start, min(start + chunk_rows, vocab_size), device=device)
        w_out = output_weight[start:start + ids.shape[0]].float()  # [n, H]
        w_in = input_rows(ids).float()  # [n, H]
        gram += w_out.T @ w_out
        cross += w_out.T @ w_in
        norm_sum += w_in.norm(dim=1).double().sum()
        trace_norms[start:start + ids.shape[0]] = trace_weight[start:start + ids.shape[0]].float().norm(dim=1)
    regularised = gram.double() + lam * torch.eye(hidden, dtype=torch.float64, device=device)
    realign = torch.linalg.solve(regularised, cross.double()).float()
    geometry = Geometry(realign=realign, target_norm=(norm_sum / vocab_size).float(),
                        rows=trace_weight[:vocab_size], inverse_norms=1.0 / trace_norms.clamp_min(1e-12))
    logger.info("soft thinking: latent realignment map %dx%d (%.1f MiB) computed in %.2f s",
                hidden, hidden, realign.numel() * 4 / 2**20, time.perf_counter() - started)
    return geometry
