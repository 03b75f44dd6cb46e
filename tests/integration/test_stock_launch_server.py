"""Stock ``python -m sglang.launch_server`` works with our package installed, with no extra flags.

The package's start-up hook and plugin make SGLang's CPU path work on a machine without
CUDA; this checks it from the outside, through the stock OpenAI endpoint.
"""

from __future__ import annotations

import httpx
import openai

PROMPT = [{"role": "user", "content": "Name a fruit."}]


def test_stock_server_answers_a_greedy_chat(stock_server, openai_client, model_name):
    stock = openai.OpenAI(base_url=stock_server.base_url, api_key="none", max_retries=0,
                          timeout=300)
    stock_model = stock.models.list().data[0].id
    response = stock.chat.completions.create(model=stock_model, messages=PROMPT,
                                             max_tokens=16, temperature=0)
    choice = response.choices[0]
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert 0 < response.usage.completion_tokens <= 16
    # Same engine, same model, both in float32, same greedy request: our server gives the
    # same answer.
    ours = openai_client.chat.completions.create(model=model_name, messages=PROMPT,
                                                 max_tokens=16, temperature=0)
    assert ours.choices[0].message.content == choice.message.content


def test_soft_thinking_through_stock_custom_params(stock_server, tokenizer):
    """The plugin works in the stock server: parameters in custom_params, records in meta_info."""
    prompt_ids = list(tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True,
                                                    tokenize=True, return_dict=False))
    body = {"input_ids": prompt_ids, "sampling_params": {
        "temperature": 0.7, "max_new_tokens": 12, "ignore_eos": True,
        "custom_params": {"soft_thinking": {"max_topk": 4, "max_thinking_tokens": 4,
                                            "early_stopping_entropy_threshold": 0,
                                            "return_trace": True}}}}
    url = stock_server.base_url.removesuffix("/v1") + "/generate"
    output = httpx.post(url, json=body, timeout=300).json()
    kinds = [record[0] for record in output["meta_info"]["soft_thinking"]]
    end_len = len(tokenizer.encode("</think>", add_special_tokens=False))
    assert kinds == ["think"] * 4 + ["budget"] * end_len + ["answer"] * (12 - 4 - end_len)
    assert "</think>" in output["text"]
    assert all(len(record[2]) <= 4 for record in output["meta_info"]["soft_thinking"][:4])


def test_stock_server_rejects_bad_soft_thinking_params(stock_server):
    url = stock_server.base_url + "/chat/completions"
    bad = {"model": "x", "messages": PROMPT, "max_tokens": 4, "temperature": 0.7,
           "custom_params": {"soft_thinking": {"max_topk": 0}}}
    response = httpx.post(url, json=bad, timeout=300)
    assert response.status_code == 400
    assert "soft_thinking.max_topk" in response.text
    greedy = {**bad, "temperature": 0, "custom_params": {"soft_thinking": {}}}
    response = httpx.post(url, json=greedy, timeout=300)
    assert response.status_code == 400 and "temperature" in response.text


def test_input_embeds_with_soft_thinking_is_refused(stock_server):
    """A request given as input embeddings would have its thinking positions rebuilt without
    the concept tokens after a retraction: refused with a message naming the field and soft
    thinking (SGLang's own refusal of input embeddings with the radix cache on says otherwise)."""
    url = stock_server.base_url.removesuffix("/v1") + "/generate"
    sampling = {"temperature": 0.7, "max_new_tokens": 4}
    embeds = [[0.01] * 576 for _ in range(3)]  # the default model's hidden size
    soft = {**sampling, "custom_params": {"soft_thinking": {"max_topk": 4}}}
    response = httpx.post(url, json={"input_embeds": embeds, "sampling_params": soft}, timeout=300)
    assert response.status_code == 400
    assert "input_embeds: not accepted with soft thinking" in response.text
    plain = httpx.post(url, json={"input_embeds": embeds, "sampling_params": sampling}, timeout=300)
    assert "soft thinking" not in plain.text


def test_native_fields_soft_thinking_cannot_serve_are_refused_naming_them(stock_server):
    """Through the stock ``/generate``, a soft request asking for logprobs, a grammar or n > 1
    is a 400 naming the field (native_fields.py); the same plain request is served."""
    url = stock_server.base_url.removesuffix("/v1") + "/generate"
    sampling = {"temperature": 0.7, "max_new_tokens": 4, "ignore_eos": True}
    soft = {**sampling, "custom_params": {"soft_thinking": {"max_topk": 4}}}
    for extra, sampling_extra, name in [({"return_logprob": True}, {}, "return_logprob"),
                                        ({}, {"regex": "[0-9]+"}, "sampling_params.regex"),
                                        ({}, {"n": 2}, "sampling_params.n")]:
        body = {"text": "Name a fruit.", "sampling_params": {**soft, **sampling_extra}, **extra}
        response = httpx.post(url, json=body, timeout=300)
        assert response.status_code == 400, (name, response.text)
        assert f"{name}: not supported with soft thinking" in response.text or \
            f"{name}: must be 1 with soft thinking" in response.text, response.text
    plain = httpx.post(url, json={"text": "Name a fruit.", "sampling_params": sampling,
                                  "return_logprob": True}, timeout=300)
    assert plain.status_code == 200, plain.text
    assert len(plain.json()["meta_info"]["output_token_logprobs"]) == 4
