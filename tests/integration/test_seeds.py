"""A seed makes a request repeat exactly, soft or plain, whatever else shares its batch."""

from __future__ import annotations

import asyncio

import openai

QUESTION = [{"role": "user", "content": "Tell me a short story about a cat."}]
NOISY = {"max_topk": 5, "early_stopping_entropy_threshold": 0, "max_thinking_tokens": 12,
         "noise": {"type": "gumbel", "temperature": 0.5},
         "after_thinking": {"temperature": 1.0, "top_p": 0.95, "top_k": 30}}


def chat(model, soft=None, seed=None, **extra):
    body = dict(model=model, messages=QUESTION, max_tokens=24, temperature=0.8, extra_body={})
    if soft is not None:
        body["extra_body"]["soft_thinking"] = soft
    if seed is not None:
        body["seed"] = seed
    body.update(extra)
    return body


def texts(server, bodies: list[dict]) -> list[str]:
    async def main():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0,
                                    timeout=300)
        responses = await asyncio.gather(*(client.chat.completions.create(**b) for b in bodies))
        return [r.choices[0].message.model_dump() for r in responses]

    return [f"{m.get('reasoning_content')}|{m.get('content')}" for m in asyncio.run(main())]


def test_a_seeded_noisy_soft_request_repeats_alone_and_in_a_batch(server, model_name):
    seeded = chat(model_name, NOISY, seed=1234)
    alone = texts(server, [seeded])[0]
    others = [chat(model_name, NOISY if i % 2 else None, max_tokens=16 + i) for i in range(8)]
    together = texts(server, others[:4] + [seeded] + others[4:])
    assert together[4] == alone
    assert texts(server, [chat(model_name, NOISY, seed=4321)])[0] != alone, "another seed, another text"


def test_a_seeded_plain_request_with_min_p_repeats(server, model_name):
    seeded = chat(model_name, seed=99, top_p=0.95, extra_body={"min_p": 0.05}, temperature=1.2)
    first = texts(server, [seeded])[0]
    others = [chat(model_name, None if i % 2 else NOISY, max_tokens=10 + i) for i in range(6)]
    together = texts(server, others + [seeded])
    assert together[-1] == first
    assert texts(server, [seeded])[0] == first


def test_unseeded_requests_stay_random(server, model_name):
    hot = chat(model_name, temperature=1.5)
    assert len(set(texts(server, [hot] * 4))) > 1


def test_n_choices_with_a_seed_differ_and_each_repeats(openai_client, model_name):
    body = chat(model_name, NOISY, seed=7, n=2)
    first = openai_client.chat.completions.create(**body)
    again = openai_client.chat.completions.create(**body)
    pair = [c.message.content for c in first.choices]
    assert pair[0] != pair[1]
    assert [c.message.content for c in again.choices] == pair
