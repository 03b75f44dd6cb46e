"""How the API reports a soft-thinking request: reasoning and answer, summary, usage; streamed too.

A thinking budget makes the engine write ``</think>``, so even the default model (which has
no thinking template) produces both parts. The answer is greedy, so the plain and the
streamed request produce the same text. The split follows the engine's per-token records,
so thinking streams as it is generated, and a request that ends while thinking keeps its text
as reasoning.
"""

from __future__ import annotations

import pytest

MESSAGES = [{"role": "user", "content": "What is 12 + 7?"}]
SOFT = {"max_topk": 5, "max_thinking_tokens": 6, "after_thinking": {"temperature": 0}}
THINK_END_TOKENS = 3  # "</think>" is three tokens for the default model


@pytest.fixture(scope="module")
def plain(openai_client, model_name):
    return openai_client.chat.completions.create(
        model=model_name, messages=MESSAGES, max_tokens=24, temperature=0.7,
        extra_body={"soft_thinking": SOFT})


def test_reasoning_and_answer_are_split(plain):
    message = plain.choices[0].message
    assert message.reasoning_content
    assert message.content is not None
    assert "</think>" not in message.reasoning_content + message.content


def test_choice_carries_the_summary_and_usage_counts_reasoning(plain):
    summary = plain.choices[0].soft_thinking
    assert summary["end_reason"] == "budget"
    assert summary["thinking_tokens"] == SOFT["max_thinking_tokens"] + THINK_END_TOKENS
    assert "trace" not in summary
    assert plain.usage.completion_tokens_details.reasoning_tokens == summary["thinking_tokens"]
    assert plain.usage.completion_tokens >= summary["thinking_tokens"]


