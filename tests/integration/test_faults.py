"""A fault in the plugin costs the request it concerns, never the server; an input that was
not mixed is caught and aborts its request rather than serving a soft-looking plain answer.

The server is started with two faults injected (sglang_soft_thinking/faults.py): admitting
the request with seed 4242 raises, and the concept tokens of the request with seed 4343 are
not mixed into its inputs. Both are sent among other soft and plain requests.
"""

from __future__ import annotations

import asyncio

import openai
import pytest

from server_process import TEST_KV_TOKENS, serving

ADMIT_FAULT, MIX_FAULT = 4242, 4343
SOFT = {"max_topk": 5, "max_thinking_tokens": 8, "early_stopping_entropy_threshold": 0}
MESSAGES = [{"role": "user", "content": "What is 12 times 7?"}]


@pytest.fixture(scope="module")
def faulty_server():
    with serving("--max-total-tokens", str(TEST_KV_TOKENS), "--dtype", "float32", name="faults",
                 env={"SOFTTHINK_TEST_FAULT": f"admit:{ADMIT_FAULT},skip_mix:{MIX_FAULT}"}) as proc:
        yield proc


def errors_counted(server) -> float:
    import httpx

    text = httpx.get(server.root_url + "/metrics", timeout=60).text
    line = next(l for l in text.splitlines() if l.startswith("softthink_soft_thinking_errors_total"))
    return float(line.split()[-1])


def test_a_faulty_request_fails_alone_and_the_server_keeps_serving(faulty_server):
    async def scenario():
        client = openai.AsyncOpenAI(base_url=faulty_server.base_url, api_key="none", max_retries=0, timeout=300)

        async def ask(seed: int | None, soft: bool = True):
            extra = {"soft_thinking": SOFT, "ignore_eos": True} if soft else {"ignore_eos": True}
            try:
                return await client.chat.completions.create(
                    model="smollm2-135m-instruct", messages=MESSAGES, max_tokens=16, temperature=0.7,
                    seed=seed, extra_body=extra)
            except openai.APIStatusError as error:
                return error

        first = await asyncio.gather(ask(ADMIT_FAULT), ask(MIX_FAULT), ask(1), ask(2), ask(3, soft=False))
        return first, await ask(5)

    before = errors_counted(faulty_server)
    (admit, mix, *fine), again = asyncio.run(scenario())
    for failed, what in ((admit, "admitting the request failed"), (mix, "not mixed")):
        assert isinstance(failed, openai.InternalServerError), failed
        assert "soft thinking:" in failed.message and what in failed.message, failed.message
    for response in fine:
        assert not isinstance(response, Exception), response
        assert response.choices[0].finish_reason == "length"
    assert fine[0].choices[0].soft_thinking["thinking_tokens"] > 0
    assert errors_counted(faulty_server) == before + 2
    # The server went on serving soft requests.
    assert not isinstance(again, Exception), again
    assert again.choices[0].soft_thinking["thinking_tokens"] > 0 and again.choices[0].message.reasoning_content
