"""The streaming splitter gives the same reasoning and content as ``split_reasoning``."""

from __future__ import annotations

import random

import pytest
from sglang_soft_thinking.output import split_reasoning

from server.soft_thinking import ReasoningSplitter

END = "</think>"
TEXTS = [
    "plain answer without thinking",
    "step one, step two</think>\n\nThe answer is 4.",
    "thinking</think>answer",
    "</think>answer only",
    "all thinking </thi",
    "almost <</think>\nyes</think> twice",
    "",
]


def stream_through(text: str, is_one_token: bool, cuts: list[int]) -> tuple[str, str]:
    splitter = ReasoningSplitter(END, is_one_token)
    reasoning, content = "", ""
    bounds = [0, *sorted(cuts), len(text)]
    for start, stop in zip(bounds, bounds[1:]):
        r, c = splitter.feed(text[start:stop])
        reasoning, content = reasoning + r, content + c
    r, c = splitter.finish()
    return reasoning + r, content + c


@pytest.mark.parametrize("is_one_token", [True, False])
@pytest.mark.parametrize("text", TEXTS)
def test_any_chunking_matches_split_reasoning(text, is_one_token):
    expected_reasoning, expected_content = split_reasoning(text, END, is_one_token)
    rng = random.Random(0)
    for _ in range(50):
        cuts = rng.sample(range(len(text) + 1), k=min(len(text), rng.randint(0, 6)))
        reasoning, content = stream_through(text, is_one_token, cuts)
        # Equal texts also mean the first think-end string was never emitted.
        assert reasoning == (expected_reasoning or "")
        assert content == (expected_content or "")


def test_one_token_model_streams_reasoning_before_the_end():
    splitter = ReasoningSplitter(END, think_end_is_one_token=True)
    assert splitter.feed("Let me think") == ("Let me think", "")
    assert splitter.feed(" more </th") == (" more ", "")
    assert splitter.feed("ink>\n") == ("", "")
    assert splitter.feed("\nDone") == ("", "Done")


def test_other_model_holds_text_until_the_end_string():
    splitter = ReasoningSplitter(END, think_end_is_one_token=False)
    assert splitter.feed("hmm") == ("", "")
    assert splitter.feed("</think>ok") == ("hmm", "ok")
