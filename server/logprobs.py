"""Log-probabilities of generated tokens, from SGLang's output to OpenAI's two shapes.

SGLang (asked with ``return_logprob`` and ``top_logprobs_num``) reports, per output
token, ``meta_info["output_token_logprobs"][i] = (logprob, token_id, text)`` and
``meta_info["output_top_logprobs"][i] = [(logprob, token_id, text), ...]`` (most likely
first). Chat completions report them as ``{"content": [{"token", "logprob", "bytes",
"top_logprobs": [...]}]}``, text completions as ``{"tokens", "token_logprobs",
"top_logprobs": [{token: logprob}], "text_offset"}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from server.protocol import ChatLogprobs, ChatTokenLogprob, CompletionLogprobs, TopLogprob

# JSON has no -inf; a token the model rules out gets this instead (as other servers do).
MIN_LOGPROB = -9999.0


@dataclass
class TokenLogprob:
    """One generated token: its text, log-probability and the most likely alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else MIN_LOGPROB


def token_logprobs(meta: dict, start: int, decode: Callable[[int], str]) -> list[TokenLogprob]:
    """The tokens from ``start`` on, as far as the output reports them.

    SGLang's lists in ``meta_info`` may be shared with later outputs of a stream, so the
    end is the length recorded with this output, not the list's current length.
    """
    chosen = meta.get("output_token_logprobs") or []
    tops = meta.get("output_top_logprobs") or []
    end = meta.get("output_token_logprobs_length", len(chosen))
    entries = []
    for i in range(start, end):
        logprob, token_id, _ = chosen[i]
        alternatives = tops[i] if i < len(tops) and tops[i] else []
        entries.append(TokenLogprob(decode(token_id), _finite(logprob),
                                    [(decode(tid), _finite(lp)) for lp, tid, _ in alternatives]))
    return entries


def chat_logprobs(entries: list[TokenLogprob]) -> ChatLogprobs:
    return ChatLogprobs(content=[
        ChatTokenLogprob(token=e.token, logprob=e.logprob, bytes=list(e.token.encode()),
                         top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=list(t.encode()))
                                       for t, lp in e.top])
        for e in entries])


def completion_logprobs(entries: list[TokenLogprob], text_offset: int = 0) -> CompletionLogprobs:
    """``text_offset`` is where the first entry's token starts in the choice's text."""
    offsets = []
    for entry in entries:
        offsets.append(text_offset)
        text_offset += len(entry.token)
    return CompletionLogprobs(tokens=[e.token for e in entries],
                              token_logprobs=[e.logprob for e in entries],
                              top_logprobs=[dict(e.top) for e in entries],
                              text_offset=offsets)
