"""Logprob shapes, the body-size limit and the metrics' arithmetic, without an engine."""

from __future__ import annotations

import math

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sglang_soft_thinking.output import SoftThinkingSummary

from server.body_limit import BodySizeLimit
from server.errors import install_handlers
from server.logprobs import MIN_LOGPROB, chat_logprobs, completion_logprobs, token_logprobs
from server.metrics import ServerMetrics
from server.results import ChoiceResult

TEXTS = {5: "Hel", 6: "lo", 7: " world", 8: "!"}


def meta_with(tokens: list[tuple[float, int]], tops: list[list[tuple[float, int]]],
              length: int | None = None) -> dict:
    meta = {"output_token_logprobs": [(lp, tid, None) for lp, tid in tokens],
            "output_top_logprobs": [[(lp, tid, None) for lp, tid in top] for top in tops]}
    if length is not None:
        meta["output_token_logprobs_length"] = length
    return meta


def test_token_logprobs_read_from_start_to_the_recorded_length():
    meta = meta_with([(-0.1, 5), (-0.2, 6), (-0.3, 7)], [[(-0.1, 5)], [(-0.2, 6)], [(-0.3, 7)]],
                     length=2)  # a third token was appended after this output was made
    entries = token_logprobs(meta, 1, TEXTS.__getitem__)
    assert [(e.token, e.logprob, e.top) for e in entries] == [("lo", -0.2, [("lo", -0.2)])]


def test_impossible_tokens_get_a_finite_logprob():
    meta = meta_with([(-math.inf, 8)], [[(-0.5, 7), (-math.inf, 8)]])
    entry = token_logprobs(meta, 0, TEXTS.__getitem__)[0]
    assert entry.logprob == MIN_LOGPROB and entry.top == [(" world", -0.5), ("!", MIN_LOGPROB)]


def test_openai_shapes():
    entries = token_logprobs(meta_with([(-0.1, 5), (-0.7, 6)], [[(-0.1, 5), (-2.0, 8)], []]),
                             0, TEXTS.__getitem__)
    text = completion_logprobs(entries, text_offset=10)
    assert text.tokens == ["Hel", "lo"] and text.token_logprobs == [-0.1, -0.7]
    assert text.top_logprobs == [{"Hel": -0.1, "!": -2.0}, {}]
    assert text.text_offset == [10, 13]
    chat = chat_logprobs(entries).model_dump()["content"]
    assert chat[0]["bytes"] == list(b"Hel") and chat[0]["top_logprobs"][1]["token"] == "!"
    assert chat[1]["top_logprobs"] == []


@pytest.fixture
def limited_client() -> TestClient:
    app = FastAPI()
    install_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"size": len(await request.body())}

    app.add_middleware(BodySizeLimit, max_bytes=1024)
    return TestClient(app)


def test_body_at_the_limit_passes(limited_client):
    response = limited_client.post("/echo", content=b"x" * 1024)
    assert response.status_code == 200 and response.json() == {"size": 1024}


def test_declared_length_over_the_limit_is_refused(limited_client):
    response = limited_client.post("/echo", content=b"x" * 1025)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_chunked_body_over_the_limit_is_refused(limited_client):
    response = limited_client.post("/echo", content=(b"x" * 300 for _ in range(4)))
    assert response.status_code == 413
    assert "1024 bytes" in response.json()["error"]["message"]


def test_metrics_count_each_prompt_once_and_derive_tpot():
    metrics = ServerMetrics()
    soft = SoftThinkingSummary(thinking_tokens=7, end_reason="cold_stop")
    results = [ChoiceResult(0, "a", "length", 10, 5, soft, concept_steps=4, latency_s=2.0,
                            first_token_s=1.0),
               ChoiceResult(1, "b", "length", 10, 3, None, latency_s=3.0)]
    metrics.observe_choices(results, n=2)
    registry = metrics.registry
    assert registry.get_sample_value("softthink_prompt_tokens_total") == 10
    assert registry.get_sample_value("softthink_completion_tokens_total") == 8
    assert registry.get_sample_value("softthink_thinking_tokens_total") == 7
    assert registry.get_sample_value("softthink_concept_token_steps_total") == 4
    assert registry.get_sample_value("softthink_cold_stops_total") == 1
    assert registry.get_sample_value("softthink_e2e_request_latency_seconds_count") == 2
    assert registry.get_sample_value("softthink_time_to_first_token_seconds_sum") == 1.0
    assert registry.get_sample_value("softthink_time_per_output_token_seconds_sum") == 0.25
