"""One decision per step that every tensor-parallel rank shares: which rows faulted, which
token each row writes, and (every few steps) which rows' soft inputs drifted apart.

Each rank keeps its own soft-thinking state. A fault on one rank only (an out-of-memory
error, say) would otherwise abort a request there and keep it running on the others, and
the next collective of the model would wait forever for a batch that no longer matches.
So every fault becomes a flag on its batch row, and once per sampled batch the ranks
combine their flags, their written tokens and, on check steps, their rows' inputs in ONE
all-reduce (MAX) of a small float64 tensor [B, 2] (or [B, 2 + 4K] on a check step):

* column 0: the row's flag (FLAG_*, 0 for none): every rank takes the largest any rank
  raised, and a flagged row is aborted on every rank (hooks/results.py);
* column 1: minus the written token: every rank writes the smallest token any rank chose
  (SGLang's own token sync, ``SYNC_TOKEN_IDS_ACROSS_TP``, keeps the minimum too);
* on a check step, each input id and weight and their negatives: MAX of ``x`` and of
  ``-x`` give the largest and the smallest value over the ranks, so a row whose ranks
  differ is found with no second collective.

Rows this rank does not think softly carry id -1 and weight 0 in the check columns: a
row soft on one rank and plain on another is drift. Device ops only, no host wait. Pure
torch; the caller supplies the all-reduce. No SGLang import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

INTERVAL_ENV = "SOFTTHINK_TP_CHECK_INTERVAL"
# A check adds 4K float64 columns to the step's all-reduce. Measured with gloo on this
# project's 2-core CPU (benchmarks/rank_check.py): at most 5.8 ms per check against a
# 25 ms decode step, so every 64 steps keeps it under 0.5% of a step (README, "tp-size").
DEFAULT_INTERVAL = 64
# A row's flag; the larger wins when ranks (or causes) differ. An error record names it.
FLAG_DRIFT, FLAG_INPUT, FLAG_FAULT = 1, 2, 3  # inputs differ; input not mixed; a fault met


def check_interval() -> int:
    """Steps between two cross-rank checks of the soft inputs (0: never)."""
    return int(os.environ.get(INTERVAL_ENV, str(DEFAULT_INTERVAL)) or 0)


@dataclass
class Agreement:
    flags: torch.Tensor  # [B] int32: the largest flag any rank raised (before drift)
    tokens: torch.Tensor  # [B] int64: the token every rank writes
    drifted: torch.Tensor | None  # [B] bool on a check step: rows whose inputs differ


def agree(flags: torch.Tensor, tokens: torch.Tensor, all_reduce_max: Callable[[torch.Tensor], torch.Tensor],
          inputs: tuple[torch.Tensor, torch.Tensor] | None = None, atol: float = 1e-4) -> Agreement:
    """The ranks' shared decision for one batch (see the module docstring).

    flags [B] int (FLAG_*), tokens [B] int; inputs: (ids [B, K], weights [B, K]) on a check step,
    else None. ``all_reduce_max`` reduces a float64 tensor in place over the ranks (MAX)
    and returns it; it is called exactly once, on every rank alike.
    """
    columns = [flags.double().unsqueeze(1), -tokens.double().unsqueeze(1)]
    k = 0
    if inputs is not None:
        ids, weights = inputs[0].double(), inputs[1].double()
        k = ids.shape[1]
        columns += [ids, -ids, weights, -weights]
    reduced = all_reduce_max(torch.cat(columns, dim=1))  # [B, 2 + 4K]
    drifted = None
    if inputs is not None:
        high_ids, low_ids = reduced[:, 2:2 + k], -reduced[:, 2 + k:2 + 2 * k]
        high_w, low_w = reduced[:, 2 + 2 * k:2 + 3 * k], -reduced[:, 2 + 3 * k:]
        drifted = (high_ids != low_ids).any(dim=1) | ((high_w - low_w) > atol).any(dim=1)
    return Agreement(flags=reduced[:, 0].to(flags.dtype), tokens=(-reduced[:, 1]).to(tokens.dtype), drifted=drifted)


def batch_inputs(num_rows: int, index: torch.Tensor, ids: torch.Tensor | None,
                 weights: torch.Tensor | None, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The soft rows' inputs scattered to their batch rows at ``width`` columns: [B, width]
    ids (-1 elsewhere) and weights (0 elsewhere). index [N]; ids, weights [N, k] or None."""
    device = index.device
    batch_ids = torch.full((num_rows, width), -1, dtype=torch.int64, device=device)
    batch_weights = torch.zeros(num_rows, width, dtype=torch.float64, device=device)
    if ids is not None and ids.shape[0]:
        k = min(width, ids.shape[1])
        batch_ids[index, :k] = ids[:, :k].long()
        batch_weights[index, :k] = weights[:, :k].double()
    return batch_ids, batch_weights
