"""DeepSeek-R1 distills and QwQ: templates that open ``<think>``; plain and soft requests split alike.

The model is built here (tests/chain_model.py): the default model's tokenizer with
``<think>`` and ``</think>`` added as single tokens, as these families have them, and a chat
template that renders the DeepSeek-R1-like template, or the QwQ-like one with
``chat_template_kwargs={"family": "qwq"}`` (tests/think_templates.py); both generation
prompts end with ``<think>\\n``. After that newline the model writes nineteen thinking words,
``</think>``, a blank line, a three-word answer and its end-of-sequence token.
"""

from __future__ import annotations

import openai
import pytest

from chain_model import save_chain_model, served, words
from metrics_scrape import scrape
from think_templates import DEEPSEEK_R1, MESSAGES, QWQ, family_tokenizer, prompt_ids, selectable

THINKING = ("Let me think about this question carefully and then we can check each part of"
            " the sum once more")
ANSWER = "Four it is"
THINKING_TOKENS = len(THINKING.split()) + 1  # the words and </think>
FAMILIES = {"deepseek_r1": {}, "qwq": {"family": "qwq"}}  # chat_template_kwargs
BUDGET = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-r1-qwq-model")
    tokenizer = family_tokenizer(selectable({"deepseek_r1": DEEPSEEK_R1, "qwq": QWQ}))
    newline, think_end, blank_line = tokenizer.encode("\n</think>\n\n", add_special_tokens=False)
    for kwargs in FAMILIES.values():
        assert prompt_ids(tokenizer, **kwargs)[-2:] == [
            tokenizer.convert_tokens_to_ids("<think>"), newline]
    chain = [newline, *words(tokenizer, THINKING), think_end, blank_line,
             *words(tokenizer, ANSWER), tokenizer.eos_token_id]
    save_chain_model(path, tokenizer, chain)
    with served(path, "r1-qwq-model") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=300)


def chat(client, family="deepseek_r1", stream=False, extra_body=None, **kwargs):
    body = {"chat_template_kwargs": FAMILIES[family], **(extra_body or {})}
    return client.chat.completions.create(model=client.models.list().data[0].id,
                                          messages=MESSAGES, max_tokens=32, stream=stream,
                                          extra_body=body, **kwargs)


def streamed(chunks) -> tuple[list, list]:
    """The deltas of a stream, and its chunks."""
    chunks = list(chunks)
    return [c.choices[0].delta for c in chunks if c.choices], chunks


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_request_has_its_thinking_in_reasoning_content(client, family):
    response = chat(client, family, temperature=0)
    message = response.choices[0].message
    assert (message.reasoning_content, message.content) == (THINKING, ANSWER)
    assert getattr(response.choices[0], "soft_thinking", None) is None
    assert response.usage.completion_tokens_details.reasoning_tokens == THINKING_TOKENS


@pytest.mark.parametrize("family", FAMILIES)
def test_soft_request_with_a_budget_is_split_at_the_records(client, family):
    """The engine thinks ``BUDGET`` steps, writes ``</think>``, then the answer follows."""
    soft = {"max_topk": 5, "max_thinking_tokens": BUDGET, "after_thinking": {"temperature": 0}}
    response = chat(client, family, temperature=0.6, extra_body={"soft_thinking": soft})
    choice = response.choices[0]
    assert choice.message.reasoning_content == " ".join(THINKING.split()[:BUDGET])
    assert choice.message.content == ANSWER
    assert choice.soft_thinking == {"thinking_tokens": BUDGET + 1, "end_reason": "budget"}
    assert response.usage.completion_tokens_details.reasoning_tokens == BUDGET + 1


def test_plain_thinking_counts_in_the_thinking_tokens_metric(server, client):
    name = "softthink_thinking_tokens_total"
    for stream in (False, True):
        before = scrape(server).value(name)
        if stream:
            list(chat(client, stream=True, temperature=0))
        else:
            chat(client, temperature=0)
        assert scrape(server).value(name) - before == THINKING_TOKENS, f"stream={stream}"


def test_plain_stream_sends_thinking_as_it_comes_and_splits_like_the_whole(client):
    deltas, chunks = streamed(chat(client, stream=True, temperature=0,
                                   stream_options={"include_usage": True}))
    reasoning = [d.reasoning_content for d in deltas if getattr(d, "reasoning_content", None)]
    assert "".join(reasoning) == THINKING
    assert "".join(d.content or "" for d in deltas) == ANSWER
    assert len(reasoning) > len(THINKING.split()) // 2, "thinking streams token by token"
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == THINKING_TOKENS


def test_soft_request_streams_its_thinking_live(client):
    soft = {"max_topk": 5, "after_thinking": {"temperature": 0}}
    deltas, chunks = streamed(chat(client, stream=True, temperature=0.6,
                                   stream_options={"include_usage": True},
                                   extra_body={"soft_thinking": soft}))
    reasoning = [i for i, d in enumerate(deltas) if getattr(d, "reasoning_content", None)]
    content = [i for i, d in enumerate(deltas) if d.content]
    assert "".join(deltas[i].reasoning_content for i in reasoning) == THINKING
    assert "".join(deltas[i].content for i in content) == ANSWER
    assert len(reasoning) > len(THINKING.split()) // 2, "thinking streams token by token"
    assert max(reasoning) < min(content)
    summary = [c for c in chunks if c.choices and c.choices[0].finish_reason][0].choices[0]
    assert summary.soft_thinking == {"thinking_tokens": THINKING_TOKENS, "end_reason": "think_end"}
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == THINKING_TOKENS
