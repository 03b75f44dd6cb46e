"""A chat choice's reasoning and answer, split by its tokens (server/reasoning.py).

The default model's real tokenizer; a copy of it with ``<think>`` and ``</think>`` added as
single tokens stands for a model with a thinking template. Fed whole or in any slices, a
choice splits alike.
"""

from __future__ import annotations

import random

import pytest
from sglang_soft_thinking.output import ANSWER, BUDGET, COLD_STOP, THINK
from transformers import AutoTokenizer

from server.reasoning import ReasoningSplitter, TokenSorter, thinking_template
from server_process import model_path

REASONING = "Let me add 12 and 7: café 🦜 漢字, so 19"
ANSWER_TEXT = "\n\nThe answer is 19 ꙮ."


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(model_path())


@pytest.fixture(scope="module")
def thinking_tokenizer():
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    tokenizer.add_tokens(["<think>", "</think>"])
    return tokenizer


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def splitter_for(tokenizer, end_ids, thinking=True, start_id=None, stop=()) -> ReasoningSplitter:
    return ReasoningSplitter(TokenSorter(tuple(end_ids), thinking, start_id),
                             lambda ids: tokenizer.decode(ids, skip_special_tokens=True), stop)


def run(splitter: ReasoningSplitter, ids: list[int], kinds: list | None, cuts=(),
        matched=None) -> tuple[str, str, int]:
    """Feeds the tokens in slices cut at ``cuts``; returns the streamed reasoning and content."""
    bounds = [0, *sorted(cuts), len(ids)]
    reasoning = content = ""
    for start, stop in zip(bounds[:-2], bounds[1:-1]):
        r, c = splitter.feed(ids[start:stop], None if kinds is None else kinds[start:stop])
        reasoning, content = reasoning + r, content + c
    r, c = splitter.finish(ids[bounds[-2]:], None if kinds is None else kinds[bounds[-2]:], matched)
    assert (reasoning + r, content + c) == (splitter.reasoning or "", splitter.content or "")
    return reasoning + r, content + c, splitter.reasoning_tokens


def soft_choice(tokenizer, end_kind=BUDGET):
    """Thinking tokens, the engine's think-end tokens, answer tokens, with their records' kinds."""
    think, end, answer = (encode(tokenizer, REASONING), encode(tokenizer, "</think>"),
                          encode(tokenizer, ANSWER_TEXT))
    kinds = [THINK] * len(think) + [end_kind] * len(end) + [ANSWER] * len(answer)
    return think + end + answer, kinds, end


def every_slicing(ids):
    rng = random.Random(0)
    yield []
    yield list(range(1, len(ids)))  # token by token
    for _ in range(30):
        yield rng.sample(range(1, len(ids)), k=rng.randint(1, min(8, len(ids) - 1)))


@pytest.mark.parametrize("end_kind", [BUDGET, COLD_STOP])
def test_soft_choice_splits_at_the_records(tokenizer, end_kind):
    ids, kinds, end = soft_choice(tokenizer, end_kind)
    for cuts in every_slicing(ids):
        reasoning, content, count = run(splitter_for(tokenizer, end), ids, kinds, cuts)
        assert reasoning == REASONING
        assert content == ANSWER_TEXT.lstrip("\n")
        assert count == len(ids) - len(encode(tokenizer, ANSWER_TEXT))


def test_think_end_written_by_the_model_is_markup(tokenizer):
    ids, kinds, end = soft_choice(tokenizer)
    kinds = [THINK if kind == BUDGET else kind for kind in kinds]  # the model wrote </think>
    for cuts in every_slicing(ids):
        assert run(splitter_for(tokenizer, end), ids, kinds, cuts)[:2] == (
            REASONING, ANSWER_TEXT.lstrip("\n"))


def test_reasoning_streams_before_thinking_ends(tokenizer):
    ids, kinds, end = soft_choice(tokenizer)
    splitter = splitter_for(tokenizer, end)
    streamed = [splitter.feed([token], [kind])[0] for token, kind in zip(ids[:10], kinds[:10])]
    assert sum(1 for text in streamed if text) >= 8  # all but the characters still incomplete
    assert "".join(streamed) == tokenizer.decode(ids[:10])


