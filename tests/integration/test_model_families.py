"""Soft thinking on each model family SGLang serves on this CPU, against the transformers references.

Each family's tiny random-weight checkpoint (``tiny_models.py``: two layers, hidden size 64,
the default model's tokenizer) is served once, in float32, by ``python -m server``. Every
thinking method that has an independent reference in ``tests/reference/`` is sent to it,
and the first ``NUM_STEPS`` steps of its trace are compared with the reference run in
plain transformers on the same checkpoint, within the tolerances of the default model's
tests (``compare_traces``; the methods' own ``compare``). A random model is far more
sensitive than a trained one to the order of floating-point sums (measured on Qwen2: the
traces part by 0.012 in a weight at step 11), so the comparison covers the first 8 steps,
each of which feeds a concept token through the family's input embedding. Measured over
those steps, in every family and method: weights within 1.5e-4 of the reference.

Gemma's input embedding scales each row by sqrt(hidden size): the reference takes its rows
through the model's own embedding module (``token_embeddings``; feeding them unscaled, or
scaled twice, moves Gemma 2's weights by 0.7 from the second step on), and a one-token
concept must be served exactly as the token itself.

Gemma 3's input embedding is an ``nn.Embedding`` of SGLang's own that scales its rows: the
plugin mixes the rows it gives, so its concept tokens are scaled like its tokens too.

A family soft thinking cannot feed concept tokens to is refused at start-up: Phi (Phi-1/2),
whose ``get_input_embeddings()`` embeds ids instead of returning its embedding module. Families SGLang 0.5.23 does not
run on this CPU are listed in the README ("Model families") with the error measured.

Starting a server costs far more than its tests, so each is started while the tests of the
one before it run (``ServerQueue``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import openai
import pytest
import torch

from server_process import ServerQueue, serving
from sglang_soft_thinking.params import METHODS
from tests.integration.test_mixture_of_inputs import compare as compare_mixture
from tests.integration.test_new_methods import compare_selar, selar_math_ids
from tests.integration.test_soft_thinking import compare_traces
from tests.integration.test_switch_method import compare as compare_switch
from tests.integration.tiny_models import FAMILIES, build_checkpoint
from tests.reference.mixture_reference import run_reference_mixture
from tests.reference.soft_thinking_reference import (
    load_reference_model,
    run_reference_soft_thinking,
    token_embeddings,
)
from tests.reference.discrete_reference import run_reference_discrete
from tests.reference.latent_reference import run_reference_latent
from tests.reference.multiplex_reference import run_reference_multiplex
from tests.reference.switch_reference import run_reference_switch
from tests.reference.selar_reference import run_reference_selar
from tests.reference.think_router_reference import run_reference_think_router

SERVED = ("llama", "llama-tied", "qwen2", "qwen3", "qwen3-moe", "mistral", "gemma2", "gemma3", "phi3",
          "olmo2")
REFUSED = "phi"
# the fixtures' names
REFUSED_KEY, DISABLED_KEY, STOCK_DISABLED_KEY = "refused_server", "disabled_server", "stock_disabled_server"
OFF_KEYS = (REFUSED_KEY, DISABLED_KEY, STOCK_DISABLED_KEY)  # servers of the refused family
PROMPT = "The quick brown fox"
NUM_STEPS = 8
TEMPERATURE, MAX_TOPK = 0.8, 5
SWITCH = dict(top_p=0.9, min_p=0.0, window_size=3)
SERVER_FLAGS = ("--max-total-tokens", "4096", "--dtype", "float32")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tokenizer):
    """Each family's checkpoint folder, built when first asked for."""
    paths = {}

    def path(name: str) -> Path:
        if name not in paths:
            folder = tmp_path_factory.mktemp(name)
            paths[name] = build_checkpoint(FAMILIES[name], folder, tokenizer)
        return paths[name]

    return path


def server_key(item) -> str | None:
    """The server a collected test takes from the queue: its family, or a refused one's."""
    names = getattr(item, "fixturenames", ())
    if "client" in names:
        return item.callspec.params["family"]
    return next((key for key in OFF_KEYS if key in names), None)


@pytest.fixture(scope="module")
def servers(request, checkpoints):
    """The servers of the tests selected in this module, in the order those tests run."""
    order = []
    for item in request.session.items:
        key = server_key(item) if item.module is request.module else None
        if key is not None and key not in order:
            order.append(key)

    def start(key: str):
        name = REFUSED if key in OFF_KEYS else key
        env = {"SOFTTHINK_DISABLE": "1"} if key in (DISABLED_KEY, STOCK_DISABLED_KEY) else None
        return stack.enter_context(serving(*SERVER_FLAGS, name=key, model=checkpoints(name),
                                           env=env, wait=False, stock=key == STOCK_DISABLED_KEY))

    with contextlib.ExitStack() as stack:
        yield ServerQueue(order, start)