def test_streamed_request_sends_reasoning_then_content(openai_client, model_name, plain):
    chunks = list(openai_client.chat.completions.create(
        model=model_name, messages=MESSAGES, max_tokens=24, temperature=0.7, stream=True,
        stream_options={"include_usage": True}, extra_body={"soft_thinking": SOFT}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    assert reasoning == plain.choices[0].message.reasoning_content
    assert content == plain.choices[0].message.content
    first_content = next((i for i, d in enumerate(deltas) if d.content), len(deltas))
    assert not any(getattr(d, "reasoning_content", None) for d in deltas[first_content:])
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][0]
    assert final.choices[0].soft_thinking == plain.choices[0].soft_thinking
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == \
        plain.usage.completion_tokens_details.reasoning_tokens


def test_trace_is_returned_on_request(openai_client, model_name):
    response = openai_client.chat.completions.create(
        model=model_name, messages=MESSAGES, max_tokens=12, temperature=0.7,
        extra_body={"soft_thinking": {**SOFT, "return_trace": True}})
    trace = response.choices[0].soft_thinking["trace"]
    assert len(trace) == SOFT["max_thinking_tokens"]
    for step in trace:
        assert len(step["ids"]) == len(step["weights"]) <= SOFT["max_topk"]
        assert step["weights"] == sorted(step["weights"], reverse=True)
        assert step["entropy"] >= 0


def test_plain_request_has_no_soft_thinking_fields(openai_client, model_name):
    response = openai_client.chat.completions.create(
        model=model_name, messages=MESSAGES, max_tokens=4, temperature=0.7)
    choice = response.choices[0]
    assert getattr(choice, "soft_thinking", None) is None
    assert getattr(choice.message, "reasoning_content", None) is None
    assert response.usage.completion_tokens_details is None


def test_thinking_streams_as_it_is_generated(openai_client, model_name):
    """No budget, so the whole request thinks: its reasoning arrives chunk by chunk."""
    soft = {"max_topk": 5}
    chunks = list(openai_client.chat.completions.create(
        model=model_name, messages=MESSAGES, max_tokens=32, temperature=0.7, stream=True,
        extra_body={"soft_thinking": soft, "ignore_eos": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = [d.reasoning_content for d in deltas if getattr(d, "reasoning_content", None)]
    assert not any(d.content for d in deltas)
    assert len(reasoning) >= 4, "the thinking came in one piece, at the end"
    assert len(reasoning[0]) < len("".join(reasoning)) / 2
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][0].choices[0]
    assert final.finish_reason == "length"
    assert final.soft_thinking == {"thinking_tokens": 32, "end_reason": "length"}


def test_request_that_ends_while_thinking_keeps_its_text_as_reasoning(openai_client, model_name):
    response = openai_client.chat.completions.create(
        model=model_name, messages=MESSAGES, max_tokens=12, temperature=0.7,
        extra_body={"soft_thinking": {"max_topk": 5}, "ignore_eos": True})
    choice = response.choices[0]
    assert choice.message.reasoning_content and choice.message.content is None
    assert choice.soft_thinking["end_reason"] == "length"
    assert response.usage.completion_tokens_details.reasoning_tokens == 12


@pytest.mark.parametrize("budget", [None, 6])
def test_streamed_and_whole_responses_split_alike(openai_client, model_name, budget):
    """A seeded request repeats exactly (noise and answer samples included), streamed or not."""
    soft = {"max_topk": 5, "max_thinking_tokens": budget, "noise": {"type": "gumbel",
                                                                    "temperature": 0.5}}
    request = dict(model=model_name, messages=MESSAGES, max_tokens=20, temperature=0.7, seed=7,
                   extra_body={"soft_thinking": soft, "ignore_eos": True})
    whole = openai_client.chat.completions.create(**request)
    chunks = list(openai_client.chat.completions.create(
        **request, stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    message = whole.choices[0].message
    streamed_reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    streamed_content = [d.content for d in deltas if d.content]
    assert streamed_reasoning == message.reasoning_content
    assert ("".join(streamed_content) if streamed_content else None) == (message.content or None)
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == \
        whole.usage.completion_tokens_details.reasoning_tokens


@pytest.mark.parametrize("method", [{"method": "mixture_of_inputs", "beta": 0.5},
                                    {"method": "switch", "window_size": 2},
                                    {"method": "think_router", "tau": 0.5},
                                    {"method": "multiplex", "width": 3}, {"method": "discrete"},
                                    {"method": "selar", "selar_threshold": 0.3}])
def test_every_method_cold_stops_and_streams_as_it_answers_whole(openai_client, model_name, method):
    """Cold Stop ends each method's thinking (an entropy bound every step is under: after 3
    steps), and a seeded request streams exactly what it answers whole, trace included."""
    soft = {"max_topk": 5, "early_stopping_entropy_threshold": 100.0,
            "early_stopping_length_threshold": 3, "return_trace": True, **method}
    request = dict(model=model_name, messages=MESSAGES, max_tokens=20, temperature=0.9, seed=5,
                   extra_body={"soft_thinking": soft, "ignore_eos": True})
    whole = openai_client.chat.completions.create(**request).choices[0]
    summary = whole.model_extra["soft_thinking"]
    assert summary["end_reason"] == "cold_stop" and len(summary["trace"]) == 3
    assert whole.message.reasoning_content and whole.message.content
    choices = [c.choices[0] for c in openai_client.chat.completions.create(**request, stream=True)
               if c.choices]
    streamed = "".join(getattr(c.delta, "reasoning_content", None) or "" for c in choices)
    assert streamed == whole.message.reasoning_content
    assert "".join(c.delta.content or "" for c in choices) == whole.message.content
    pieces = [c.model_extra["soft_thinking"]["trace"] for c in choices
              if not c.finish_reason and c.model_extra.get("soft_thinking")]
    assert [entry for piece in pieces for entry in piece] == summary["trace"]


@pytest.mark.parametrize("route", ["chat", "completions"])
def test_streamed_chunks_carry_the_trace_of_the_steps_they_add(openai_client, model_name, route):
    """With return_trace, the chunks before the last carry each thinking step's trace entry
    as it comes; together they are the whole trace the last chunk's summary repeats."""
    soft = {**SOFT, "max_thinking_tokens": 8, "return_trace": True}
    if route == "chat":
        stream = openai_client.chat.completions.create(
            model=model_name, messages=MESSAGES, max_tokens=16, temperature=0.7, stream=True,
            extra_body={"soft_thinking": soft})
    else:
        stream = openai_client.completions.create(
            model=model_name, prompt="12 + 7 =", max_tokens=16, temperature=0.7, stream=True,
            extra_body={"soft_thinking": soft})
    choices = [c.choices[0] for c in stream if c.choices]
    live = [c.model_extra.get("soft_thinking") for c in choices if not c.finish_reason]
    pieces = [s["trace"] for s in live if s]
    summary = [c for c in choices if c.finish_reason][0].model_extra["soft_thinking"]
    assert len(summary["trace"]) == 8
    assert [entry for piece in pieces for entry in piece] == summary["trace"]
    assert len(pieces) >= 3, "the trace came in one piece"
