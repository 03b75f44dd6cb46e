"""Checks of the reference Soft Thinking implementation itself.

The first group feeds hand-computed distributions through each DESIGN §4 step; the second runs
the default model (skipped when it is not provisioned) and compares with plain greedy decoding.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.reference.soft_thinking_reference import (
    DEFAULT_MODEL_DIR,
    ReferenceSettings,
    concept_embedding,
    concept_token,
    entropy_nats,
    filtered_probs,
    load_reference_model,
    min_p_filter,
    reference_soft_thinking,
    run_reference_soft_thinking,
    temperature_softmax,
    top_k_filter,
    top_p_filter,
)

# Five tokens, deliberately not in probability order: ranks are 2, 0, 4, 1, 3.
PROBS = torch.tensor([0.3, 0.1, 0.4, 0.05, 0.15])


def assert_close(actual: torch.Tensor, expected: list[float]) -> None:
    expected_tensor = torch.tensor(expected, dtype=torch.float32)
    torch.testing.assert_close(actual, expected_tensor, atol=1e-6, rtol=0)


# --- steps 1 and 2 ---------------------------------------------------------------------------


def test_temperature_softmax_divides_logits_by_temperature():
    logits = torch.tensor([2.0, 0.0, -2.0])
    expected = torch.exp(logits / 2.0) / torch.exp(logits / 2.0).sum()
    torch.testing.assert_close(temperature_softmax(logits, 2.0), expected)


@pytest.mark.parametrize("n", [1, 5, 49152])
def test_entropy_of_uniform_is_log_n(n):
    assert entropy_nats(torch.full((n,), 1.0 / n)) == pytest.approx(math.log(n), abs=1e-4)


def test_entropy_treats_zero_probabilities_as_zero():
    assert entropy_nats(torch.tensor([1.0, 0.0, 0.0])) == 0.0
    assert entropy_nats(torch.tensor([0.5, 0.5, 0.0])) == pytest.approx(math.log(2))


# --- step 3 ----------------------------------------------------------------------------------


def test_top_k_keeps_the_k_most_probable_and_renormalises():
    assert_close(top_k_filter(PROBS, 2), [3 / 7, 0, 4 / 7, 0, 0])


@pytest.mark.parametrize("top_k", [-1, 5, 100])
def test_top_k_minus_one_or_at_least_vocab_keeps_all(top_k):
    assert_close(top_k_filter(PROBS, top_k), PROBS.tolist())


@pytest.mark.parametrize(
    "top_p, expected",
    [
        # Mass before each token, in rank order: 0, 0.4, 0.7, 0.85, 0.95.
        (0.3, [0, 0, 1, 0, 0]),  # 0.4 > 0.3: only the first token
        (0.6, [3 / 7, 0, 4 / 7, 0, 0]),  # the second token crosses 0.6 and is kept
        (0.75, [0.3 / 0.85, 0, 0.4 / 0.85, 0, 0.15 / 0.85]),
        (1.0, [0.3, 0.1, 0.4, 0.05, 0.15]),
    ],
)
def test_top_p_keeps_tokens_whose_preceding_mass_is_at_most_top_p(top_p, expected):
    assert_close(top_p_filter(PROBS, top_p), expected)


def test_min_p_drops_tokens_below_min_p_times_max():
    # Threshold 0.3 * 0.4 = 0.12: 0.1 and 0.05 go.
    assert_close(min_p_filter(PROBS, 0.3), [0.3 / 0.85, 0, 0.4 / 0.85, 0, 0.15 / 0.85])
    assert_close(min_p_filter(PROBS, 0.0), PROBS.tolist())


def test_filters_apply_in_order_each_on_the_renormalised_result():
    # top-k 2 leaves (4/7, 3/7); top-p 0.5 then sees 4/7 > 0.5 before the second token and drops
    # it. Applying top-p 0.5 to the raw distribution first would have kept both.
    logits = torch.log(PROBS)
    probs, entropy = filtered_probs(logits, 1.0, top_k=2, top_p=0.5, min_p=0.0)
    assert_close(probs, [0, 0, 1, 0, 0])
    assert entropy == pytest.approx(entropy_nats(PROBS), abs=1e-6)  # before any filter


# --- steps 5 and 6 ---------------------------------------------------------------------------


def test_concept_token_is_sorted_renormalised_top_max_topk():
    ids, weights = concept_token(PROBS, max_topk=3)
    assert ids == [2, 0, 4]
    assert weights == pytest.approx([0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85], abs=1e-6)
    assert sum(weights) == pytest.approx(1.0, abs=1e-6)


def test_concept_token_drops_zero_weights():
    ids, weights = concept_token(min_p_filter(PROBS, 0.9), max_topk=4)
    assert ids == [2] and weights == [1.0]


def test_concept_embedding_is_the_weighted_sum_of_rows():
    embedding_matrix = torch.arange(12.0).view(4, 3)  # [V=4, H=3]
    mixed = concept_embedding(embedding_matrix, [3, 1], [0.75, 0.25])
    assert_close(mixed, (0.75 * embedding_matrix[3] + 0.25 * embedding_matrix[1]).tolist())


@pytest.mark.parametrize(
    "name, value",
    [("temperature", 0.0), ("top_p", 0.0), ("min_p", 1.0), ("max_topk", 0), ("top_k", 0)],
)
def test_settings_reject_invalid_values_by_name(name, value):
    with pytest.raises(ValueError, match=name):
        ReferenceSettings(**{"num_steps": 1, "temperature": 1.0, name: value})


# --- on the default model --------------------------------------------------------------------

needs_model = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "model.safetensors").is_file(),
    reason=f"default model not provisioned at {DEFAULT_MODEL_DIR}",
)


@pytest.fixture(scope="module")
def model_and_tokenizer():
    torch.manual_seed(0)
    return load_reference_model(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def prompt_ids(model_and_tokenizer):
    _, tokenizer = model_and_tokenizer
    messages = [{"role": "user", "content": "What is 2+3?"}]
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"])


@pytest.fixture(scope="module")
def greedy_ids(model_and_tokenizer, prompt_ids):
    """Twelve greedy tokens from ``generate``, the yardstick for one-hot concepts."""
    model, tokenizer = model_and_tokenizer
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=12,
            pad_token_id=tokenizer.eos_token_id,
        )
    return out[0, len(prompt_ids):].tolist()


@needs_model
def test_first_step_is_led_by_the_prompts_argmax(model_and_tokenizer, prompt_ids):
    model, tokenizer = model_and_tokenizer
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt_ids])).logits[0, -1]
    steps = reference_soft_thinking(model, tokenizer, prompt_ids, num_steps=3, temperature=0.6)
    assert steps[0]["ids"][0] == int(torch.argmax(logits))
    for step in steps:
        assert 1 <= len(step["ids"]) <= 10 and len(set(step["ids"])) == len(step["ids"])
        assert sum(step["weights"]) == pytest.approx(1.0, abs=1e-5)
        assert step["weights"] == sorted(step["weights"], reverse=True)
        assert step["entropy"] >= 0.0


@needs_model
def test_one_hot_concepts_reproduce_greedy_decoding(model_and_tokenizer, prompt_ids, greedy_ids):
    model, tokenizer = model_and_tokenizer
    steps = reference_soft_thinking(
        model, tokenizer, prompt_ids, num_steps=8, temperature=0.6, max_topk=1
    )
    assert [step["ids"][0] for step in steps] == greedy_ids[: len(steps)]
    assert all(step["weights"] == [1.0] for step in steps)


@needs_model
def test_budget_forces_think_end_then_answers_greedily(
    model_and_tokenizer, prompt_ids, greedy_ids
):
    model, tokenizer = model_and_tokenizer
    result = run_reference_soft_thinking(
        model, tokenizer, prompt_ids, num_steps=10, temperature=0.6, max_topk=1,
        max_thinking_tokens=3, num_answer_tokens=2,
    )
    think_end_ids = tokenizer("</think>", add_special_tokens=False)["input_ids"]
    assert result.end_reason == "budget" and len(result.steps) == 3
    assert result.forced_ids == think_end_ids
    # With one-hot concepts the answer must be greedy decoding of the written text.
    written = prompt_ids + greedy_ids[:3] + think_end_ids
    with torch.no_grad():
        out = model.generate(
            torch.tensor([written]), do_sample=False, max_new_tokens=2,
            pad_token_id=tokenizer.eos_token_id,
        )
    assert result.answer_ids == out[0, len(written):].tolist()


@needs_model
def test_cold_stop_fires_after_length_threshold_low_entropy_steps(model_and_tokenizer, prompt_ids):
    model, tokenizer = model_and_tokenizer
    result = run_reference_soft_thinking(
        model, tokenizer, prompt_ids, num_steps=10, temperature=0.6,
        entropy_threshold=1e6, length_threshold=2, max_thinking_tokens=2,
    )
    assert result.end_reason == "cold_stop" and len(result.steps) == 2  # Cold Stop beats budget
    assert result.forced_ids == tokenizer("</think>", add_special_tokens=False)["input_ids"]


@needs_model
def test_multi_token_think_end_is_detected_in_the_output(
    model_and_tokenizer, prompt_ids, greedy_ids
):
    model, tokenizer = model_and_tokenizer
    # Use two greedy tokens that the tokenizer gives back unchanged as the think-end string.
    for start in range(len(greedy_ids) - 2):
        window = greedy_ids[start : start + 2]
        think_end_str = tokenizer.decode(window)
        if tokenizer(think_end_str, add_special_tokens=False)["input_ids"] == window:
            break
    else:
        pytest.skip("no two greedy tokens round-trip through the tokenizer")
    result = run_reference_soft_thinking(
        model, tokenizer, prompt_ids, num_steps=12, temperature=0.6, max_topk=1,
        think_end_str=think_end_str,
    )
    assert result.end_reason == "think_end" and result.forced_ids == []
    assert [step["ids"][0] for step in result.steps] == greedy_ids[: start + 2]