@pytest.fixture(scope="module", params=SERVED)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def reference(family, checkpoints):
    """The family's checkpoint in transformers (float32), its tokenizer, the prompt's ids."""
    model, tokenizer = load_reference_model(checkpoints(family))
    return model, tokenizer, tokenizer(PROMPT)["input_ids"]


@pytest.fixture(scope="module")
def client(family, servers):
    proc = servers.take_healthy(family)
    yield openai.OpenAI(base_url=proc.base_url, api_key="none", max_retries=0, timeout=300)
    proc.stop()


def complete(client, soft: dict | None, temperature: float = TEMPERATURE, **extra) -> dict:
    """One completion of ``NUM_STEPS`` tokens; with ``soft``, all of them thinking steps."""
    body = {"ignore_eos": True, **extra}
    if soft is not None:
        body["soft_thinking"] = {"early_stopping_entropy_threshold": 0, "return_trace": True,
                                 "max_thinking_tokens": NUM_STEPS, **soft}
    response = client.completions.create(
        model=client.models.list().data[0].id, prompt=PROMPT, max_tokens=NUM_STEPS,
        temperature=temperature, extra_body=body)
    return response.model_dump()["choices"][0]


def check_concept(client, model, tokenizer, prompt_ids) -> None:
    trace = complete(client, {"max_topk": MAX_TOPK, "min_p": 0.001})["soft_thinking"]["trace"]
    ref = run_reference_soft_thinking(
        model, tokenizer, prompt_ids, num_steps=NUM_STEPS, temperature=TEMPERATURE,
        max_topk=MAX_TOPK, min_p=0.001, entropy_threshold=0.0, eos_ids=())
    assert len(trace) == len(ref.steps) == NUM_STEPS
    assert all(len(step["ids"]) > 1 for step in trace), "every concept token is a real mixture"
    compare_traces(trace, ref.steps)


def check_mixture(client, model, tokenizer, prompt_ids) -> None:
    # top_k = 1: the written token is the most likely one, so the reference follows alone.
    soft = {"method": "mixture_of_inputs", "max_topk": MAX_TOPK, "beta": 1.0, "min_p": 0.0}
    trace = complete(client, soft, top_k=1)["soft_thinking"]["trace"]
    ref = run_reference_mixture(model, prompt_ids, num_steps=NUM_STEPS, temperature=TEMPERATURE,
                                max_topk=MAX_TOPK, beta=1.0)
    compare_mixture(trace, ref, NUM_STEPS)


def check_switch(client, model, tokenizer, prompt_ids) -> None:
    soft = {"method": "switch", "max_topk": MAX_TOPK, "min_p": SWITCH["min_p"],
            "window_size": SWITCH["window_size"]}
    trace = complete(client, soft, top_p=SWITCH["top_p"], seed=3)["soft_thinking"]["trace"]
    # The tokens of explicit steps are sampled: the reference writes those the server wrote.
    ref = run_reference_switch(
        model, prompt_ids, num_steps=NUM_STEPS, temperature=TEMPERATURE, max_topk=MAX_TOPK, **SWITCH,
        explicit_tokens={step: entry["ids"][0] for step, entry in enumerate(trace)})
    assert len(trace) == len(ref.steps) == NUM_STEPS
    assert len(trace[0]["ids"]) > 1, "thinking starts latent, on a real mixture"
    compare_switch(trace, ref)


def check_think_router(client, model, tokenizer, prompt_ids) -> None:
    tau = 0.2  # random tiny models are unsure: most steps discrete, some latent
    trace = complete(client, {"method": "think_router", "tau": tau, "max_topk": MAX_TOPK, "min_p": 0.0},
                     seed=5)["soft_thinking"]["trace"]
    ref = run_reference_think_router(model, prompt_ids, num_steps=NUM_STEPS, temperature=TEMPERATURE, tau=tau,
                                     max_topk=MAX_TOPK, tokens={s: e["ids"][0] for s, e in enumerate(trace)})
    for step, (ours, want) in enumerate(zip(trace, ref.steps)):
        assert abs(ours["entropy"] - want.entropy) <= 0.01, f"step {step}"
        if abs(want.p_max - tau) > 1e-3:
            got = dict(zip(ours["ids"], ours["weights"]))
            assert all(abs(got.get(t, 0.0) - w) <= 0.01 for t, w in zip(want.ids, want.weights)), f"step {step}"


