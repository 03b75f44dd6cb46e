"""What a seed repeats (README, "What a seed repeats"): bit for bit when the model's rounding
repeats (a request sent alone, again); in a batch of other prompts and settings, its draws,
not the model's rounding, so its first steps agree with its run alone within rounding."""

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


def traced(server, bodies: list[dict]) -> list[dict]:
    async def main():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0,
                                    timeout=300)
        return await asyncio.gather(*(client.chat.completions.create(**b) for b in bodies))

    return [r.choices[0].model_dump() for r in asyncio.run(main())]


def test_a_seeded_noisy_soft_request_repeats_bit_for_bit_alone(server, model_name):
    """Alone, its prompt cached alike (the first run warms the prefix cache: a cached prompt
    rounds differently from one computed afresh), it repeats bit for bit."""
    seeded = chat(model_name, {**NOISY, "return_trace": True}, seed=1234)
    traced(server, [seeded])
    first, again = traced(server, [seeded])[0], traced(server, [seeded])[0]
    assert first["message"] == again["message"]
    assert first["soft_thinking"]["trace"] == again["soft_thinking"]["trace"], "bit for bit"
    assert texts(server, [chat(model_name, NOISY, seed=4321)])[0] != texts(server, [chat(model_name, NOISY, seed=1234)])[0]


OTHER_PROMPTS = ["What is 7 times 8?", "Name three rivers.", "Why is the sky blue?", "Count to five."]
OTHER_SETTINGS = [None, {"max_topk": 9, "method": "mixture_of_inputs"}, {"max_topk": 3, "noise": {"type": "dirichlet"}},
                  {"method": "switch", "window_size": 2}, {"method": "multiplex"}, None, {"max_topk": 20}, None]


def test_in_a_batch_of_other_prompts_and_settings_its_draws_are_the_same(server, model_name):
    """Neighbours of other prompts and settings change the model's rounding (by the batch's
    shape), not the request's draws: its first thinking steps take the same tokens, with
    weights within rounding of its run alone (other draws would move them by a tenth)."""
    seeded = chat(model_name, {**NOISY, "return_trace": True}, seed=1234)
    seeded["extra_body"]["top_k"] = 20
    alone = traced(server, [seeded])[0]["soft_thinking"]["trace"]
    others = []
    for i, soft in enumerate(OTHER_SETTINGS):
        body = chat(model_name, soft, seed=50 + i)
        body["extra_body"]["top_k"] = 5 + i
        body["messages"] = [{"role": "user", "content": OTHER_PROMPTS[i % len(OTHER_PROMPTS)]}]
        others.append(body)
    together = traced(server, others[:3] + [seeded] + others[3:])[3]["soft_thinking"]["trace"]
    for step in range(3):
        mine, theirs = together[step], alone[step]
        assert mine["ids"][0] == theirs["ids"][0] and set(mine["ids"]) == set(theirs["ids"]), f"step {step}"
        by_id = dict(zip(theirs["ids"], theirs["weights"]))
        assert max(abs(w - by_id[t]) for t, w in zip(mine["ids"], mine["weights"])) < 1e-3, f"step {step}"


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
