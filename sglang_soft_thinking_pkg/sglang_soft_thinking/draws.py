"""Random draws that depend on (seed, position) only (DESIGN §4, "Seeds").

A request's noise and samples come from a counter-based generator: each uniform is a hash
of the request's seed, the position of the token being sampled, a stream number (which
use it is for) and a column. So a seeded request draws the same numbers whatever shares
its batch, in whatever row, after any retraction, and every tensor-parallel rank draws
alike. A request without a seed gets one derived from its request id, which is random per
request and the same on every rank. Plain functions on tensors, no SGLang import, no host
synchronisation.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

STREAM_GUMBEL_NOISE, STREAM_ANSWER, STREAM_PLAIN, STREAM_DIRICHLET = 1, 2, 3, 4
_MASK32 = 0xFFFFFFFF


def seed_of(explicit: int | None, request_id: str) -> int:
    """The request's seed: its own, else one derived from its id (63 bits, non-negative)."""
    if explicit is not None:
        return int(explicit) & ((1 << 63) - 1)
    data = request_id.encode()
    return (zlib.crc32(data) << 31 | zlib.adler32(data) >> 1) & ((1 << 63) - 1)


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32) on int64 tensors holding values below 2**32."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def uniforms(seeds: torch.Tensor, positions: torch.Tensor, width: int, stream: int) -> torch.Tensor:
    """[B, width] float32 uniforms in (0, 1): a function of (seed, position, stream, column).

    seeds, positions: [B] int64 (seeds non-negative).
    """
    seeds, positions = seeds.long(), positions.long()
    columns = torch.arange(width, device=seeds.device, dtype=torch.int64)
    h = _mix32(columns + (stream << 24)).unsqueeze(0)  # [1, W]
    h = _mix32(h ^ (positions & _MASK32).unsqueeze(1))
    h = _mix32(h ^ (seeds & _MASK32).unsqueeze(1))
    h = _mix32(h ^ ((seeds >> 32) & _MASK32).unsqueeze(1))
    return ((h >> 8).float() + 0.5) / float(1 << 24)


def gumbels(seeds: torch.Tensor, positions: torch.Tensor, width: int, stream: int) -> torch.Tensor:
    """[B, width] standard Gumbel draws, ``-ln(-ln u)``."""
    return -torch.log(-torch.log(uniforms(seeds, positions, width, stream)))


def sample_index(weights: torch.Tensor, gumbel: torch.Tensor) -> torch.Tensor:
    """One index per row with probability proportional to ``weights`` (Gumbel-max), [B].

    Zero weights are never chosen; no host synchronisation (unlike ``torch.multinomial``).
    """
    scores = torch.where(weights > 0, torch.log(weights) + gumbel, torch.full_like(weights, -torch.inf))
    return scores.argmax(dim=-1)


GAMMA_ROUNDS = 8  # Marsaglia-Tsang tries per draw; all eight fail with probability < 1e-10


def gammas(concentration: torch.Tensor, seeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Gamma(concentration, 1) draws, [B, F], from counter-based uniforms.

    Marsaglia and Tsang's method (ACM TOMS 26(3), 2000): with d = a - 1/3, c = 1/sqrt(9d),
    x ~ N(0, 1), v = (1 + c x)^3, accept d v when v > 0 and ln u < x^2/2 + d - d v + d ln v.
    For a < 1 a draw of Gamma(a + 1) is scaled by u^(1/a). The tries run side by side
    (no data-dependent loop); the first accepted one is taken.
    """
    batch, width = concentration.shape
    a = concentration.float()
    boosted = a < 1
    d = torch.where(boosted, a + 1, a) - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    # Column j's draws are the uniforms j * (2R + 1) ... (j + 1) * (2R + 1) - 1, so a column
    # draws alike however many columns the batch fetched.
    draws = uniforms(seeds, positions, width * (2 * GAMMA_ROUNDS + 1), STREAM_DIRICHLET)
    draws = draws.view(batch, width, 2 * GAMMA_ROUNDS + 1).transpose(1, 2)
    x = torch.special.ndtri(draws[:, :GAMMA_ROUNDS])  # [B, R, F] normals
    u = draws[:, GAMMA_ROUNDS:2 * GAMMA_ROUNDS]
    v = (1 + c.unsqueeze(1) * x) ** 3
    log_v = torch.log(v.clamp_min(torch.finfo(v.dtype).tiny))
    accepted = (v > 0) & (torch.log(u) < 0.5 * x * x + d.unsqueeze(1) * (1 - v + log_v))
    first = accepted.float().argmax(dim=1, keepdim=True)  # [B, 1, F]; 0 when none accepted
    value = d * v.gather(1, first).squeeze(1)
    value = torch.where(accepted.any(dim=1), value, d)
    boost = draws[:, 2 * GAMMA_ROUNDS] ** (1.0 / a)
    return torch.where(boosted, value * boost, value)


@dataclass
class RowDraws:
    """The draw source of a batch: each row's seed and the position it samples."""

    seeds: torch.Tensor  # [B] int64, non-negative
    positions: torch.Tensor  # [B] int64

    @classmethod
    def unseeded(cls, batch: int, device) -> "RowDraws":
        """Fresh random seeds (from torch's generator), for callers that need no repeatability."""
        seeds = torch.randint(0, 1 << 62, (batch,), dtype=torch.int64, device=device)
        return cls(seeds, torch.zeros(batch, dtype=torch.int64, device=device))

    def gumbel(self, width: int, stream: int) -> torch.Tensor:
        return gumbels(self.seeds, self.positions, width, stream)

    def gamma(self, concentration: torch.Tensor) -> torch.Tensor:
        return gammas(concentration, self.seeds, self.positions)