def check_multiplex(client, model, tokenizer, prompt_ids) -> None:
    trace = complete(client, {"method": "multiplex", "width": 3, "min_p": 0.0}, seed=5)["soft_thinking"]["trace"]
    steps = [dict(zip(e["ids"], e["weights"])) for e in trace]
    ref = run_reference_multiplex(model, prompt_ids, engine_steps=steps, temperature=TEMPERATURE, width=3,
                                  weighted=True)
    for step, (ours, want) in enumerate(zip(steps, ref.steps)):
        assert want.support_ok and sum(want.counts.values()) == 3, f"step {step}"
        assert all(abs(ours.get(t, 0.0) - w) <= 0.01 for t, w in want.weights.items()), f"step {step}"


def check_discrete(client, model, tokenizer, prompt_ids) -> None:
    trace = complete(client, {"method": "discrete", "min_p": 0.0}, seed=5, top_k=8)["soft_thinking"]["trace"]
    ref = run_reference_discrete(model, prompt_ids, tokens=[e["ids"][0] for e in trace],
                                 temperature=TEMPERATURE, top_k=8)
    for step, (ours, want) in enumerate(zip(trace, ref.steps)):
        assert ours["weights"] == [1.0] and want.probability > 0, f"step {step}"
        assert abs(ours["entropy"] - want.entropy) <= 0.01, f"step {step}"


def check_selar(client, model, tokenizer, prompt_ids) -> None:
    # A random model's top tokens are near-equal (H about 1): threshold 0 mixes every step
    # whose sampled token is not a maths token, each pushed through the family's embedding.
    threshold = 0.0
    trace = complete(client, {"method": "selar", "selar_threshold": threshold, "min_p": 0.0},
                     seed=5)["soft_thinking"]["trace"]
    # Teacher forcing: the reference feeds what the engine's trace says it fed, so each step is
    # compared from the same prefix. Free-running, SeLaR's push ((1 + H) q at H about 1, near-tied
    # top tokens) lets a random model's paths part by 0.05 in a weight by step 7.
    ref = run_reference_selar(model, prompt_ids, num_steps=NUM_STEPS, temperature=TEMPERATURE, threshold=threshold,
                              tokens={s: e["ids"][0] for s, e in enumerate(trace) if e["weights"] == [1.0]},
                              math_ids=selar_math_ids(tokenizer),
                              fed=[(e["ids"], e["weights"]) for e in trace])
    assert len(trace) == len(ref.steps) == NUM_STEPS
    assert any(not step.discrete for step in ref.steps), "some steps feed a pushed mixture"
    compare_selar(trace, ref, threshold, lambda step: 0.01)


def check_latent(client, model, tokenizer, prompt_ids) -> None:
    # Both projections; four vectors, then explicit steps (their sampled tokens given to the reference).
    for projection in ("ridge", "none"):
        soft = {"method": "latent", "projection": projection, "max_latent_steps": 4, "max_topk": MAX_TOPK,
                "min_p": 0.0, "latent_entropy_threshold": 100.0}
        trace = complete(client, soft, seed=5)["soft_thinking"]["trace"]
        ref = run_reference_latent(model, tokenizer, prompt_ids, num_steps=NUM_STEPS, temperature=TEMPERATURE,
                                   projection=projection, latent_entropy_threshold=100.0, max_latent_steps=4,
                                   max_topk=MAX_TOPK,
                                   tokens={s: e["ids"][0] for s, e in enumerate(trace) if e.get("kind") != "vector"})
        assert [e.get("kind") == "vector" for e in trace] == [s.vector for s in ref.steps], projection
        assert ref.steps[0].vector and not ref.steps[-1].vector
        for step, (ours, want) in enumerate(zip(trace, ref.steps)):
            context = f"{projection} step {step}: {ours} vs {want}"
            assert abs(ours["entropy"] - want.entropy) <= 0.01, context
            if want.vector:
                assert ours["ids"][0] == want.ids[0], context
                assert all(abs(a - b) <= 0.01 for a, b in zip(ours["weights"], want.similarities)), context
            else:
                assert ours["ids"] == [want.token], context


# Every method with an independent reference; a method added to METHODS joins once it has one.
CHECKS = {"concept": check_concept, "mixture_of_inputs": check_mixture, "switch": check_switch,
          "think_router": check_think_router, "multiplex": check_multiplex, "discrete": check_discrete,
          "selar": check_selar, "latent": check_latent}


@pytest.mark.parametrize("method", [method for method in METHODS if method in CHECKS])
def test_the_trace_matches_the_reference(client, reference, method):
    CHECKS[method](client, *reference)


def test_a_one_token_concept_is_fed_exactly_like_the_token(client):
    """max_topk 1: each concept token is the most likely token with weight 1, so thinking
    must write what greedy decoding writes (an input scaled otherwise than a token's, as
    Gemma's sqrt(hidden size) could be, changes it within a step or two)."""
    soft = complete(client, {"max_topk": 1})
    greedy = complete(client, None, temperature=0.0)
    assert soft["soft_thinking"]["thinking_tokens"] == NUM_STEPS
    assert soft["text"] == greedy["text"]


