"""What a soft-thinking request reports back (DESIGN §5), built from the engine's output.

The engine attaches one record per output token under ``meta_info["soft_thinking"]``
(SGLang's ``customized_info`` channel). A record is ``None`` for requests without
soft thinking, else a tuple ``(kind, entropy, ids, weights)``:

* ``kind`` -- ``"think"`` for a thinking step, ``"cold_stop"`` / ``"switch_cap"`` /
  ``"budget"`` for a think-end token the engine wrote because Cold Stop fired, the switch
  method reached its cap on switches or the budget ran out,
  ``"answer"`` for a token sampled after thinking;
* ``entropy`` -- the step's entropy in nats (``"think"`` steps only, else None);
* ``ids`` / ``weights`` -- the concept token (``"think"`` steps only): sorted by weight,
  except that with the mixture of inputs ``ids[0]`` is the sampled token (mixture.py);
  when the request asked for ``return_trace`` (else None). The scheduler keeps them for
  every request, since a request SGLang retracts is resumed from its records (resume.py).

The kinds also say which tokens are reasoning and which the answer: the server splits a
chat choice's text by them, token by token, as they stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

META_INFO_KEY = "soft_thinking"
THINK, COLD_STOP, BUDGET, ANSWER = "think", "cold_stop", "budget", "answer"
SWITCH_CAP = "switch_cap"  # the switch method's cap on switches ended thinking (switch.py)
FORCED_KINDS = (COLD_STOP, SWITCH_CAP, BUDGET)  # think-end tokens the engine wrote


@dataclass
class SoftThinkingSummary:
    thinking_tokens: int
    end_reason: str  # think_end | cold_stop | switch_cap | budget | stop | length
    trace: list[dict] | None = field(default=None)

    def to_json(self) -> dict:
        out = {"thinking_tokens": self.thinking_tokens, "end_reason": self.end_reason}
        if self.trace is not None:
            out["trace"] = self.trace
        return out


def summarize(records: list | None, finish_reason: str, return_trace: bool) -> SoftThinkingSummary:
    """Summarise one finished request's records.

    ``finish_reason`` is the request's OpenAI finish reason (``"stop"`` or ``"length"``),
    used when the request ended while still thinking. ``thinking_tokens`` counts every
    token before the answer, the think-end string included.
    """
    records = [r for r in (records or []) if r is not None]
    kinds = [r[0] for r in records]
    thinking_tokens = sum(1 for kind in kinds if kind != ANSWER)
    forced = [kind for kind in FORCED_KINDS if kind in kinds]
    if forced:
        end_reason = forced[0]
    elif ANSWER in kinds:
        end_reason = "think_end"
    else:
        end_reason = "length" if finish_reason == "length" else "stop"
    trace = trace_entries(records) if return_trace else None
    return SoftThinkingSummary(thinking_tokens, end_reason, trace)


def trace_entries(records: list) -> list[dict]:
    """The trace entries of the concept-token steps among ``records``, in order."""
    return [{"ids": list(r[2]), "weights": list(r[3]), "entropy": r[1]}
            for r in records if r is not None and r[0] == THINK and r[2] is not None]

