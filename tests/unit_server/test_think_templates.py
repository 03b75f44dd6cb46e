"""Today's reasoning models' thinking templates: each family's choices split alike, plain or soft.

Tokenizers are the default model's with a family's chat template (tests/think_templates.py)
and ``<think>`` / ``</think>`` either added as single tokens, as the families have them, or
left as several tokens each. The model's output is given as the tokens it would write (each
piece encoded on its own), fed to the server's splitter whole and in every slicing.
"""

from __future__ import annotations

import pytest
from sglang_soft_thinking.output import ANSWER, BUDGET, THINK
from sglang_soft_thinking.params import SoftThinkingParams

from server.engine import GenerationJob
from server.reasoning import reasoning_splitter
from server.think_markers import find_think_markers
from think_templates import DEEPSEEK_R1, QWEN3, QWQ, family_tokenizer, prompt_ids
from token_feeding import encode, engine_marks, every_slicing, run

REASONING = "Let me add 2 and 2: café 🦜 漢字, so 4.\n"
ANSWER_TEXT = "\n\nThe answer is 4 ꙮ."

# family: (template, chat_template_kwargs, the prompt opens thinking, the model writes <think>)
FAMILIES = {
    "qwen3": (QWEN3, {}, False, True),
    "qwen3_no_thinking": (QWEN3, {"enable_thinking": False}, False, False),
    "deepseek_r1": (DEEPSEEK_R1, {}, True, False),
    "qwq": (QWQ, {}, True, False),
}
THINKING_FAMILIES = ["qwen3", "deepseek_r1", "qwq"]
MARKER_STYLES = {"one_token": True, "several_tokens": False}


@pytest.fixture(scope="module")
def tokenizers():
    return {(family, style): family_tokenizer(FAMILIES[family][0], one_token)
            for family in FAMILIES for style, one_token in MARKER_STYLES.items()}


def job_for(tokenizer, family: str, soft: bool = False) -> GenerationJob:
    template_kwargs = FAMILIES[family][1]
    return GenerationJob(prompts=[prompt_ids(tokenizer, **template_kwargs)], n=1,
                         sampling_params={}, soft=SoftThinkingParams() if soft else None)


def model_output(tokenizer, family: str) -> tuple[list[int], str | None, str, int]:
    """The tokens a model of ``family`` writes, and what they should split into: the
    reasoning (None: it does not think), the content, the reasoning tokens."""
    _, _, prompt_opens, model_opens = FAMILIES[family]
    start, end = encode(tokenizer, "<think>"), encode(tokenizer, "</think>")
    if not (prompt_opens or model_opens):
        return encode(tokenizer, ANSWER_TEXT), None, ANSWER_TEXT, 0
    thinking = encode(tokenizer, REASONING)
    opening = start if model_opens else []
    ids = opening + thinking + end + encode(tokenizer, ANSWER_TEXT)
    return ids, REASONING, ANSWER_TEXT.lstrip("\n"), len(opening) + len(thinking) + len(end)


@pytest.mark.parametrize("style", MARKER_STYLES)
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_has_its_markers_found_and_its_prompt_read(tokenizers, family, style):
    tokenizer = tokenizers[family, style]
    markers = find_think_markers(tokenizer)
    assert (markers.start, markers.end) == ("<think>", "</think>")
    assert markers.start_ids == tuple(encode(tokenizer, "<think>"))
    assert markers.end_ids == tuple(encode(tokenizer, "</think>"))
    assert (len(markers.start_ids) == 1) == MARKER_STYLES[style]
    prompt = tokenizer.decode(job_for(tokenizer, family).prompts[0], skip_special_tokens=False)
    assert markers.opened_by(prompt) == FAMILIES[family][2]
    assert markers.closed_by(prompt) == (family == "qwen3_no_thinking")


@pytest.mark.parametrize("style", MARKER_STYLES)
@pytest.mark.parametrize("family", FAMILIES)
def test_plain_choice_splits_at_the_end_marker_in_every_slicing(tokenizers, family, style):
    tokenizer = tokenizers[family, style]
    ids, reasoning, content, count = model_output(tokenizer, family)
    markers = find_think_markers(tokenizer)
    for cuts in every_slicing(ids):
        splitter = reasoning_splitter(job_for(tokenizer, family), 0, tokenizer, markers)
        assert run(splitter, ids, None, cuts)[1:] == (content, count)
        assert splitter.reasoning == reasoning


