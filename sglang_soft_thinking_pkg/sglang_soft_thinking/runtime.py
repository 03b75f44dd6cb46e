"""The soft-thinking state of one SGLang scheduler process, in one place.

Each scheduler process (one per tensor-parallel rank, one per data-parallel replica) owns
one :class:`SoftThinkingTable`, created before SGLang captures its decode graphs, with as
many rows as the process's ``req_to_token`` pool; the mixer of the model's input embedding
(mixing.py); and a cache of think-end tokenisations. The forward batch being run is
published here for the length of its forward (by the hook on SGLang's ``forward_context``),
since the embedding module is not given it. Everything else about a batch travels on the
batch itself (see hooks/batch.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sglang_soft_thinking.limits import max_topk_limit
from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.methods.base import Geometry, Vocabulary, vocabulary_of
from sglang_soft_thinking.mixing import Mixer
from sglang_soft_thinking.table import SoftThinkingTable

logger = logging.getLogger(__name__)

# Attribute names the plugin sets on SGLang's objects.
SETTINGS_ATTR = "_soft_thinking_settings"  # on Req: RequestSettings, or None for a plain request
ADMITTED_ATTR = "_soft_thinking_admitted"  # on Req: (row, retraction count) of its last admission
# On Req: (retraction count, end of the re-prefill's chunks planned so far) (hooks/batch.py).
REPREFILLED_ATTR = "_soft_thinking_reprefilled"
FAILED_ATTR = "_soft_thinking_failed"  # on Req: why it was aborted (hooks/results.py)
FAULT_ATTR = "_soft_thinking_fault"  # on Req: a fault met before its step, to be agreed on (hooks/results.py)
PLAN_ATTR = "_soft_thinking_plan"  # on ForwardBatch and, while it is sampled, LogitsProcessorOutput


@dataclass
class Runtime:
    table: SoftThinkingTable | None = None
    mixer: Mixer | None = None  # mixes concept tokens as the model's input embedding embeds tokens
    # The VocabParallelEmbedding whose per-rank output takes the rank's partial mixtures
    # before the module's own all-reduce (hooks/embedding.py); None when mixed after it.
    folded_embedding: object | None = None
    # Set while SGLang captures the decode graph that plain steps replay (hooks/decode_graphs.py).
    capturing_plain: bool = False
    # The forward batch whose forward is running (None outside a forward).
    forward_batch: object | None = None
    think_end_ids: dict[str, list[int]] = field(default_factory=dict)
    steps: int = 0  # sampled batches with a plan, for the periodic cross-rank check (agreement.py)
    tp_size: int = 1  # tensor-parallel ranks of this scheduler's model
    # SGLang's deterministic mode: every row's step computed at sizes of its own (plan.py).
    batch_invariant: bool = False
    vocabulary: Vocabulary | None = None  # the model's tokens some methods need (methods/base.py)
    # The model's embedding geometry for methods that feed vectors (hooks/hidden.py); why
    # it could not be computed, if it could not (such requests are then refused).
    geometry: Geometry | None = None
    geometry_error: str | None = None
    # Whether this rank's embedding output carries the vector inputs (mixing.decode_inputs).
    owns_vectors: bool = True

    def ensure_vocabulary(self, tokenizer) -> None:
        if self.vocabulary is None and self.table is not None and tokenizer is not None:
            self.vocabulary = vocabulary_of(REGISTRY, tokenizer, self.table.device)

    def invariant_width(self) -> int | None:
        """The width every input has in the deterministic mode (None outside it)."""
        return self.table.k_max if self.batch_invariant and self.table is not None else None

    def create_table(self, num_rows: int, device) -> SoftThinkingTable:
        if self.table is None:
            # One column more than the largest max_topk: a mixture-of-inputs row's sampled token.
            self.table = SoftThinkingTable(num_rows, max_topk_limit() + 1, device)
            logger.info("soft thinking: state table with %d rows, max_topk limit %d, on %s",
                        num_rows, max_topk_limit(), device)
        return self.table

    def tokenize_think_end(self, tokenizer, text: str) -> list[int]:
        ids = self.think_end_ids.get(text)
        if ids is None:
            if tokenizer is None:
                raise ValueError("soft thinking needs the server's tokenizer for think_end_str")
            ids = list(tokenizer.encode(text, add_special_tokens=False))
            self.think_end_ids[text] = ids
        return ids


_RUNTIME = Runtime()


def get() -> Runtime:
    return _RUNTIME
