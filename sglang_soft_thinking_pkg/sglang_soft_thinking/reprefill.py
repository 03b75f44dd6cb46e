"""A retracted soft request's re-prefill, planned where its records are and shared with every rank.

Only the tensor-parallel rank that sends outputs keeps a soft request's per-token records
(records.py); the others keep nothing per token. When SGLang re-admits a retracted soft
request, every rank needs the request's state to admit it with (resume.py) and, for each
chunk of its re-prefill, the recorded inputs of the chunk's positions that were fed
concept tokens. So the rank with the records computes them (:func:`compute`) and
broadcasts them to the others (:func:`share`), once per forward batch that re-prefills
such a request. Every rank decides whether a batch does from the same facts (its
requests, their output lengths, rows and chunk bounds; all ranks build the same batches),
so they all make the broadcast or none does. A retraction is rare and its re-prefill is a
prefill, so the host wait of this collective never falls on a decode step.

A fault while computing them (records that do not cover the output, a bug) travels in the
broadcast as the request's error: every rank notes the same fault on the request, and the
step's agreement aborts it on all of them (agreement.py). No SGLang import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sglang_soft_thinking.records import RequestRecords
from sglang_soft_thinking.resume import FedInputs, RecordsMismatch, resume
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.table import RowState

logger = logging.getLogger(__name__)


@dataclass
class Wanted:
    """One request of the batch whose re-prefill needs its records."""

    row: int  # its row in the batch
    settings: RequestSettings
    records: object  # what this rank keeps of its records (RequestRecords on the rank that sends outputs)
    output_ids: Sequence[int]
    new: bool  # new to its table row: it is admitted with its resumed state
    start: int  # output tokens [start, stop) are re-prefilled in this chunk
    stop: int


@dataclass
class Shared:
    """What every rank takes for one request: its state (when new to its row), the chunk's
    concept inputs as (output token index, ids, weights), or why they could not be had."""

    state: RowState | None = None
    fed: list[tuple[int, list[int], list[float]]] = field(default_factory=list)
    error: str | None = None


def compute(wanted: Wanted) -> Shared:
    """The request's share, from its records; a fault becomes the share's error."""
    try:
        if not isinstance(wanted.records, RequestRecords):
            raise RecordsMismatch("this rank keeps no records of the request's steps")
        state = None
        if wanted.new:
            resumed = resume(wanted.settings, wanted.records, wanted.output_ids)
            state, fed = resumed.state, resumed.fed
        else:  # a later chunk of the same re-prefill
            fed = FedInputs(wanted.records, wanted.output_ids)
        inputs = []
        for index in range(wanted.start, wanted.stop):
            concept = fed[index]
            if concept is not None:
                inputs.append((index, concept[0], concept[1]))
        return Shared(state=state, fed=inputs)
    except Exception as error:
        logger.exception("soft thinking: the re-prefill of a retracted request could not be planned")
        return Shared(error=f"its re-prefill could not be planned from its records: {error}")


def share(wanted: list[Wanted], keeps_records: bool,
          broadcast: Callable[[dict[int, Shared] | None], dict[int, Shared]]) -> dict[int, Shared]:
    """Each wanted request's share by batch row, the same on every rank.

    ``keeps_records``: this rank is the broadcast's source; ``broadcast`` sends its argument
    from the source to every rank of the tensor-parallel group and returns it there (it is
    called on every rank alike, and not at all when nothing is wanted)."""
    if not wanted:
        return {}
    local = {w.row: compute(w) for w in wanted} if keeps_records else None
    return broadcast(local)