def test_tokens_that_may_begin_the_think_end_are_held_then_released(tokenizer):
    end = encode(tokenizer, "</think>")
    splitter = splitter_for(tokenizer, end)
    first = encode(tokenizer, "a <")
    assert splitter.feed(first + end[:1], [THINK] * (len(first) + 1)) == ("a <", "")
    assert splitter.feed(end[1:2], [THINK]) == ("", "")  # "</think" so far
    gap = encode(tokenizer, "!")
    assert splitter.feed(gap, [THINK]) == ("</think!", "")


def test_request_that_ends_while_thinking_keeps_its_text_as_reasoning(tokenizer):
    ids = encode(tokenizer, REASONING)
    end = encode(tokenizer, "</think>")
    for cuts in every_slicing(ids):
        splitter = splitter_for(tokenizer, end)
        assert run(splitter, ids + end[:2], [THINK] * (len(ids) + 2), cuts)[:2] == (
            REASONING + "</think", "")
        assert splitter.content is None and splitter.reasoning_tokens == len(ids) + 2


def test_stop_string_is_cut_and_never_streamed(tokenizer):
    ids, kinds, end = soft_choice(tokenizer)
    stop = ("is 19",)
    answer_ids = encode(tokenizer, ANSWER_TEXT)
    stop_at = next(n for n in range(len(answer_ids) + 1)
                   if "is 19" in tokenizer.decode(answer_ids[:n]))
    length = len(ids) - len(answer_ids) + stop_at
    ids, kinds = ids[:length], kinds[:length]
    for cuts in every_slicing(ids):
        splitter = splitter_for(tokenizer, end, stop=stop)
        streamed = []
        bounds = [0, *sorted(cuts), len(ids)]
        for start, stop_index in zip(bounds[:-2], bounds[1:-1]):
            streamed.append(splitter.feed(ids[start:stop_index], kinds[start:stop_index])[1])
        splitter.finish(ids[bounds[-2]:], kinds[bounds[-2]:], "is 19")
        assert splitter.content == "The answer "
        assert splitter.content.startswith("".join(streamed)), "nothing streamed is cut later"


def test_stop_token_is_left_out(tokenizer):
    ids, kinds, end = soft_choice(tokenizer)
    stop_token = encode(tokenizer, "!")[0]
    reasoning, content, _ = run(splitter_for(tokenizer, end), ids + [stop_token],
                                kinds + [ANSWER], matched=stop_token)
    assert content == ANSWER_TEXT.lstrip("\n")


def test_thinking_template_is_found_by_its_one_token_markers(tokenizer, thinking_tokenizer):
    assert thinking_template(tokenizer) is None
    template = thinking_template(thinking_tokenizer)
    assert template.start_id == thinking_tokenizer.convert_tokens_to_ids("<think>")
    assert template.end_id == thinking_tokenizer.convert_tokens_to_ids("</think>")


@pytest.mark.parametrize("opened_by", ["prompt", "output"])
def test_plain_choice_of_a_thinking_model_splits_at_its_end_token(thinking_tokenizer, opened_by):
    template = thinking_template(thinking_tokenizer)
    text = f"{REASONING}</think>{ANSWER_TEXT}"
    if opened_by == "output":
        text = "<think>" + text
    ids = encode(thinking_tokenizer, text)
    for cuts in every_slicing(ids):
        splitter = splitter_for(thinking_tokenizer, (template.end_id,),
                                thinking=opened_by == "prompt", start_id=template.start_id)
        reasoning, content, count = run(splitter, ids, None, cuts)
        assert (reasoning, content) == (REASONING, ANSWER_TEXT.lstrip("\n"))
        assert count == len(ids) - len(encode(thinking_tokenizer, ANSWER_TEXT))


def test_plain_choice_that_does_not_think_is_all_content(thinking_tokenizer):
    template = thinking_template(thinking_tokenizer)
    ids = encode(thinking_tokenizer, ANSWER_TEXT + " </think> later")
    splitter = splitter_for(thinking_tokenizer, (template.end_id,), thinking=False,
                            start_id=template.start_id)
    reasoning, content, count = run(splitter, ids, None)
    assert splitter.reasoning is None and content == ANSWER_TEXT + " </think> later"
    assert count == 0