def test_the_reference_feeds_a_token_row_like_the_token_id(reference):
    """The reference mixes rows taken through the model's own input embedding (which scales
    them, for Gemma): a prompt fed as those rows gives the logits of the prompt fed by id."""
    model, _, prompt_ids = reference
    with torch.no_grad():
        by_id = model(input_ids=torch.tensor([prompt_ids])).logits
        by_row = model(inputs_embeds=token_embeddings(model)[prompt_ids][None]).logits
    assert torch.equal(by_id, by_row)


@pytest.fixture(scope="module")
def refused_server(servers):
    return servers.take(REFUSED_KEY)


@pytest.fixture(scope="module")
def disabled_server(servers):
    return servers.take_healthy(DISABLED_KEY)


def test_a_model_whose_input_embedding_cannot_take_concept_tokens_is_refused(refused_server):
    """Phi: its get_input_embeddings() embeds ids, so there is no embedding module whose rows
    soft thinking could mix; it is refused at start-up, naming the architecture and why."""
    assert refused_server.process.wait(timeout=300) != 0
    log = refused_server.log()
    assert ("soft thinking cannot serve PhiForCausalLM: its get_input_embeddings() takes "
            "input_ids and returns embeddings") in log
    assert "Start with SOFTTHINK_DISABLE=1" in log


def test_softthink_disable_serves_such_a_model_without_soft_thinking(disabled_server):
    client = openai.OpenAI(base_url=disabled_server.base_url, api_key="none", max_retries=0,
                           timeout=300)
    choice = complete(client, None, temperature=0.0)
    assert choice["text"] and choice["finish_reason"] == "length"


def test_softthink_disable_refuses_soft_thinking_requests(disabled_server):
    """Without the plugin the engine would decode a soft-thinking request plainly: the
    server refuses it (it asked the engine's schedulers at start-up), and still serves
    plain requests."""
    client = openai.OpenAI(base_url=disabled_server.base_url, api_key="none", max_retries=0,
                           timeout=300)
    for body in ({"soft_thinking": {"max_topk": 3}}, {"enable_soft_thinking": True}):
        with pytest.raises(openai.BadRequestError) as refused:
            client.completions.create(model=client.models.list().data[0].id, prompt=PROMPT,
                                      max_tokens=4, temperature=0.7, extra_body=body)
        error = refused.value.body
        assert error["param"] == "soft_thinking" and error["code"] == "soft_thinking_unavailable"
        assert error["message"].startswith("soft_thinking: this server's engine runs without "
                                           "soft thinking (SOFTTHINK_DISABLE=1")
    choice = complete(client, None, temperature=0.0, soft_thinking={"enabled": False})
    assert choice["text"] and choice["finish_reason"] == "length" and "soft_thinking" not in choice
    info = httpx.get(disabled_server.base_url.removesuffix("/v1") + "/server_info", timeout=60).json()
    assert info["soft_thinking"]["enabled"] is False
    assert info["soft_thinking"]["reason"].startswith("SOFTTHINK_DISABLE=1")


@pytest.fixture(scope="module")
def stock_disabled_server(servers):
    return servers.take_healthy(STOCK_DISABLED_KEY)


def test_stock_launch_server_with_softthink_disable_refuses_soft_thinking(stock_disabled_server):
    """Stock SGLang with the plugin switched off: the plugin's one remaining hook refuses a
    soft-thinking request with a 400 naming soft_thinking, and the schedulers' start-up
    report (stock /server_info) says soft thinking is off; plain requests are served."""
    root = stock_disabled_server.base_url.removesuffix("/v1")
    sampling = {"temperature": 0.7, "max_new_tokens": 4, "ignore_eos": True}
    soft = {**sampling, "custom_params": {"soft_thinking": {"max_topk": 3}}}
    refused = httpx.post(root + "/generate", json={"text": PROMPT, "sampling_params": soft}, timeout=300)
    assert refused.status_code == 400
    assert "soft_thinking: this engine runs without soft thinking (SOFTTHINK_DISABLE=1" in refused.text
    plain = httpx.post(root + "/generate", json={"text": PROMPT, "sampling_params": sampling}, timeout=300)
    assert plain.status_code == 200 and plain.json()["meta_info"]["completion_tokens"] == 4
    info = httpx.get(root + "/server_info", timeout=60).json()
    assert info["soft_thinking"]["enabled"] is False
    assert info["soft_thinking"]["reason"].startswith("SOFTTHINK_DISABLE=1")
