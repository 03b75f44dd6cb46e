"""A chat choice's reasoning and answer, split by its tokens (server/reasoning.py).

The default model's real tokenizer; a copy of it with ``<think>`` and ``</think>`` added as
single tokens stands for a model with a thinking template. Fed whole or in any slices, a
choice splits alike.
"""

from __future__ import annotations

import pytest
from sglang_soft_thinking.output import ANSWER, BUDGET, COLD_STOP, THINK, THINK_END
from transformers import AutoTokenizer

from server.reasoning import ReasoningSplitter
from server.think_markers import find_think_markers
from server.token_sorter import TokenSorter
from server_process import model_path
from token_feeding import encode, engine_marks, every_slicing, run

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


def splitter_for(tokenizer, thinking=True, start_ids=(), stop=(), end_ids=()) -> ReasoningSplitter:
    return ReasoningSplitter(TokenSorter(thinking, start_ids, end_ids),
                             lambda ids: tokenizer.decode(ids, skip_special_tokens=True), stop)


def soft_choice(tokenizer, end_kind=BUDGET):
    """Thinking tokens, the engine's think-end tokens, answer tokens, with their records' kinds."""
    think, end, answer = (encode(tokenizer, REASONING), encode(tokenizer, "</think>"),
                          encode(tokenizer, ANSWER_TEXT))
    kinds = [THINK] * len(think) + [end_kind] * len(end) + [ANSWER] * len(answer)
    return think + end + answer, kinds, end


@pytest.mark.parametrize("end_kind", [BUDGET, COLD_STOP])
def test_soft_choice_splits_at_the_records(tokenizer, end_kind):
    ids, kinds, end = soft_choice(tokenizer, end_kind)
    for cuts in every_slicing(ids):
        reasoning, content, count = run(splitter_for(tokenizer), ids, kinds, cuts)
        assert reasoning == REASONING
        assert content == ANSWER_TEXT.lstrip("\n")
        assert count == len(ids) - len(encode(tokenizer, ANSWER_TEXT))


def test_think_end_written_by_the_model_is_markup(tokenizer):
    ids, _, end = soft_choice(tokenizer)
    kinds, pending = engine_marks(ids, end)  # the model wrote </think>
    assert len(end) > 1 and kinds.count(THINK_END) == 1
    for cuts in every_slicing(ids):
        reasoning, content, count = run(splitter_for(tokenizer), ids, kinds, cuts, pending=pending)
        assert (reasoning, content) == (REASONING, ANSWER_TEXT.lstrip("\n"))
        assert count == len(ids) - len(encode(tokenizer, ANSWER_TEXT))


def test_reasoning_streams_before_thinking_ends(tokenizer):
    ids, kinds, end = soft_choice(tokenizer)
    splitter = splitter_for(tokenizer)
    streamed = [splitter.feed([token], [kind])[0] for token, kind in zip(ids[:10], kinds[:10])]
    assert sum(1 for text in streamed if text) >= 8  # all but the characters still incomplete
    assert "".join(streamed) == tokenizer.decode(ids[:10])


def test_tokens_that_may_begin_the_think_end_are_held_then_released(tokenizer):
    end = encode(tokenizer, "</think>")
    splitter = splitter_for(tokenizer)
    first, gap = encode(tokenizer, "a <"), encode(tokenizer, "!")
    ids = first + end[:2] + gap
    kinds, pending = engine_marks(ids, end)
    cut = len(first) + 1
    assert splitter.feed(ids[:cut], kinds[:cut], pending[:cut]) == ("a <", "")
    assert splitter.feed(ids[cut:cut + 1], kinds[cut:cut + 1], pending[cut:cut + 1]) == ("", "")  # "</think"
    assert splitter.feed(gap, kinds[cut + 1:], pending[cut + 1:]) == ("</think!", "")


def test_request_that_ends_while_thinking_keeps_its_text_as_reasoning(tokenizer):
    ids = encode(tokenizer, REASONING)
    end = encode(tokenizer, "</think>")
    kinds, pending = engine_marks(ids + end[:2], end)
    for cuts in every_slicing(ids):
        splitter = splitter_for(tokenizer)
        assert run(splitter, ids + end[:2], kinds, cuts, pending=pending)[:2] == (
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
        splitter = splitter_for(tokenizer, stop=stop)
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
    reasoning, content, _ = run(splitter_for(tokenizer), ids + [stop_token],
                                kinds + [ANSWER], matched=stop_token)
    assert content == ANSWER_TEXT.lstrip("\n")


def test_thinking_template_is_found_by_its_one_token_markers(tokenizer, thinking_tokenizer):
    assert find_think_markers(tokenizer) is None
    template = find_think_markers(thinking_tokenizer)
    assert template.start_ids == (thinking_tokenizer.convert_tokens_to_ids("<think>"),)
    assert template.end_ids == (thinking_tokenizer.convert_tokens_to_ids("</think>"),)


@pytest.mark.parametrize("opened_by", ["prompt", "output"])
def test_plain_choice_of_a_thinking_model_splits_at_its_end_token(thinking_tokenizer, opened_by):
    template = find_think_markers(thinking_tokenizer)
    text = f"{REASONING}</think>{ANSWER_TEXT}"
    if opened_by == "output":
        text = "<think>" + text
    ids = encode(thinking_tokenizer, text)
    for cuts in every_slicing(ids):
        splitter = splitter_for(thinking_tokenizer, thinking=opened_by == "prompt",
                                start_ids=template.start_ids, end_ids=template.end_ids)
        reasoning, content, count = run(splitter, ids, None, cuts)
        assert (reasoning, content) == (REASONING, ANSWER_TEXT.lstrip("\n"))
        assert count == len(ids) - len(encode(thinking_tokenizer, ANSWER_TEXT))


def test_plain_choice_that_does_not_think_is_all_content(thinking_tokenizer):
    template = find_think_markers(thinking_tokenizer)
    ids = encode(thinking_tokenizer, ANSWER_TEXT + " </think> later")
    splitter = splitter_for(thinking_tokenizer, thinking=False, start_ids=template.start_ids,
                            end_ids=template.end_ids)
    reasoning, content, count = run(splitter, ids, None)
    assert splitter.reasoning is None and content == ANSWER_TEXT + " </think> later"
    assert count == 0
