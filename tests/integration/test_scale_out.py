"""Scale-out: two ``python -m server`` workers behind ``sglang-router`` on loopback ports.

The router registers each worker (it reads ``/health``, ``/server_info`` and
``/model_info``), spreads soft-thinking requests over both, and keeps answering when
one worker stops: its health check (every second here) drops the dead worker and a
request that met it is retried on the other one. Soft thinking reaches the workers two
ways: per request (whole in a ``/v1/completions`` body, which the router passes on; in
``chat_template_kwargs`` on chat, since the router rebuilds a chat body from the fields
it knows and passes that dictionary on), and by the workers' ``--soft-thinking``
defaults.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time

import httpx
import openai
import pytest

from metrics_scrape import scrape
from server_process import free_port, running, serving

WORKER_KV_TOKENS = 4096
SOFT = {"max_topk": 5, "max_thinking_tokens": 6, "early_stopping_entropy_threshold": 0}
PROMPT = "Tom has 3 apples and buys 5 more. How many apples does he have?"


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    defaults = tmp_path_factory.mktemp("scale-out") / "soft.json"
    defaults.write_text(json.dumps(SOFT))
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(serving(
            "--max-total-tokens", str(WORKER_KV_TOKENS), "--soft-thinking", str(defaults),
            name="worker", wait=False)) for _ in range(2)]
        for proc in procs:  # both load at once
            proc.wait_healthy()
        yield procs


@pytest.fixture(scope="module")
def router(workers):
    port = free_port()
    urls = [f"http://127.0.0.1:{w.port}" for w in workers]
    args = [sys.executable, "-m", "sglang_router.launch_router", "--host", "127.0.0.1",
            "--port", str(port), "--worker-urls", *urls, "--policy", "round_robin",
            "--health-check-interval-secs", "1", "--health-failure-threshold", "1",
            "--health-check-timeout-secs", "2", "--retry-max-retries", "3"]
    with running(args, port, "router", wait=False) as proc:
        wait_for_workers(port, urls, proc)
        yield proc


def router_workers(port: int) -> list[dict]:
    response = httpx.get(f"http://127.0.0.1:{port}/workers", timeout=10)
    response.raise_for_status()
    return response.json()["workers"]


def wait_for_workers(port: int, urls: list[str], proc, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            pytest.fail(f"router exited:\n{proc.log()[-4000:]}")
        try:
            healthy = {w["url"] for w in router_workers(port) if w.get("is_healthy")}
            if healthy >= set(urls):
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"router did not register both workers:\n{proc.log()[-4000:]}")


@pytest.fixture(scope="module")
def client(router):
    return openai.OpenAI(base_url=router.base_url, api_key="unused", max_retries=0,
                         timeout=300)


def served(worker) -> tuple[float, float]:
    """(completion requests answered, concept-token steps fed) by one worker so far."""
    metrics = scrape(worker)
    answered = sum(metrics.value("softthink_requests_total", route=route, status="200")
                   for route in ("/v1/completions", "/v1/chat/completions"))
    return answered, metrics.value("softthink_concept_token_steps_total")


def soft_completion(client, model: str, seed: int):
    return client.completions.create(model=model, prompt=PROMPT, max_tokens=10, seed=seed,
                                     temperature=0.7,
                                     extra_body={"soft_thinking": {**SOFT, "max_topk": 3}})


def test_the_router_spreads_soft_thinking_requests_over_both_workers(workers, client):
    model = client.models.list().data[0].id
    before = [served(w) for w in workers]
    for seed in range(4):
        response = soft_completion(client, model, seed)
        assert response.choices[0].text
        assert response.choices[0].model_extra["soft_thinking"]["thinking_tokens"] > 0
    chat = client.chat.completions.create(model=model, max_tokens=10, temperature=0.7,
                                          messages=[{"role": "user", "content": PROMPT}])
    assert chat.choices[0].model_extra["soft_thinking"]["thinking_tokens"] > 0
    after = [served(w) for w in workers]
    answered = [a[0] - b[0] for a, b in zip(after, before)]
    concept_steps = [a[1] - b[1] for a, b in zip(after, before)]
    assert sum(answered) == 5 and min(answered) >= 2, answered
    assert min(concept_steps) > 0, concept_steps


def test_per_request_soft_thinking_on_chat_gets_through_the_router(client):
    model = client.models.list().data[0].id

    def chat(**extra):
        response = client.chat.completions.create(
            model=model, max_tokens=16, temperature=0.7, seed=1,
            messages=[{"role": "user", "content": PROMPT}], extra_body=extra)
        return response.choices[0].model_extra["soft_thinking"]

    by_default = chat()  # the workers' defaults: a budget of 6 thinking steps
    own = chat(chat_template_kwargs={"soft_thinking": {**SOFT, "max_thinking_tokens": 2}})
    assert by_default["end_reason"] == own["end_reason"] == "budget"
    assert by_default["thinking_tokens"] - own["thinking_tokens"] == 4


def test_requests_sent_after_a_worker_stopped_are_all_answered(workers, router, client):
    model = client.models.list().data[0].id
    stopped, alive = workers
    stopped.stop()
    before = served(alive)[0]
    for seed in range(4):
        response = soft_completion(client, model, seed)
        assert response.choices[0].model_extra["soft_thinking"]["thinking_tokens"] > 0
    assert served(alive)[0] - before == 4
    dead_url = f"http://127.0.0.1:{stopped.port}"
    assert not any(w["url"] == dead_url and w.get("is_healthy")
                   for w in router_workers(router.port))
