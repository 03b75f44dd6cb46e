"""think_router, multiplex, discrete, selar and latent through the real server, each against its own
independent transformers reference (tests/reference/), float32 like the concept method's test.
The references are driven by the engine's sampled tokens (teacher forcing) and recompute
everything else: the routes, the merged inputs, the entropies."""

from __future__ import annotations

import pytest

from tests.integration.test_soft_thinking import QUESTION, chat_prompt_ids, soft_chat
from tests.reference.discrete_reference import run_reference_discrete
from tests.reference.latent_reference import run_reference_latent
from tests.reference.multiplex_reference import draw_counts, run_reference_multiplex
from tests.reference.selar_reference import run_reference_selar
from tests.reference.soft_thinking_reference import load_reference_model
from tests.reference.think_router_reference import run_reference_think_router

STEPS = 16
TIGHT_STEPS, TIGHT_ATOL, LOOSE_ATOL = 8, 0.01, 0.05  # as for the concept method (see there)


@pytest.fixture(scope="module")
def reference_model():
    return load_reference_model()[0]


def atol(step: int) -> float:
    return TIGHT_ATOL if step < TIGHT_STEPS else LOOSE_ATOL


def trace_of(client, model_name, seed: int, temperature: float, **soft) -> list[dict]:
    body = soft_chat(client, model_name, temperature=temperature, max_tokens=STEPS, ignore_eos=True, seed=seed,
                     soft={"early_stopping_entropy_threshold": 0, "max_thinking_tokens": STEPS, "min_p": 0.0,
                           "return_trace": True, **soft})
    trace = body["choices"][0]["soft_thinking"]["trace"]
    assert len(trace) == STEPS
    return trace


def test_think_router_routes_and_mixes_like_the_reference(openai_client, model_name, tokenizer, reference_model):
    tau, temperature = 0.5, 0.8
    trace = trace_of(openai_client, model_name, 7, temperature, method="think_router", tau=tau, max_topk=5)
    reference = run_reference_think_router(
        reference_model, chat_prompt_ids(tokenizer, QUESTION), num_steps=STEPS, temperature=temperature,
        tau=tau, max_topk=5, tokens={step: entry["ids"][0] for step, entry in enumerate(trace)})
    for step, (ours, ref) in enumerate(zip(trace, reference.steps)):
        context = f"step {step}: {ours} vs reference {ref}"
        assert abs(ours["entropy"] - ref.entropy) <= atol(step), context
        if abs(ref.p_max - tau) < 1e-3:
            continue  # on the threshold: rounding may route either way
        if ref.discrete:
            assert ours["weights"] == [1.0], context
            continue
        got, want = dict(zip(ours["ids"], ours["weights"])), dict(zip(ref.ids, ref.weights))
        assert ours["ids"][0] == ref.ids[0], context
        for token in set(got) | set(want):
            assert abs(got.get(token, 0.0) - want.get(token, 0.0)) <= atol(step), f"token {token}, {context}"
    routes = {step.discrete for step in reference.steps}
    assert routes == {True, False}, "both routes were taken"


@pytest.mark.parametrize("merge", ["weighted", "uniform"])
def test_multiplex_merges_its_draws_like_the_reference(openai_client, model_name, tokenizer, reference_model, merge):
    width, temperature = 3, 1.0
    trace = trace_of(openai_client, model_name, 11, temperature, method="multiplex", width=width, merge=merge)
    engine_steps = [dict(zip(entry["ids"], entry["weights"])) for entry in trace]
    reference = run_reference_multiplex(reference_model, chat_prompt_ids(tokenizer, QUESTION),
                                        engine_steps=engine_steps, temperature=temperature, width=width,
                                        weighted=merge == "weighted")
    for step, (ours, ref) in enumerate(zip(engine_steps, reference.steps)):
        context = f"step {step}: {ours} vs reference {ref}"
        assert abs(trace[step]["entropy"] - ref.entropy) <= atol(step), context
        assert ref.support_ok and sum(ref.counts.values()) == width and min(ref.counts.values()) >= 1, context
        if merge == "uniform":  # the weights are the draws' counts over the width, exactly
            counts = draw_counts(ours, {t: 1.0 for t in ours}, width, weighted=False)
            assert all(abs(c - round(c)) < 1e-4 for c in counts.values()), context
        for token in set(ours) | set(ref.weights):
            assert abs(ours.get(token, 0.0) - ref.weights.get(token, 0.0)) <= atol(step), f"token {token}, {context}"
    assert any(len(step) > 1 for step in engine_steps), "some steps merge several tokens"


