"""Think markers of several tokens each, named with ``--think-markers``: plain requests split too.

The model is built here (tests/chain_model.py): the default model's tokenizer as it is, in
which ``<reasoning>`` and ``</reasoning>`` are four tokens each, and a QwQ-like chat template
whose generation prompt ends with ``<reasoning>\\n``. After that newline the model writes
nineteen thinking words, the four tokens of ``</reasoning>``, a blank line, a three-word
answer and its end-of-sequence token. The server is told the markers with
``--think-markers <reasoning> </reasoning>``.
"""

from __future__ import annotations

import openai
import pytest

from chain_model import save_chain_model, served, words
from think_templates import MESSAGES, QWQ, family_tokenizer, prompt_ids

THINKING = ("Let me think about this question carefully and then we can check each part of"
            " the sum once more")
ANSWER = "Four it is"
START, END = "<reasoning>", "</reasoning>"
END_TOKENS = 4  # '</', 'reason', 'ing', '>'
BUDGET = 6


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-markers-model")
    tokenizer = family_tokenizer(QWQ.replace("<think>", START), one_token_markers=False)
    end_ids = tokenizer.encode(END, add_special_tokens=False)
    assert len(end_ids) == END_TOKENS
    newline, blank_line = (tokenizer.convert_tokens_to_ids(t) for t in ("Ċ", "ĊĊ"))
    assert prompt_ids(tokenizer)[-5:] == tokenizer.encode(START + "\n", add_special_tokens=False)
    chain = [newline, *words(tokenizer, THINKING), *end_ids, blank_line,
             *words(tokenizer, ANSWER), tokenizer.eos_token_id]
    save_chain_model(path, tokenizer, chain)
    with served(path, "markers-model", "--think-markers", START, END) as server:
        yield openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0,
                            timeout=300)


def chat(client, **kwargs):
    return client.chat.completions.create(model=client.models.list().data[0].id,
                                          messages=MESSAGES, max_tokens=32, **kwargs)


def test_plain_request_is_split_at_the_end_marker_whole_and_streamed(client):
    response = chat(client, temperature=0)
    message = response.choices[0].message
    assert (message.reasoning_content, message.content) == (THINKING, ANSWER)
    reasoning_tokens = len(THINKING.split()) + END_TOKENS
    assert response.usage.completion_tokens_details.reasoning_tokens == reasoning_tokens
    chunks = list(chat(client, temperature=0, stream=True,
                       stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = [getattr(d, "reasoning_content", None) or "" for d in deltas]
    assert "".join(reasoning) == THINKING, "no part of the end marker was streamed"
    assert "".join(d.content or "" for d in deltas) == ANSWER
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == reasoning_tokens


def test_soft_request_ending_at_the_marker_is_split_at_the_records(client):
    """With ``think_end_str`` the end marker, the engine writes its four tokens after
    ``BUDGET`` thinking steps, then the answer follows."""
    soft = {"max_topk": 5, "max_thinking_tokens": BUDGET, "think_end_str": END,
            "after_thinking": {"temperature": 0}}
    response = chat(client, temperature=0.6, extra_body={"soft_thinking": soft})
    choice = response.choices[0]
    assert choice.message.reasoning_content == " ".join(THINKING.split()[:BUDGET])
    assert choice.message.content == ANSWER
    assert choice.soft_thinking == {"thinking_tokens": BUDGET + END_TOKENS,
                                    "end_reason": "budget"}
    assert response.usage.completion_tokens_details.reasoning_tokens == BUDGET + END_TOKENS
