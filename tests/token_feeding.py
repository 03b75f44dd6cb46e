"""Feeding a reasoning splitter as the server does: tokens in slices, with the engine's records."""

from __future__ import annotations

import random

from sglang_soft_thinking.output import ANSWER, THINK, THINK_END

from server.reasoning import ReasoningSplitter


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def engine_marks(ids: list[int], end: list[int]) -> tuple[list[str], list[int]]:
    """The kinds and pending counts the engine records for a model that writes ``ids`` while
    thinking (DESIGN §4): the token completing ``end`` is ``think_end``, the tokens after it
    answer; a thinking token's pending count is the longest proper prefix of ``end`` that the
    written tokens end with."""
    kinds, pending = [], []
    for i in range(len(ids)):
        written = ids[:i + 1]
        if THINK_END in kinds:
            kinds.append(ANSWER)
            pending.append(0)
        elif written[-len(end):] == end:
            kinds.append(THINK_END)
            pending.append(0)
        else:
            kinds.append(THINK)
            pending.append(max((m for m in range(1, len(end)) if written[-m:] == end[:m]), default=0))
    return kinds, pending


def run(splitter: ReasoningSplitter, ids: list[int], kinds: list | None, cuts=(),
        matched=None, pending: list[int] | None = None) -> tuple[str, str, int]:
    """Feeds the tokens in slices cut at ``cuts``; returns the streamed reasoning and content
    (checked equal to the splitter's whole texts) and the reasoning tokens counted."""
    bounds = [0, *sorted(cuts), len(ids)]
    reasoning = content = ""

    def part(values, start, stop=None):
        return None if values is None else values[start:stop]

    for start, stop in zip(bounds[:-2], bounds[1:-1]):
        r, c = splitter.feed(ids[start:stop], part(kinds, start, stop), part(pending, start, stop))
        reasoning, content = reasoning + r, content + c
    r, c = splitter.finish(ids[bounds[-2]:], part(kinds, bounds[-2]), matched, part(pending, bounds[-2]))
    assert (reasoning + r, content + c) == (splitter.reasoning or "", splitter.content or "")
    return reasoning + r, content + c, splitter.reasoning_tokens


def every_slicing(ids):
    """Cuts to feed ``ids`` at: none (whole), after every token, and 30 random slicings."""
    rng = random.Random(0)
    yield []
    yield list(range(1, len(ids)))  # token by token
    for _ in range(30):
        yield rng.sample(range(1, len(ids)), k=rng.randint(1, min(8, len(ids) - 1)))
