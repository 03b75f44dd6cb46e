"""A fault in the plugin costs the request it concerns, never the server; an input that was
not mixed is caught and aborts its request rather than serving a soft-looking plain answer.

The server is started with one fault injected at each seam of the plugin
(sglang_soft_thinking/faults.py), each for the request with its own seed. Faults at a
per-request seam are sent together, among soft and plain requests that must finish:
each costs its own request alone. A fault in a step computed for the whole batch (the
embedding, the soft rows' step, packing the records) costs the batch's soft requests,
so each is sent alone beside a plain request, which must finish; a fault in SGLang's
sampler on a subset of the rows costs nothing (it samples every row). After each round
the server serves the next soft request.
"""

from __future__ import annotations

import asyncio

import openai
import pytest

from server_process import TEST_KV_TOKENS, serving

# Per-request seams: seed -> (fault kind, what the error names); a plain request for seeded_plain.
PER_REQUEST = {
    4242: ("admit", "admitting the request failed"),
    4343: ("skip_mix", "not mixed"),
    4444: ("resolve", "could not be resolved"),
    4545: ("vocabulary", "vocabulary could not be built"),
    4646: ("settings", "settings could not be read"),
    4747: ("table_admit", "table row could not be written"),
    4848: ("records_host", "record of the step could not be read"),
}
SEEDED_PLAIN_FAULT = 4949
# Batch-wide seams: seed -> (fault kind, what the error names).
PER_BATCH = {
    5151: ("embed", "not mixed"),
    5252: ("soft_step", "sampling step failed"),
    5353: ("records", "records could not be built"),
}
SUBSET_FAULT = 5454
FAULTS = ",".join([f"{kind}:{seed}" for seed, (kind, _) in {**PER_REQUEST, **PER_BATCH}.items()]
                  + [f"seeded_plain:{SEEDED_PLAIN_FAULT}", f"subset:{SUBSET_FAULT}"])
SOFT = {"max_topk": 5, "max_thinking_tokens": 8, "early_stopping_entropy_threshold": 0}
MESSAGES = [{"role": "user", "content": "What is 12 times 7?"}]


@pytest.fixture(scope="module")
def faulty_server():
    with serving("--max-total-tokens", str(TEST_KV_TOKENS), "--dtype", "float32", name="faults",
                 env={"SOFTTHINK_TEST_FAULT": FAULTS}) as proc:
        yield proc


def errors_counted(server) -> float:
    import httpx

    text = httpx.get(server.root_url + "/metrics", timeout=60).text
    line = next(l for l in text.splitlines() if l.startswith("softthink_soft_thinking_errors_total"))
    return float(line.split()[-1])


def _client(server):
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=300)


async def _ask(client, seed: int | None, soft: bool = True):
    extra = {"soft_thinking": SOFT, "ignore_eos": True} if soft else {"ignore_eos": True}
    try:
        return await client.chat.completions.create(
            model="smollm2-135m-instruct", messages=MESSAGES, max_tokens=16, temperature=0.7,
            seed=seed, extra_body=extra)
    except openai.APIStatusError as error:
        return error


def _assert_failed(response, what: str) -> None:
    assert isinstance(response, openai.InternalServerError), response
    assert "soft thinking:" in response.message and what in response.message, response.message


def _assert_finished(response, soft: bool = True) -> None:
    assert not isinstance(response, Exception), response
    assert response.choices[0].finish_reason == "length"
    if soft:
        assert response.choices[0].soft_thinking["thinking_tokens"] > 0
        assert response.choices[0].message.reasoning_content


def test_a_faulty_request_fails_alone_and_the_server_keeps_serving(faulty_server):
    async def scenario():
        client = _client(faulty_server)
        faulty = [_ask(client, seed) for seed in PER_REQUEST] + [_ask(client, SEEDED_PLAIN_FAULT, soft=False)]
        fine = [_ask(client, 1), _ask(client, 2), _ask(client, 3, soft=False), _ask(client, None, soft=False)]
        first = await asyncio.gather(*faulty, *fine)
        return first, await _ask(client, 5)

    before = errors_counted(faulty_server)
    first, again = asyncio.run(scenario())
    failed, fine = first[:len(PER_REQUEST) + 1], first[len(PER_REQUEST) + 1:]
    for response, (_, what) in zip(failed, [*PER_REQUEST.values(), ("seeded_plain", "seeded sampling failed")]):
        _assert_failed(response, what)
    for response, soft in zip(fine, (True, True, False, False)):
        _assert_finished(response, soft)
    assert errors_counted(faulty_server) == before + len(failed)
    _assert_finished(again)  # the server went on serving soft requests


def test_a_fault_in_a_batch_wide_step_costs_the_batchs_soft_requests_only(faulty_server):
    async def scenario():
        client = _client(faulty_server)
        rounds = []
        for seed in [*PER_BATCH, SUBSET_FAULT]:
            # The plain request (unseeded: SGLang's own sampler) shares the faulty step.
            rounds.append(await asyncio.gather(_ask(client, seed), _ask(client, None, soft=False)))
        return rounds, await _ask(client, 5)

    before = errors_counted(faulty_server)
    rounds, again = asyncio.run(scenario())
    for (soft, plain), (_, what) in zip(rounds, PER_BATCH.values()):
        _assert_failed(soft, what)
        _assert_finished(plain, soft=False)
    subset_soft, subset_plain = rounds[-1]
    _assert_finished(subset_soft)  # SGLang's sampler took every row: nothing was lost
    _assert_finished(subset_plain, soft=False)
    assert errors_counted(faulty_server) == before + len(PER_BATCH)
    _assert_finished(again)
