"""``GET /metrics`` counts what the server did, read back with prometheus_client's parser."""

from __future__ import annotations

import time

import httpx
import pytest

from metrics_scrape import scrape

HELLO = [{"role": "user", "content": "Hello"}]
COLD_STOP_LENGTH = 3


def test_requests_are_counted_by_route_and_status(server, openai_client, model_name):
    before = scrape(server)
    openai_client.chat.completions.create(model=model_name, messages=HELLO, max_tokens=1)
    openai_client.models.list()
    root = server.base_url.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {server.api_key}"}
    httpx.post(f"{server.base_url}/completions", json={"prompt": "Hi", "n": 0}, headers=headers)
    httpx.get(f"{server.base_url}/models")  # no key
    httpx.get(f"{root}/no/such/path", headers=headers)
    after = scrape(server)

    def delta(route: str, status: str) -> float:
        return (after.value("softthink_requests_total", route=route, status=status)
                - before.value("softthink_requests_total", route=route, status=status))

    assert delta("/v1/chat/completions", "200") == 1
    assert delta("/v1/models", "200") == 1
    assert delta("/v1/completions", "400") == 1
    assert delta("/v1/models", "401") == 1
    assert delta("other", "404") == 1
    assert delta("/metrics", "200") == 1  # the first scrape, counted once it was answered


def test_cold_stop_and_concept_steps_are_counted(server, openai_client, model_name, tokenizer):
    # Every entropy is below this threshold, so Cold Stop fires after COLD_STOP_LENGTH steps.
    soft = {"max_topk": 4, "early_stopping_entropy_threshold": 1000.0,
            "early_stopping_length_threshold": COLD_STOP_LENGTH}
    before = scrape(server)
    response = openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=12, temperature=0.7,
        extra_body={"soft_thinking": soft, "ignore_eos": True})
    after = scrape(server)
    summary = response.choices[0].soft_thinking
    think_end_tokens = len(tokenizer.encode("</think>", add_special_tokens=False))
    assert summary == {"end_reason": "cold_stop",
                       "thinking_tokens": COLD_STOP_LENGTH + think_end_tokens}

    def delta(name: str) -> float:
        return after.value(name) - before.value(name)

    assert delta("softthink_cold_stops_total") == 1
    assert delta("softthink_concept_token_steps_total") == COLD_STOP_LENGTH
    assert delta("softthink_thinking_tokens_total") == COLD_STOP_LENGTH + think_end_tokens
    assert delta("softthink_completion_tokens_total") == 12
    assert delta("softthink_prompt_tokens_total") == response.usage.prompt_tokens
    # Not streamed: an end-to-end latency, but no first-token time.
    assert delta("softthink_e2e_request_latency_seconds_count") == 1
    assert delta("softthink_time_to_first_token_seconds_count") == 0


def test_streamed_latencies_are_consistent(server, openai_client, model_name):
    before = scrape(server)
    start = time.perf_counter()
    chunks = list(openai_client.chat.completions.create(
        model=model_name, messages=HELLO, max_tokens=8, temperature=0.7, stream=True,
        extra_body={"ignore_eos": True}))
    elapsed = time.perf_counter() - start
    after = scrape(server)
    assert chunks

    def delta(name: str) -> float:
        return after.value(name) - before.value(name)

    ttft = delta("softthink_time_to_first_token_seconds_sum")
    e2e = delta("softthink_e2e_request_latency_seconds_sum")
    tpot = delta("softthink_time_per_output_token_seconds_sum")
    assert delta("softthink_time_to_first_token_seconds_count") == 1
    assert 0 < ttft <= e2e <= elapsed
    assert tpot == pytest.approx((e2e - ttft) / 7, rel=1e-6)
