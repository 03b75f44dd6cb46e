"""The switch method through the real server, against the independent transformers reference
(tests/reference/switch_reference.py), float32 like the concept method's test."""

from __future__ import annotations

import pytest

from tests.integration.test_soft_thinking import QUESTION, chat_prompt_ids, soft_chat
from tests.reference.soft_thinking_reference import load_reference_model
from tests.reference.switch_reference import run_reference_switch

STEPS = 24
TIGHT_STEPS, TIGHT_ATOL, LOOSE_ATOL = 8, 0.01, 0.05  # as for the concept method (see there)
SETTINGS = dict(temperature=0.8, top_p=0.9, min_p=0.0, max_topk=5, window_size=3)


@pytest.fixture(scope="module")
def reference_model():
    return load_reference_model()[0]


def switch(**extra) -> dict:
    return {"method": "switch", "max_topk": SETTINGS["max_topk"], "min_p": SETTINGS["min_p"],
            "window_size": SETTINGS["window_size"], "early_stopping_entropy_threshold": 0,
            "return_trace": True, **extra}


def server_and_reference(client, model_name, tokenizer, model, seed: int, **soft):
    body = soft_chat(client, model_name, soft=switch(**soft), temperature=SETTINGS["temperature"],
                     top_p=SETTINGS["top_p"], max_tokens=STEPS + 8, ignore_eos=True, seed=seed)
    choice = body["choices"][0]
    trace = choice["soft_thinking"]["trace"]
    reference = run_reference_switch(
        model, chat_prompt_ids(tokenizer, QUESTION), num_steps=len(trace), **SETTINGS,
        max_switch_count=soft.get("max_switch_count"),
        explicit_tokens={step: entry["ids"][0] for step, entry in enumerate(trace)})
    return choice, trace, reference


def compare(trace: list[dict], reference) -> None:
    assert len(trace) == len(reference.steps)
    for step, (ours, ref) in enumerate(zip(trace, reference.steps)):
        atol = TIGHT_ATOL if step < TIGHT_STEPS else LOOSE_ATOL
        context = f"step {step}: {ours} vs reference {ref}"
        assert abs(ours["entropy"] - ref.entropy) <= atol, context
        if ref.explicit:
            assert ours["ids"] == ref.ids and ours["weights"] == [1.0], context
            continue
        got, want = dict(zip(ours["ids"], ours["weights"])), dict(zip(ref.ids, ref.weights))
        assert ours["ids"][0] == ref.ids[0], context
        for token in set(got) | set(want):
            assert abs(got.get(token, 0.0) - want.get(token, 0.0)) <= atol, f"token {token}, {context}"


def test_latent_and_explicit_steps_match_the_reference(openai_client, model_name, tokenizer, reference_model):
    choice, trace, reference = server_and_reference(openai_client, model_name, tokenizer, reference_model,
                                                    seed=3, max_thinking_tokens=STEPS)
    compare(trace, reference)
    modes = [step.explicit for step in reference.steps]
    assert True in modes, "some steps are explicit"
    assert any(a and not b for a, b in zip(modes, modes[1:])), "thinking turns latent again"
    assert choice["soft_thinking"]["end_reason"] == "budget"


def test_the_switch_cap_ends_thinking_like_cold_stop(openai_client, model_name, tokenizer, reference_model):
    choice, trace, reference = server_and_reference(openai_client, model_name, tokenizer, reference_model,
                                                    seed=3, max_switch_count=2, max_thinking_tokens=STEPS)
    compare(trace, reference)
    assert reference.capped and len(trace) < STEPS
    assert choice["soft_thinking"]["end_reason"] == "switch_cap"
    assert choice["message"]["content"], "the answer follows the written think-end string"
