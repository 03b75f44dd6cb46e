"""A model with a thinking template: plain and soft requests both have their thinking split out.

The model is built here: the default model's tokenizer with ``<think>`` and ``</think>`` added
as single tokens (as Qwen3's and the DeepSeek-R1 distills' are), a chat template whose
generation prompt opens ``<think>`` (as DeepSeek-R1's does), and a one-layer random-weight
Llama whose attention and MLP outputs are zero, so each next token depends on the current
token alone. Its output layer is set so that the most likely successor of each token of a
fixed chain is the next one: after the prompt's last token the model writes nineteen thinking
words, ``</think>``, a three-word answer and its end-of-sequence token, by a margin of tens of
nats, so greedy decoding and soft thinking (whose concept token is then almost one token)
both follow the chain.
"""

from __future__ import annotations

import shutil

import openai
import pytest
import torch

from metrics_scrape import scrape
from server_process import model_path, serving

THINKING = ("Let me think about this question carefully and then we can check each part of"
            " the sum once more")
ANSWER = "Four it is"
MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
GENERATION_PROMPT = "{{ '<|im_start|>assistant\n' }}"


def words(tokenizer, text: str) -> list[int]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) == len(text.split()), f"each word of {text!r} is one token"
    return ids


@pytest.fixture(scope="module")
def thinking_model_path(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-thinking-model")
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    tokenizer.add_tokens(["<think>", "</think>"])
    assert GENERATION_PROMPT in tokenizer.chat_template
    tokenizer.chat_template = tokenizer.chat_template.replace(
        GENERATION_PROMPT, "{{ '<|im_start|>assistant\n<think>\n' }}")
    newline, think_end = tokenizer.encode("\n</think>", add_special_tokens=False)
    chain = [newline, *words(tokenizer, THINKING), think_end, *words(tokenizer, ANSWER),
             tokenizer.eos_token_id]
    assert len(set(chain)) == len(chain)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, rms_norm_eps=1e-6,
                         tie_word_embeddings=False, architectures=["LlamaForCausalLM"],
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        normed = embeddings * torch.rsqrt(embeddings.pow(2).mean(-1, keepdim=True) + 1e-6)
        model.lm_head.weight.normal_(0.0, 0.01)
        for token, successor in zip(chain, chain[1:]):
            model.lm_head.weight[successor] += normed[token]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(thinking_model_path):
    with serving("--max-total-tokens", "4096", "--dtype", "float32", name="thinking-model",
                 model=thinking_model_path) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=300)


def chat(client, stream=False, **kwargs):
    return client.chat.completions.create(model=client.models.list().data[0].id,
                                          messages=MESSAGES, max_tokens=40, stream=stream,
                                          **kwargs)


def streamed(chunks) -> tuple[list, list]:
    """The deltas of a stream, and its chunks."""
    chunks = list(chunks)
    return [c.choices[0].delta for c in chunks if c.choices], chunks


def test_plain_request_has_its_thinking_in_reasoning_content(client):
    response = chat(client, temperature=0)
    message = response.choices[0].message
    assert message.reasoning_content == THINKING
    assert message.content == ANSWER
    assert getattr(response.choices[0], "soft_thinking", None) is None
    thinking_tokens = len(THINKING.split()) + 1  # the words and </think>
    assert response.usage.completion_tokens_details.reasoning_tokens == thinking_tokens


def test_plain_thinking_counts_in_the_thinking_tokens_metric(server, client):
    name = "softthink_thinking_tokens_total"
    thinking_tokens = len(THINKING.split()) + 1
    for stream in (False, True):
        before = scrape(server).value(name)
        if stream:
            list(chat(client, stream=True, temperature=0))
        else:
            chat(client, temperature=0)
        assert scrape(server).value(name) - before == thinking_tokens, f"stream={stream}"


def test_plain_stream_sends_thinking_as_it_comes_and_splits_like_the_whole(client):
    whole = chat(client, temperature=0)
    deltas, chunks = streamed(chat(client, stream=True, temperature=0,
                                   stream_options={"include_usage": True}))
    reasoning = [d.reasoning_content for d in deltas if getattr(d, "reasoning_content", None)]
    assert "".join(reasoning) == whole.choices[0].message.reasoning_content
    assert "".join(d.content or "" for d in deltas) == whole.choices[0].message.content
    assert len(reasoning) > len(THINKING.split()) // 2, "thinking streams token by token"
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == \
        whole.usage.completion_tokens_details.reasoning_tokens


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
    assert summary.soft_thinking == {"thinking_tokens": len(THINKING.split()) + 1,
                                     "end_reason": "think_end"}
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == \
        len(THINKING.split()) + 1
