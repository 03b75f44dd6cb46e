"""Qwen3: the model opens ``<think>`` itself, or ``enable_thinking: false`` closes it in the prompt.

The model is built here (tests/chain_model.py): the default model's tokenizer with
``<think>`` and ``</think>`` added as single tokens, as Qwen3 has them, and a Qwen3-like
chat template (tests/think_templates.py). After the generation prompt's last newline the
model writes ``<think>``, nineteen thinking words, ``</think>``, a blank line, a three-word
answer and its end-of-sequence token; with thinking off the prompt ends with the blank line
after an empty ``<think>`` block, so the model writes the answer alone.
"""

from __future__ import annotations

import openai
import pytest

from chain_model import save_chain_model, served, words
from think_templates import MESSAGES, QWEN3, family_tokenizer, prompt_ids

THINKING = ("Let me think about this question carefully and then we can check each part of"
            " the sum once more")
ANSWER = "Four it is"
THINKING_TOKENS = 1 + len(THINKING.split()) + 1  # <think>, the words and </think>
BUDGET = 6


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-qwen3-model")
    tokenizer = family_tokenizer(QWEN3)
    newline, think_end, blank_line = tokenizer.encode("\n</think>\n\n", add_special_tokens=False)
    think_start = tokenizer.convert_tokens_to_ids("<think>")
    assert prompt_ids(tokenizer)[-1] == newline
    assert prompt_ids(tokenizer, enable_thinking=False)[-4:] == [
        think_start, blank_line, think_end, blank_line]
    chain = [newline, think_start, *words(tokenizer, THINKING), think_end, blank_line,
             *words(tokenizer, ANSWER), tokenizer.eos_token_id]
    save_chain_model(path, tokenizer, chain)
    with served(path, "qwen3-model") as server:
        yield openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0,
                            timeout=300)


def chat(client, enable_thinking=None, stream=False, extra_body=None, **kwargs):
    body = dict(extra_body or {})
    if enable_thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": enable_thinking}
    return client.chat.completions.create(model=client.models.list().data[0].id,
                                          messages=MESSAGES, max_tokens=32, stream=stream,
                                          extra_body=body, **kwargs)


@pytest.mark.parametrize("enable_thinking", [None, True])
def test_plain_request_that_opens_thinking_has_it_in_reasoning_content(client, enable_thinking):
    response = chat(client, enable_thinking, temperature=0)
    message = response.choices[0].message
    assert (message.reasoning_content, message.content) == (THINKING, ANSWER)
    assert response.usage.completion_tokens_details.reasoning_tokens == THINKING_TOKENS


def test_plain_stream_splits_like_the_whole(client):
    chunks = list(chat(client, stream=True, temperature=0,
                       stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == THINKING
    assert "".join(d.content or "" for d in deltas) == ANSWER
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == THINKING_TOKENS


def test_plain_request_with_thinking_off_is_all_content(client):
    response = chat(client, enable_thinking=False, temperature=0)
    message = response.choices[0].message
    assert message.content == ANSWER
    assert getattr(message, "reasoning_content", None) is None
    assert response.usage.completion_tokens_details.reasoning_tokens == 0


def test_soft_request_with_a_budget_is_split_at_the_records(client):
    """The engine thinks ``BUDGET`` steps (``<think>`` the first), writes ``</think>``,
    then the answer follows."""
    soft = {"max_topk": 5, "max_thinking_tokens": BUDGET, "after_thinking": {"temperature": 0}}
    response = chat(client, temperature=0.6, extra_body={"soft_thinking": soft})
    choice = response.choices[0]
    assert choice.message.reasoning_content == " ".join(THINKING.split()[:BUDGET - 1])
    assert choice.message.content == ANSWER
    assert choice.soft_thinking == {"thinking_tokens": BUDGET + 1, "end_reason": "budget"}
    assert response.usage.completion_tokens_details.reasoning_tokens == BUDGET + 1


def test_soft_request_with_thinking_off_is_refused(client):
    with pytest.raises(openai.BadRequestError) as error:
        chat(client, enable_thinking=False, temperature=0.6,
             extra_body={"soft_thinking": {"max_thinking_tokens": BUDGET}})
    assert error.value.body["param"] == "soft_thinking"
    assert "closed thinking" in error.value.body["message"]
