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

import functools
import zlib
from dataclasses import dataclass

import torch

from sglang_soft_thinking.transfer import to_device

# STREAM_THINKING_SAMPLE: the text token of the methods that sample while thinking.
STREAM_GUMBEL_NOISE, STREAM_ANSWER, STREAM_PLAIN, STREAM_THINKING_SAMPLE = 1, 2, 3, 4
GAMMA_ROUNDS = 8  # Marsaglia-Tsang tries per draw; all eight fail with probability < 1e-10
# A Gamma draw uses 2 * GAMMA_ROUNDS + 1 streams from here on: normals, acceptance uniforms, boost.
STREAM_DIRICHLET = 16
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


def _key64(x: torch.Tensor) -> torch.Tensor:
    """A 64-bit key from a value below 2**32: two lowbias32 hashes side by side."""
    return _mix32(x) << 32 | _mix32(x ^ 0x5BD1E995)


def _row_keys(seeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """[B] 64-bit keys, a hash of each row's (seed, position)."""
    seeds, positions = seeds.long(), positions.long()
    h = _mix32(seeds & _MASK32)
    h = _mix32(h ^ ((seeds >> 32) & _MASK32))
    return _key64(h ^ (positions & _MASK32))


@functools.lru_cache(maxsize=32)
def _column_keys(width: int, streams: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """[S, W] 64-bit keys, a hash of each (stream, column); the same for every row and step."""
    columns = torch.arange(width, device=device, dtype=torch.int64)
    offsets = to_device(list(streams), torch.int64, device) << 24
    return _key64(_mix32(columns.unsqueeze(0) + offsets.unsqueeze(1)))


_GOLDEN64 = -0x61C8864680B583EB  # 0x9E3779B97F4A7C15 as a signed 64-bit value


def stream_uniforms(seeds: torch.Tensor, positions: torch.Tensor, width: int,
                    streams: tuple[int, ...], columns: torch.Tensor | None = None) -> torch.Tensor:
    """[B, S, width] float32 uniforms in (0, 1): a function of (seed, position, stream, column).

    The row's 64-bit key (seed, position) XOR the column's (stream, column), multiplied
    by an odd constant (wrapping); the top 24 bits of the product are the number. Both
    keys are already well mixed, so one multiply per number suffices: this is the inner
    loop of Dirichlet noise over a whole vocabulary. seeds, positions: [B] int64 (seeds
    non-negative); width < 2**24. With ``columns`` ([B, M] indices below ``width``), only
    those columns' numbers, [B, S, M].
    """
    keys = _column_keys(width, tuple(streams), seeds.device).unsqueeze(0)  # [1, S, W]
    if columns is not None:
        keys = keys.expand(columns.shape[0], -1, -1).gather(
            2, columns.unsqueeze(1).expand(-1, len(streams), -1))
    h = (keys ^ _row_keys(seeds, positions).view(-1, 1, 1)) * _GOLDEN64
    return ((h >> 40) & 0xFFFFFF).float().add_(0.5).mul_(1.0 / (1 << 24))


def uniforms(seeds: torch.Tensor, positions: torch.Tensor, width: int, stream: int) -> torch.Tensor:
    """[B, width] uniforms of one stream (see :func:`stream_uniforms`)."""
    return stream_uniforms(seeds, positions, width, (stream,))[:, 0]


def gumbels(seeds: torch.Tensor, positions: torch.Tensor, width: int, stream: int) -> torch.Tensor:
    """[B, width] standard Gumbel draws, ``-ln(-ln u)``."""
    return -torch.log(-torch.log(uniforms(seeds, positions, width, stream)))


def sample_index(weights: torch.Tensor, gumbel: torch.Tensor) -> torch.Tensor:
    """One index per row with probability proportional to ``weights`` (Gumbel-max), [B].

    Zero weights are never chosen; no host synchronisation (unlike ``torch.multinomial``).
    """
    scores = torch.where(weights > 0, torch.log(weights) + gumbel, torch.full_like(weights, -torch.inf))
    return scores.argmax(dim=-1)


# Streams of a Gamma draw: try r's normal and its acceptance uniform, and the a < 1 boost.
_NORMAL_STREAMS = tuple(range(STREAM_DIRICHLET, STREAM_DIRICHLET + GAMMA_ROUNDS))
_ACCEPT_STREAMS = tuple(range(STREAM_DIRICHLET + GAMMA_ROUNDS, STREAM_DIRICHLET + 2 * GAMMA_ROUNDS))
_BOOST_STREAM = STREAM_DIRICHLET + 2 * GAMMA_ROUNDS
# From this width on, the later tries run only on the columns the first try rejected.
RETRY_FROM_WIDTH = 4096


def _tries(d: torch.Tensor, normals: torch.Tensor, accept_uniforms: torch.Tensor):
    """Marsaglia-Tsang tries side by side. d [B, F]; normals, accept_uniforms [B, R, F].

    Returns the first accepted try's v (1 where none was accepted) and whether any was, [B, F].
    """
    d = d.unsqueeze(1)
    v = (1 + torch.rsqrt(9.0 * d) * normals) ** 3
    log_v = torch.log(v.clamp_min(torch.finfo(v.dtype).tiny))
    bound = 0.5 * normals * normals + d * (1 - v + log_v)
    accepted = (v > 0) & (torch.log(accept_uniforms) < bound)
    value = torch.ones_like(d[:, 0])
    for r in reversed(range(normals.shape[1])):  # the first accepted wins
        value = torch.where(accepted[:, r], v[:, r], value)
    return value, accepted.any(dim=1)


def gammas(concentration: torch.Tensor, seeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Gamma(concentration, 1) draws, [B, F], from counter-based uniforms.

    Marsaglia and Tsang's method (ACM TOMS 26(3), 2000): with d = a - 1/3, c = 1/sqrt(9d),
    x ~ N(0, 1), v = (1 + c x)^3, accept d v when v > 0 and ln u < x^2/2 + d - d v + d ln v.
    For a < 1 a draw of Gamma(a + 1) is scaled by u^(1/a). Up to GAMMA_ROUNDS tries per
    draw, with no data-dependent loop: the first accepted is taken (all fail with
    probability < 1e-10; the draw is then d). Column j's numbers depend on j alone, not on
    how many columns the batch fetched.

    A try is accepted with probability > 0.95, so on a wide row (a whole vocabulary) the
    first try runs on every column and the later ones on a fixed eighth of the columns
    that holds the rejected ones (about 5%; more than an eighth is some 14 standard
    deviations away, and those past it take d).
    """
    batch, width = concentration.shape
    a = concentration.float()
    boosted = a < 1
    d = torch.where(boosted, a + 1, a) - 1.0 / 3.0
    if width < RETRY_FROM_WIDTH:
        normals = torch.special.ndtri(stream_uniforms(seeds, positions, width, _NORMAL_STREAMS))
        value, _ = _tries(d, normals, stream_uniforms(seeds, positions, width, _ACCEPT_STREAMS))
    else:
        first = _NORMAL_STREAMS[:1] + _ACCEPT_STREAMS[:1]
        draws = stream_uniforms(seeds, positions, width, first)
        value, accepted = _tries(d, torch.special.ndtri(draws[:, :1]), draws[:, 1:])
        retry = (~accepted).float().topk(width // 8, dim=1).indices  # [B, M], the rejected first
        later = _NORMAL_STREAMS[1:] + _ACCEPT_STREAMS[1:]
        draws = stream_uniforms(seeds, positions, width, later, columns=retry)
        rounds = GAMMA_ROUNDS - 1
        retried, _ = _tries(d.gather(1, retry), torch.special.ndtri(draws[:, :rounds]), draws[:, rounds:])
        value = value.scatter(1, retry, torch.where(accepted.gather(1, retry), value.gather(1, retry), retried))
    value = value * d
    boost = uniforms(seeds, positions, width, _BOOST_STREAM) ** (1.0 / a)
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

    def uniform(self, stream: int) -> torch.Tensor:
        """[B] one uniform per row."""
        return uniforms(self.seeds, self.positions, 1, stream)[:, 0]

    def gumbel(self, width: int, stream: int) -> torch.Tensor:
        return gumbels(self.seeds, self.positions, width, stream)

    def gamma(self, concentration: torch.Tensor) -> torch.Tensor:
        return gammas(concentration, self.seeds, self.positions)
