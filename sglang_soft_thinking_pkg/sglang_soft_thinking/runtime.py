"""The soft-thinking state of one SGLang scheduler process, in one place.

Each scheduler process (one per tensor-parallel rank) owns one
:class:`SoftThinkingTable`, created on first use with as many rows as the
process's ``req_to_token`` pool, and one cache of think-end tokenisations.
The three hook modules reach both through :func:`get`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from sglang_soft_thinking.params import max_topk_limit
from sglang_soft_thinking.state import BatchPlan, SoftThinkingTable

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    table: SoftThinkingTable | None = None
    # The embedding module the model reads decode inputs through; set with the table.
    input_embedding: torch.nn.Module | None = None
    # The forward batch being run, while ModelRunner.forward runs it, and the one
    # being sampled, while ModelRunner.sample samples it.
    forward_batch: object | None = None
    sampling_batch: object | None = None
    # The plan of the batch Scheduler.run_batch is running (None: no soft request in it).
    plan: BatchPlan | None = None
    think_end_ids: dict[str, list[int]] = field(default_factory=dict)

    def ensure_table(self, num_rows: int, device: torch.device | str) -> SoftThinkingTable:
        if self.table is None:
            self.table = SoftThinkingTable(num_rows, max_topk_limit(), device)
            logger.info("soft thinking: state table with %d rows, max_topk limit %d, on %s",
                        num_rows, self.table.k_max, device)
        return self.table

    def tokenize_think_end(self, tokenizer, text: str) -> list[int]:
        ids = self.think_end_ids.get(text)
        if ids is None:
            ids = list(tokenizer.encode(text, add_special_tokens=False))
            self.think_end_ids[text] = ids
        return ids


_RUNTIME = Runtime()


def get() -> Runtime:
    return _RUNTIME