def test_discrete_thinking_samples_from_the_cut_distribution(openai_client, model_name, tokenizer, reference_model):
    temperature, top_k = 0.9, 8
    body = soft_chat(openai_client, model_name, temperature=temperature, max_tokens=STEPS, ignore_eos=True, seed=3,
                     top_k=top_k, soft={"method": "discrete", "early_stopping_entropy_threshold": 0,
                                        "max_thinking_tokens": STEPS, "min_p": 0.0, "return_trace": True})
    trace = body["choices"][0]["soft_thinking"]["trace"]
    tokens = [entry["ids"][0] for entry in trace]
    assert all(entry["weights"] == [1.0] and len(entry["ids"]) == 1 for entry in trace)
    reference = run_reference_discrete(reference_model, chat_prompt_ids(tokenizer, QUESTION), tokens=tokens,
                                       temperature=temperature, top_k=top_k)
    for step, (ours, ref) in enumerate(zip(trace, reference.steps)):
        assert abs(ours["entropy"] - ref.entropy) <= atol(step), f"step {step}"
        assert ref.probability > 0, f"step {step}: token {ref.token} lies outside the top {top_k}"
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == tokenizer.decode(tokens, skip_special_tokens=True)


def selar_math_ids(tokenizer) -> frozenset[int]:
    """The maths tokens a SeLaR step always feeds as themselves (the authors' list)."""
    from sglang_soft_thinking.methods.selar import MATH_SET, METHOD

    return frozenset(METHOD.token_sets(tokenizer)[MATH_SET])


def compare_selar(trace: list[dict], reference, threshold: float, tolerance) -> None:
    """Each step routed like the reference, its entropy and its input's coefficients within
    ``tolerance(step)``; steps within 1e-3 of the threshold may route either way."""
    for step, (ours, ref) in enumerate(zip(trace, reference.steps)):
        context = f"step {step}: {ours} vs reference {ref}"
        assert abs(ours["entropy"] - ref.entropy) <= tolerance(step), context
        if abs(ref.topk_entropy - threshold) < 1e-3:
            continue
        assert (ours["weights"] == [1.0] and len(ours["ids"]) == 1) == ref.discrete, context
        if ref.discrete:
            continue
        assert ours["ids"][0] == ref.ids[0], context  # the top-1 token leads, however little it weighs
        got, want = dict(zip(ours["ids"], ours["weights"])), dict(zip(ref.ids, ref.weights))
        for token in set(got) | set(want):
            assert abs(got.get(token, 0.0) - want.get(token, 0.0)) <= tolerance(step), f"token {token}, {context}"


def test_selar_mixes_its_uncertain_steps_like_the_reference(openai_client, model_name, tokenizer, reference_model):
    threshold, temperature = 0.5, 0.8
    trace = trace_of(openai_client, model_name, 13, temperature, method="selar", selar_threshold=threshold)
    tokens = {step: entry["ids"][0] for step, entry in enumerate(trace) if entry["weights"] == [1.0]}
    reference = run_reference_selar(reference_model, chat_prompt_ids(tokenizer, QUESTION), num_steps=STEPS,
                                    temperature=temperature, tokens=tokens, threshold=threshold,
                                    math_ids=selar_math_ids(tokenizer))
    compare_selar(trace, reference, threshold, atol)
    assert {step.discrete for step in reference.steps} == {True, False}, "both routes were taken"
    assert any(w < 0 for step in trace for w in step["weights"]) or all(
        step.weights[0] >= 0 for step in reference.steps), "a negative top-1 weight reaches the trace"


@pytest.mark.parametrize("projection", ["ridge", "none"])
def test_latent_feeds_hidden_state_vectors_like_the_reference(openai_client, model_name, tokenizer, reference_model,
                                                              projection):
    """The vector input kind end to end: each latent step's input is the step's own final-norm
    hidden state (mapped by W_a and rescaled, or as it is), its trace the nearest tokens by
    cosine; the segment ends by the authors' rule and thinking goes on explicitly."""
    temperature, max_topk = 0.8, 5
    body = soft_chat(openai_client, model_name, temperature=temperature, max_tokens=STEPS, ignore_eos=True, seed=5,
                     soft={"early_stopping_entropy_threshold": 0, "max_thinking_tokens": STEPS, "min_p": 0.0,
                           "return_trace": True, "method": "latent", "projection": projection,
                           "max_latent_steps": 6, "max_topk": max_topk})
    trace = body["choices"][0]["soft_thinking"]["trace"]
    assert len(trace) == STEPS
    reference = run_reference_latent(
        reference_model, tokenizer, chat_prompt_ids(tokenizer, QUESTION), num_steps=STEPS, temperature=temperature,
        projection=projection, max_latent_steps=6, max_topk=max_topk,
        tokens={step: entry["ids"][0] for step, entry in enumerate(trace) if entry.get("kind") != "vector"})
    for step, (ours, ref) in enumerate(zip(trace, reference.steps)):
        context = f"step {step}: {ours} vs reference {ref}"
        assert (ours.get("kind") == "vector") == ref.vector, context
        assert abs(ours["entropy"] - ref.entropy) <= atol(step), context
        if not ref.vector:
            assert ours["ids"] == [ref.token] and ours["weights"] == [1.0], context
            continue
        assert ours["ids"][0] == ref.ids[0], context
        for mine, theirs in zip(ours["weights"], ref.similarities):
            assert abs(mine - theirs) <= atol(step), context
    kinds = [step.vector for step in reference.steps]
    assert kinds[0] and not kinds[-1], "latent first, explicit after the segment ends"
    text = tokenizer.decode([step.token for step in reference.steps], skip_special_tokens=True)
    assert body["choices"][0]["message"]["reasoning_content"].strip() == text.strip()
