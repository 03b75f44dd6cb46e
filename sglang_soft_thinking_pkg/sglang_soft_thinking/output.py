"""What a soft-thinking request reports back (DESIGN §5), built from the engine's output.

The engine attaches one record per output token under ``meta_info["soft_thinking"]``
(SGLang's ``customized_info`` channel; records.py builds them). A record is ``None`` for
requests without soft thinking, else a tuple ``(kind, entropy, ids, weights, pending)``:

* ``kind`` -- ``"think"`` for a thinking step; ``"think_end"`` for the thinking step whose
  token completes a think-end string the model wrote itself; ``"cold_stop"`` /
  ``"budget"`` / a method's own end reason (``"switch_cap"``) for a think-end token the
  engine wrote because Cold Stop fired, the budget ran out or the method ended thinking;
  ``"answer"`` for a token sampled after thinking; ``"error"`` for a step the engine could
  not make right (the request is then aborted with an error);
* ``entropy`` -- the step's entropy in nats (thinking steps only, else None; an
  ``"error"`` record holds what went wrong here instead);
* ``ids`` / ``weights`` -- the step's input, its concept token (thinking steps only),
  sorted by weight (the mixture of inputs puts its sampled token first; a discrete step is
  its token with weight 1), when the request asked for ``return_trace`` (else None);
* ``pending`` -- for a thinking step, how many of the last tokens (this one included) are
  the start of the think-end string: they are markup if the next tokens complete it;
* a sixth element, ``"vector"``, only on a thinking step whose input was a vector (a method
  of the vector input kind, methods/base.py): its ``ids`` / ``weights`` are then the tokens
  whose input embeddings are nearest to that vector and their cosine similarities.

The kinds say which tokens are reasoning and which the answer: the server splits a chat
choice's text by them, token by token, as they stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sglang_soft_thinking.methods import REGISTRY

META_INFO_KEY = "soft_thinking"
THINK, THINK_END, COLD_STOP, BUDGET, ANSWER, ERROR = "think", "think_end", "cold_stop", "budget", "answer", "error"
# Think-end tokens the engine wrote, by why it ended thinking.
FORCED_KINDS = (COLD_STOP, *(m.end_reason for m in REGISTRY if m.end_reason), BUDGET)
STEP_KINDS = (THINK, THINK_END)  # records of a thinking step (entropy, input)
VECTOR = "vector"  # the input kind a record names when it is not a mixture


@dataclass
class SoftThinkingSummary:
    thinking_tokens: int
    end_reason: str  # think_end | cold_stop | a method's end reason | budget | stop | length
    trace: list[dict] | None = field(default=None)

    def to_json(self) -> dict:
        out = {"thinking_tokens": self.thinking_tokens, "end_reason": self.end_reason}
        if self.trace is not None:
            out["trace"] = self.trace
        return out


def summarize(records: list | None, finish_reason: str, return_trace: bool,
              output_ids: list[int] | None = None) -> SoftThinkingSummary:
    """Summarise one finished request's records.

    ``finish_reason`` is the request's OpenAI finish reason (``"stop"`` or ``"length"``),
    used when the request ended while still thinking. ``thinking_tokens`` counts every
    token before the answer, the think-end string included. With ``output_ids`` (the
    request's output tokens, one per record) each trace entry names the token it wrote.
    """
    trace = trace_entries(records or [], output_ids) if return_trace else None
    records = [r for r in (records or []) if r is not None]
    kinds = [r[0] for r in records]
    thinking_tokens = sum(1 for kind in kinds if kind != ANSWER)
    forced = [kind for kind in FORCED_KINDS if kind in kinds]
    if forced:
        end_reason = forced[0]
    elif THINK_END in kinds or ANSWER in kinds:
        end_reason = "think_end"
    else:
        end_reason = "length" if finish_reason == "length" else "stop"
    return SoftThinkingSummary(thinking_tokens, end_reason, trace)


def trace_entries(records: list, output_ids: list[int] | None = None) -> list[dict]:
    """The trace entries of the thinking steps among ``records``, in order.

    With ``output_ids`` (the output tokens the records belong to, one per record) each entry
    also carries ``token``, the token the step wrote to the text: the input's first id for
    most methods, but not for every one (multiplex writes its first draw, which another
    draw may outweigh).
    """
    entries = []
    for position, r in enumerate(records):
        if r is None or r[0] not in STEP_KINDS or r[2] is None:
            continue
        entry = _trace_entry(r)
        if output_ids is not None and position < len(output_ids):
            entry["token"] = int(output_ids[position])
        entries.append(entry)
    return entries


def _trace_entry(record: tuple) -> dict:
    """A thinking step's trace entry; a vector step's says so (``"kind": "vector"``): its ids
    and weights are the nearest tokens and their cosine similarities."""
    entry = {"ids": list(record[2]), "weights": list(record[3]), "entropy": record[1]}
    if len(record) > 5 and record[5] == VECTOR:
        entry["kind"] = VECTOR
    return entry
