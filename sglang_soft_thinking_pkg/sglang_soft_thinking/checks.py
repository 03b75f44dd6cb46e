"""Checks that a soft-thinking step is what it should be, on the device, without a wait.

Under tensor parallelism every rank keeps its own soft-thinking state and only the
sampled ids are synchronised; the ranks agree by construction (the same logits, the same
draws). :func:`drifted_rows` makes that loud: every ``SOFTTHINK_TP_CHECK_INTERVAL`` steps
(0: never; the server's ``--rank-check-interval``, 16 by default with ``--log-level debug``)
the ranks compare each row's thought, and a row whose ranks differ is reported with an
``error`` record, which aborts its request. No SGLang import.
"""

from __future__ import annotations

import os
from typing import Callable

import torch

INTERVAL_ENV = "SOFTTHINK_TP_CHECK_INTERVAL"
DEBUG_INTERVAL = 16


def check_interval() -> int:
    return int(os.environ.get(INTERVAL_ENV, "0") or 0)


def drifted_rows(ids: torch.Tensor, weights: torch.Tensor,
                 all_reduce_max: Callable[[torch.Tensor], torch.Tensor],
                 all_reduce_min: Callable[[torch.Tensor], torch.Tensor], atol: float = 1e-4) -> torch.Tensor:
    """[N] bool: rows whose input ids differ between ranks, or whose weights differ by more
    than ``atol``. ids, weights [N, K]; the reducers take the elementwise maximum (minimum)
    over the ranks of a float64 tensor and return it (two collectives)."""
    k = ids.shape[1]
    packed = torch.cat([ids.double(), weights.double()], dim=1)
    high, low = all_reduce_max(packed.clone()), all_reduce_min(packed.clone())
    ids_differ = (high[:, :k] != low[:, :k]).any(dim=1)
    weights_differ = ((high[:, k:] - low[:, k:]) > atol).any(dim=1)
    return ids_differ | weights_differ
