"""Each OpenAI sampling field does what it says, through the real ``openai`` client.

Where a field's effect can be computed independently it is: the filters ``top_k=1``,
``top_p`` near 0 and ``min_p=1`` leave only the most likely token, so sampling at
temperature 1 must reproduce greedy decoding; logprobs are compared with the
log-softmax of the same model run by transformers in float32 (the test server's dtype).
"""

from __future__ import annotations

import pytest
import torch

from tests.reference.soft_thinking_reference import load_reference_model

STORY = [{"role": "user", "content": "Write a long story about a dragon."}]
PROMPT = "The capital of France is"
LOGPROB_ATOL = 2e-3  # float32 SGLang against float32 transformers: sums in another order


@pytest.fixture(scope="module")
def reference():
    return load_reference_model()


@pytest.fixture(scope="module")
def greedy_story(openai_client, model_name) -> str:
    response = openai_client.chat.completions.create(
        model=model_name, messages=STORY, max_tokens=12, temperature=0)
    return response.choices[0].message.content


def test_n_gives_that_many_choices(openai_client, model_name):
    response = openai_client.chat.completions.create(
        model=model_name, messages=STORY, max_tokens=5, temperature=1.0, n=3,
        extra_body={"ignore_eos": True})
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert all(c.finish_reason == "length" and c.message.content for c in response.choices)
    assert response.usage.completion_tokens == 3 * 5


def test_max_completion_tokens_bounds_the_answer(openai_client, model_name):
    response = openai_client.chat.completions.create(
        model=model_name, messages=STORY, max_completion_tokens=7, max_tokens=20,
        temperature=0)
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 7


@pytest.mark.parametrize("field", [{"top_k": 1}, {"top_p": 1e-6}, {"min_p": 1.0}])
def test_filters_that_keep_one_token_reproduce_greedy(openai_client, model_name,
                                                      greedy_story, field):
    top_p = field.get("top_p")
    extra = {k: v for k, v in field.items() if k != "top_p"}
    response = openai_client.chat.completions.create(
        model=model_name, messages=STORY, max_tokens=12, temperature=1.0, top_p=top_p,
        extra_body=extra)
    assert response.choices[0].message.content == greedy_story


def test_chat_stop_strings_end_the_answer(openai_client, model_name, greedy_story):
    # Stop at the greedy answer's second word: the answer is cut right before it.
    words = greedy_story.split(" ")
    stop = " " + words[1]
    response = openai_client.chat.completions.create(
        model=model_name, messages=STORY, max_tokens=12, temperature=0,
        stop=["<never>", stop])
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == greedy_story[:greedy_story.index(stop)]


def reference_logprobs(reference, prompt_ids: list[int], num_tokens: int
                       ) -> tuple[list[int], torch.Tensor]:
    """Greedy continuation of ``prompt_ids`` and the log-softmax at each of its steps."""
    model, _ = reference
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(num_tokens):
            logits = model(torch.tensor([ids])).logits[0, -1]
            ids.append(int(logits.argmax()))
        logits = model(torch.tensor([ids])).logits[0]
    steps = torch.log_softmax(logits.float(), dim=-1)[len(prompt_ids) - 1:-1]  # [T, V]
    return ids[len(prompt_ids):], steps


def test_completion_logprobs_match_the_model(openai_client, model_name, reference):
    _, tokenizer = reference
    response = openai_client.completions.create(
        model=model_name, prompt=PROMPT, max_tokens=5, temperature=0, logprobs=3,
        extra_body={"ignore_eos": True})
    logprobs = response.choices[0].logprobs
    token_ids, steps = reference_logprobs(reference, tokenizer(PROMPT).input_ids, 5)
    assert logprobs.tokens == [tokenizer.decode([t]) for t in token_ids]
    for i, token_id in enumerate(token_ids):
        assert logprobs.token_logprobs[i] == pytest.approx(float(steps[i, token_id]),
                                                           abs=LOGPROB_ATOL)
        top_values, top_ids = steps[i].topk(3)
        expected = {tokenizer.decode([t]): float(v) for v, t in zip(top_values, top_ids)}
        assert logprobs.top_logprobs[i] == pytest.approx(expected, abs=LOGPROB_ATOL)
    assert logprobs.text_offset == [sum(len(t) for t in logprobs.tokens[:i]) for i in range(5)]
    assert "".join(logprobs.tokens) == response.choices[0].text


def test_chat_logprobs_match_the_model(openai_client, model_name, tokenizer, reference):
    messages = [{"role": "user", "content": "Name a colour."}]
    response = openai_client.chat.completions.create(
        model=model_name, messages=messages, max_tokens=4, temperature=0, logprobs=True,
        top_logprobs=2, extra_body={"ignore_eos": True})
    content = response.choices[0].logprobs.content
    prompt_ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                    tokenize=True, return_dict=False))
    token_ids, steps = reference_logprobs(reference, prompt_ids, 4)
    assert [entry.token for entry in content] == [tokenizer.decode([t]) for t in token_ids]
    for entry, token_id, step in zip(content, token_ids, steps):
        assert entry.logprob == pytest.approx(float(step[token_id]), abs=LOGPROB_ATOL)
        assert entry.bytes == list(entry.token.encode())
        assert [top.logprob for top in entry.top_logprobs] == pytest.approx(
            [float(v) for v in step.topk(2).values], abs=LOGPROB_ATOL)
        assert entry.top_logprobs[0].token == entry.token


def test_streamed_logprobs_equal_the_whole_response(openai_client, model_name):
    kwargs = dict(model=model_name, messages=STORY, max_tokens=6, temperature=0,
                  logprobs=True, top_logprobs=1)
    whole = openai_client.chat.completions.create(**kwargs).choices[0].logprobs.content
    chunks = list(openai_client.chat.completions.create(**kwargs, stream=True))
    streamed = [entry for chunk in chunks if chunk.choices and chunk.choices[0].logprobs
                for entry in chunk.choices[0].logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in whole]
    # The second request finds its prompt in the prefix cache: same maths, other sums.
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in whole],
                                                          abs=LOGPROB_ATOL)
    assert [len(e.top_logprobs) for e in streamed] == [1] * len(whole)