@pytest.mark.parametrize("end_kind", ["written", BUDGET])
@pytest.mark.parametrize("style", MARKER_STYLES)
@pytest.mark.parametrize("family", THINKING_FAMILIES)
def test_soft_choice_splits_like_the_plain_one(tokenizers, family, style, end_kind):
    """The engine's records: the end marker the model wrote (``think_end``), or the one the
    engine wrote when the budget ran out; either way the split is the plain choice's."""
    tokenizer = tokenizers[family, style]
    ids, reasoning, content, count = model_output(tokenizer, family)
    end = encode(tokenizer, "</think>")
    kinds, pending = engine_marks(ids, end)
    if end_kind == BUDGET:
        end_at = count - len(end)
        kinds = [THINK] * end_at + [BUDGET] * len(end) + [ANSWER] * (len(ids) - count)
        pending = [0] * len(ids)
    markers = find_think_markers(tokenizer)
    for cuts in every_slicing(ids):
        splitter = reasoning_splitter(job_for(tokenizer, family, soft=True), 0, tokenizer, markers)
        assert run(splitter, ids, kinds, cuts, pending=pending) == (reasoning, content, count)


def test_plain_thinking_holds_back_what_may_begin_the_end_marker(tokenizers):
    """Several-token markers: ``</think`` is held until a token shows it is not the marker."""
    tokenizer = tokenizers["deepseek_r1", "several_tokens"]
    end = encode(tokenizer, "</think>")
    first, gap = encode(tokenizer, "a "), encode(tokenizer, "!")
    ids = first + end[:-1] + gap + end + encode(tokenizer, "\nok")
    splitter = reasoning_splitter(job_for(tokenizer, "deepseek_r1"), 0, tokenizer,
                                  find_think_markers(tokenizer))
    streamed = [splitter.feed([token], None) for token in ids[:len(first) + len(end) - 1]]
    assert "".join(r for r, _ in streamed) == "a " and not any(c for _, c in streamed)
    assert splitter.feed(gap, None) == ("</think!", "")
    assert splitter.finish(ids[len(first) + len(end):], None, None) == ("", "ok")
    assert splitter.reasoning_tokens == len(first) + 2 * len(end)


@pytest.mark.parametrize("family", ["qwen3", "deepseek_r1"])
def test_first_tokens_that_stop_spelling_the_start_marker_are_not_markup(tokenizers, family):
    """Held while they may be ``<think>``, then content (Qwen3: the prompt did not open
    thinking) or reasoning (DeepSeek-R1: it did), markers and all."""
    tokenizer = tokenizers[family, "several_tokens"]
    start = encode(tokenizer, "<think>")
    markers = find_think_markers(tokenizer)
    opened = FAMILIES[family][2]
    for rest in ("er> is a word", None):  # it goes on, or it ends inside the marker
        ids = start[:-1] + ([] if rest is None else encode(tokenizer, rest))
        text = "<think" + (rest or "")
        splitter = reasoning_splitter(job_for(tokenizer, family), 0, tokenizer, markers)
        assert [splitter.feed([token], None) for token in start[:-1]] == [("", "")] * (len(start) - 1)
        expected = (text, "") if opened else ("", text)
        assert splitter.finish(ids[len(start) - 1:], None, None) == expected
        assert splitter.reasoning_tokens == (len(ids) if opened else 0)


def test_a_model_without_markers_has_none():
    from transformers import AutoTokenizer

    from server_process import model_path

    assert find_think_markers(AutoTokenizer.from_pretrained(model_path())) is None


def test_named_markers_split_a_plain_choice(tokenizers):
    """``--think-markers <reasoning> </reasoning>``: a template that opens ``<reasoning>``."""
    tokenizer = family_tokenizer(QWQ.replace("<think>", "<reasoning>"), one_token_markers=False)
    markers = find_think_markers(tokenizer, ("<reasoning>", "</reasoning>"))
    assert markers.end_ids == tuple(encode(tokenizer, "</reasoning>"))
    ids = encode(tokenizer, REASONING) + list(markers.end_ids) + encode(tokenizer, ANSWER_TEXT)
    for cuts in every_slicing(ids):
        splitter = reasoning_splitter(job_for(tokenizer, "qwq"), 0, tokenizer, markers)
        reasoning, content, count = run(splitter, ids, None, cuts)
        assert (reasoning, content) == (REASONING, ANSWER_TEXT.lstrip("\n"))
        assert count == len(ids) - len(encode(tokenizer, ANSWER_TEXT))


def test_named_markers_that_encode_to_nothing_are_refused(tokenizers):
    from server.think_markers import ThinkMarkersError

    with pytest.raises(ThinkMarkersError, match="--think-markers: '' encodes to no token"):
        find_think_markers(tokenizers["qwq", "one_token"], ("", "</r>"))
