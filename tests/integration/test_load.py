"""Under load: 64 concurrent mixed requests all finish with the right usage, and the metrics
count them exactly; then 16 clients drop their streams and the engine is idle again.

Every request ignores EOS, so it generates exactly ``MAX_TOKENS`` tokens. A soft-thinking
request thinks for ``THINKING_BUDGET`` concept-token steps (Cold Stop off), then the engine
writes ``</think>`` (its tokenisation counted by the tokenizer) and the answer follows.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from metrics_scrape import scrape

NUM_REQUESTS = 64
NUM_DROPPED = 16
MAX_TOKENS = 16
THINKING_BUDGET = 4
SOFT = {"max_topk": 5, "max_thinking_tokens": THINKING_BUDGET,
        "early_stopping_entropy_threshold": 0}
TOPICS = ["rivers", "owls", "bread", "trains", "snow", "copper", "tides", "maps"]


def messages_for(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Tell me about {TOPICS[i % len(TOPICS)]} ({i})."}]


def is_soft(i: int) -> bool:
    return i % 4 >= 2


def is_streamed(i: int) -> bool:
    return i % 2 == 1


async def one_request(client: openai.AsyncOpenAI, model: str, i: int):
    """The request's usage and, for soft thinking, its choice's summary."""
    extra = {"ignore_eos": True, **({"soft_thinking": SOFT} if is_soft(i) else {})}
    kwargs = dict(model=model, messages=messages_for(i), max_tokens=MAX_TOKENS,
                  temperature=0.7, extra_body=extra)
    if not is_streamed(i):
        response = await client.chat.completions.create(**kwargs)
        return response.usage, getattr(response.choices[0], "soft_thinking", None)
    usage, summary = None, None
    stream = await client.chat.completions.create(**kwargs, stream=True,
                                                  stream_options={"include_usage": True})
    async for chunk in stream:
        usage = chunk.usage or usage
        if chunk.choices and chunk.choices[0].finish_reason:
            summary = getattr(chunk.choices[0], "soft_thinking", None)
    return usage, summary


async def run_load(server, model: str) -> list:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                max_retries=0, timeout=600)
    try:
        return await asyncio.gather(*(one_request(client, model, i)
                                      for i in range(NUM_REQUESTS)))
    finally:
        await client.close()


@pytest.fixture(scope="module")
def load_run(server, model_name):
    before = scrape(server)
    results = asyncio.run(run_load(server, model_name))
    return before, results, scrape(server)


def test_all_requests_finish_with_correct_usage(load_run, tokenizer):
    _, results, _ = load_run
    think_end_tokens = len(tokenizer.encode("</think>", add_special_tokens=False))
    for i, (usage, summary) in enumerate(results):
        prompt_ids = tokenizer.apply_chat_template(messages_for(i), add_generation_prompt=True,
                                                   tokenize=True, return_dict=False)
        assert usage.prompt_tokens == len(prompt_ids), i
        assert usage.completion_tokens == MAX_TOKENS, i
        assert usage.total_tokens == usage.prompt_tokens + MAX_TOKENS, i
        if is_soft(i):
            assert summary == {"thinking_tokens": THINKING_BUDGET + think_end_tokens,
                               "end_reason": "budget"}, i
            assert usage.completion_tokens_details.reasoning_tokens == \
                THINKING_BUDGET + think_end_tokens, i
        else:
            assert summary is None and usage.completion_tokens_details is None, i


def test_metrics_count_the_load_exactly(load_run, tokenizer):
    before, results, after = load_run
    think_end_tokens = len(tokenizer.encode("</think>", add_special_tokens=False))
    num_soft = sum(is_soft(i) for i in range(NUM_REQUESTS))
    num_streamed = sum(is_streamed(i) for i in range(NUM_REQUESTS))

    def delta(name: str, **labels) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("softthink_prompt_tokens_total") == sum(u.prompt_tokens for u, _ in results)
    assert delta("softthink_completion_tokens_total") == NUM_REQUESTS * MAX_TOKENS
    assert delta("softthink_thinking_tokens_total") == \
        num_soft * (THINKING_BUDGET + think_end_tokens)
    assert delta("softthink_concept_token_steps_total") == num_soft * THINKING_BUDGET
    assert delta("softthink_cold_stops_total") == 0
    assert delta("softthink_requests_total", route="/v1/chat/completions",
                 status="200") == NUM_REQUESTS
    assert delta("softthink_e2e_request_latency_seconds_count") == NUM_REQUESTS
    assert delta("softthink_time_to_first_token_seconds_count") == num_streamed
    assert delta("softthink_time_per_output_token_seconds_count") == num_streamed
    assert after.value("softthink_in_flight_requests") == 0


async def drop_streams(server, model: str) -> tuple[float, float]:
    """Open ``NUM_DROPPED`` long streams, read a few chunks of each, scrape, then close them.

    Returns the in-flight count and running + queued count seen while they were open.
    """
    body = {"model": model, "messages": messages_for(0), "max_tokens": 2000,
            "ignore_eos": True, "stream": True}
    headers = {"Authorization": f"Bearer {server.api_key}"}
    async with httpx.AsyncClient(timeout=600) as client:
        streams = [client.stream("POST", f"{server.base_url}/chat/completions", json=body,
                                 headers=headers) for _ in range(NUM_DROPPED)]
        responses = await asyncio.gather(*(s.__aenter__() for s in streams))
        try:
            for response in responses:
                assert response.status_code == 200
                lines = response.aiter_lines()
                for _ in range(3):
                    await anext(lines)
            busy = scrape(server)
        finally:
            for stream in streams:
                await stream.__aexit__(None, None, None)
    return (busy.value("softthink_in_flight_requests"),
            busy.value("softthink_running_requests") + busy.value("softthink_queued_requests"))


def test_dropped_streams_leave_the_engine_idle(server, model_name, load_run):
    in_flight, busy = asyncio.run(drop_streams(server, model_name))
    assert in_flight == NUM_DROPPED
    assert busy > 0
    deadline = time.monotonic() + 10
    while True:
        idle = scrape(server)
        counts = [idle.value(f"softthink_{name}_requests")
                  for name in ("running", "queued", "in_flight")]
        if counts == [0, 0, 0] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counts == [0, 0, 0]
