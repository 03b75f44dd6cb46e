"""The server's OpenAI API through the real ``openai`` client, on the default model.

Generations are short (at most 32 tokens), except the one a test aborts.
"""

from __future__ import annotations

import time

import httpx
import pytest

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write a long story about a dragon."}]


def chat_prompt_ids(tokenizer, messages) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                              tokenize=True, return_dict=False))


def test_models_lists_the_served_model(openai_client, server):
    models = openai_client.models.list().data
    assert [m.id for m in models] == ["smollm2-135m-instruct"]
    assert models[0].object == "model"


def test_health_needs_no_key(server):
    body = httpx.get(server.base_url.removesuffix("/v1") + "/health").json()
    assert body["status"] == "ok"


def test_api_key_is_required(server):
    response = httpx.get(f"{server.base_url}/models")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_chat_completion_counts_tokens(openai_client, tokenizer, model_name):
    # A long answer cut at max_tokens: the text holds every generated token.
    response = openai_client.chat.completions.create(
        model=model_name, messages=STORY, max_tokens=12, temperature=0)
    choice = response.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.role == "assistant" and choice.message.content
    assert response.usage.prompt_tokens == len(chat_prompt_ids(tokenizer, STORY))
    assert response.usage.completion_tokens == 12
    retokenized = tokenizer.encode(choice.message.content, add_special_tokens=False)
    assert len(retokenized) == response.usage.completion_tokens
    assert response.usage.total_tokens == response.usage.prompt_tokens + 12


def test_chat_completion_stops_at_eos(openai_client, tokenizer, model_name):
    messages = [{"role": "user", "content": "Say hello."}]
    response = openai_client.chat.completions.create(
        model=model_name, messages=messages, max_tokens=32, temperature=0)
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    # The end-of-sequence token counts as generated but is not part of the text.
    retokenized = tokenizer.encode(choice.message.content, add_special_tokens=False)
    assert response.usage.completion_tokens == len(retokenized) + 1
    assert getattr(choice, "soft_thinking", None) is None
    assert response.usage.completion_tokens_details is None


def test_streamed_chat_matches_plain_chat(openai_client, model_name):
    kwargs = dict(model=model_name, messages=QUESTION, max_tokens=16, temperature=0)
    plain = openai_client.chat.completions.create(**kwargs)
    chunks = list(openai_client.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    text_chunks = [c for c in chunks[:-1] if c.choices[0].delta.content]
    streamed_text = "".join(c.choices[0].delta.content for c in text_chunks)
    assert streamed_text == plain.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == plain.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens
    assert len(text_chunks) <= plain.usage.completion_tokens
    assert len({c.id for c in chunks}) == 1


def test_text_completion(openai_client, tokenizer, model_name):
    prompt = "The three primary colors are"
    response = openai_client.completions.create(
        model=model_name, prompt=prompt, max_tokens=8, temperature=0,
        extra_body={"ignore_eos": True})
    assert response.object == "text_completion"
    assert response.choices[0].finish_reason == "length" and response.choices[0].text
    assert response.usage.prompt_tokens == len(tokenizer(prompt).input_ids)
    assert response.usage.completion_tokens == 8


def test_streamed_text_completion(openai_client, model_name):
    kwargs = dict(model=model_name, prompt="Once upon a time", max_tokens=8, temperature=0)
    plain = openai_client.completions.create(**kwargs)
    chunks = list(openai_client.completions.create(**kwargs, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == plain.choices[0].text
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason


def test_several_choices_and_prompts(openai_client, model_name):
    response = openai_client.completions.create(
        model=model_name, prompt=["Roses are", "The sky is"], n=2, max_tokens=4,
        temperature=0.8, seed=7, extra_body={"ignore_eos": True})
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    assert all(c.finish_reason == "length" for c in response.choices)
    assert response.usage.completion_tokens == 16


def test_stop_string_ends_the_answer(openai_client, model_name):
    response = openai_client.completions.create(
        model=model_name, prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=[" 7"])
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert " 7" not in choice.text


def test_closing_a_stream_aborts_its_request(server):
    health_url = server.base_url.removesuffix("/v1") + "/health"
    body = {"messages": QUESTION, "max_tokens": 4000, "temperature": 0, "stream": True,
            "ignore_eos": True}
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body,
                      headers=headers, timeout=120) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        assert httpx.get(health_url).json()["num_running_requests"] == 1
    deadline = time.monotonic() + 30
    while httpx.get(health_url).json()["num_running_requests"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert httpx.get(health_url).json()["num_running_requests"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_fields_are_ignored(server, stream):
    body = {"messages": QUESTION, "max_tokens": 2, "stream": stream, "no_such_field": {"x": 1},
            "logit_bias": None, "parallel_tool_calls": False}
    response = httpx.post(f"{server.base_url}/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {server.api_key}"}, timeout=120)
    assert response.status_code == 200


def test_prefix_cache_hits_are_reported_as_cached_tokens(openai_client, tokenizer, model_name):
    """The same conversation sent twice: the second prompt comes from SGLang's prefix cache
    (all but its last token, which SGLang always computes)."""
    messages = [{"role": "user", "content": "Describe the moon in a few words, please."}]
    prompt_len = len(chat_prompt_ids(tokenizer, messages))
    first = openai_client.chat.completions.create(model=model_name, messages=messages,
                                                  max_tokens=4, temperature=0)
    again = openai_client.chat.completions.create(model=model_name, messages=messages,
                                                  max_tokens=4, temperature=0)
    assert first.usage.prompt_tokens == again.usage.prompt_tokens == prompt_len
    assert again.usage.prompt_tokens_details.cached_tokens == prompt_len - 1
