"""The thought viewer (``/``) in a real headless Chromium against the suite's server.

The page builds its form from the server's schema, streams a request and draws it: what it
draws is compared with the same request made by the ``openai`` client (seeded, greedy
answer, so it repeats exactly) and with the model's tokenizer. Stop must abort the request
in the engine (seen in ``/metrics``); the server's errors must show where they belong.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from metrics_scrape import scrape
from selenium.webdriver.common.by import By
from sglang_soft_thinking.methods import NAMES, REGISTRY
from sglang_soft_thinking.params import SoftThinkingParams
from viewer_page import ViewerPage, chromium, visible

PROMPT = "What is 12 + 7?"
REQUEST = {"max_tokens": 24, "temperature": 0.7, "seed": 11}
SOFT = {"max_topk": 5, "max_thinking_tokens": 6, "after_thinking": {"temperature": 0}}
REPLACEMENT = "\ufffd"


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser, server) -> ViewerPage:
    page = ViewerPage(browser, server.base_url.removesuffix("/v1"))
    page.open(server.api_key)
    return page


def post(server, body: dict, api_key: str | None = None) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {api_key or server.api_key}"})


@pytest.fixture(scope="module")
def reference(server, openai_client, model_name):
    """The request the page will send, made by the openai client, its prompt cached first
    (the page's request finds it cached too, so both round alike)."""
    messages = [{"role": "user", "content": PROMPT}]
    openai_client.chat.completions.create(model=model_name, messages=messages, max_tokens=1)
    return openai_client.chat.completions.create(
        model=model_name, messages=messages, **REQUEST,
        extra_body={"soft_thinking": {**SOFT, "return_trace": True}})


def test_page_draws_the_thought_as_the_openai_client_sees_it(page, reference, tokenizer, tmp_path):
    choice = reference.choices[0]
    summary = choice.model_extra["soft_thinking"]
    trace = summary["trace"]
    assert summary["end_reason"] == "budget" and len(trace) == SOFT["max_thinking_tokens"]
    # The token each step wrote, read back independently: they are the reasoning's text.
    assert tokenizer.decode([e["token"] for e in trace], skip_special_tokens=True) == \
        choice.message.reasoning_content

    page.set_prompt(PROMPT)
    page.fill(**{k: v for k, v in REQUEST.items()}, soft_thinking__max_topk=SOFT["max_topk"],
              soft_thinking__max_thinking_tokens=SOFT["max_thinking_tokens"],
              soft_thinking__after_thinking__temperature=0)
    page.send()
    page.wait(lambda _: len(page.steps()) >= 1, 60)
    assert page.wait_state("finished", "error", "stopped") == "finished", page.text("#live .run")
    page.driver.save_screenshot(str(tmp_path / "viewer.png"))
    assert (tmp_path / "viewer.png").stat().st_size > 10_000

    columns = page.steps()
    assert len(columns) == len(trace)
    for column, entry in zip(columns, trace):
        cells = column.find_elements(By.CSS_SELECTOR, ".cand")
        assert [int(c.get_attribute("data-id")) for c in cells] == entry["ids"]
        assert [float(c.get_attribute("data-weight")) for c in cells] == \
            pytest.approx(entry["weights"], abs=1e-5)
        for cell, token_id in zip(cells, entry["ids"]):
            shown = cell.find_element(By.CSS_SELECTOR, ".tok").get_attribute("textContent")
            decoded = tokenizer.decode([token_id])
            assert shown == (visible(decoded) if REPLACEMENT not in decoded else shown) != ""
            assert REPLACEMENT not in shown
        written = column.find_element(By.CSS_SELECTOR, ".written")
        assert int(written.get_attribute("data-id")) == entry["token"]
        assert written.get_attribute("textContent") == visible(tokenizer.decode([entry["token"]]))
        assert column.get_attribute("data-kind") == ("discrete" if len(entry["ids"]) == 1 else "latent")

    # The entropy line: one point per step, each the step's entropy; the Cold Stop
    # threshold (the default 0.01); where thinking ended and why.
    points = page.driver.find_element(By.CSS_SELECTOR, "#live polyline.entropy").get_attribute("points")
    assert len(points.split()) == len(trace)
    titles = [t.get_attribute("textContent") for t in
              page.driver.find_elements(By.CSS_SELECTOR, "#live .entropy-chart .dot title")]
    drawn = [float(re.search(r": ([0-9.]+) nats", t).group(1)) for t in titles]
    assert drawn == pytest.approx([e["entropy"] for e in trace], abs=1e-3)
    assert page.driver.find_elements(By.CSS_SELECTOR, "#live .entropy-chart line.threshold")
    end = page.driver.find_element(By.CSS_SELECTOR, "#live .entropy-chart g.end")
    assert end.get_attribute("data-end-reason") == "budget"

    assert page.text("#live pre.reasoning") == choice.message.reasoning_content
    assert page.text("#live pre.answer") == choice.message.content
    usage = reference.usage
    assert page.text("#live .usage") == (
        f"usage: prompt {usage.prompt_tokens} · completion {usage.completion_tokens} "
        f"(reasoning {usage.completion_tokens_details.reasoning_tokens}) · total {usage.total_tokens}")

    page.driver.find_element(By.ID, "pin").click()
    pinned = page.driver.find_elements(By.CSS_SELECTOR, "#pinned .run")
    assert len(pinned) == 1 and not page.driver.find_elements(By.CSS_SELECTOR, "#live .run")
    assert len(pinned[0].find_elements(By.CSS_SELECTOR, ".grid .step")) == len(trace)


def test_form_shows_each_methods_parameters_from_the_schema(page):
    own = {name for method in REGISTRY if method.Params for name in method.Params.model_fields}
    shown_by_page = ("return Array.from(document.querySelectorAll('#soft-fields [data-field]'))"
                     ".filter(n => !n.hidden).map(n => n.dataset.field)")
    for method in REGISTRY:
        page.fill(soft_thinking__method=method.name)
        expected = {f"soft_thinking.{name}" for name in SoftThinkingParams.model_fields
                    if name not in ("enabled", "return_trace")
                    and (name not in own or (method.Params and name in method.Params.model_fields))
                    and (name != "noise" or method.accepts_noise)}
        assert set(page.driver.execute_script(shown_by_page)) == expected, method.name
    assert [o.get_attribute("value") for o in page.field("soft_thinking.method")
            .find_elements(By.TAG_NAME, "option")] == list(NAMES)


def test_stop_aborts_the_request_in_the_engine(page, server):
    before = scrape(server)
    page.set_prompt("Tell me a long story about a dragon who learns to fly.")
    page.fill(max_tokens=1500, seed=3, soft_thinking__early_stopping_entropy_threshold=0)
    page.send()
    page.wait(lambda _: len(page.steps()) >= 3, 60)
    assert scrape(server).value("softthink_in_flight_requests") == 1
    page.stop()
    assert page.wait_state("stopped", "finished", "error", timeout=10) == "stopped"
    deadline = time.monotonic() + 30
    while True:
        now = scrape(server)
        counts = [now.value(f"softthink_{name}_requests") for name in ("in_flight", "running", "queued")]
        if counts == [0, 0, 0] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counts == [0, 0, 0], "the engine still runs the stopped request"
    # It never finished: no choice was counted, its 1,500 tokens were not generated.
    finished = "softthink_e2e_request_latency_seconds_count"
    assert now.value(finished) == before.value(finished)
    assert now.value("softthink_requests_total", route="/v1/chat/completions", status="200") == \
        before.value("softthink_requests_total", route="/v1/chat/completions", status="200") + 1


@pytest.mark.parametrize("param, value, body", [
    ("soft_thinking.max_topk", "999", {"temperature": 0.6, "soft_thinking": {"max_topk": 999}}),
    ("temperature", "0", {"temperature": 0, "soft_thinking": {}}),
])
def test_bad_parameter_shows_the_servers_message_on_its_field(page, server, param, value, body):
    answer = post(server, {"messages": [{"role": "user", "content": "hi"}], **body})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    message = answer.json()["error"]["message"]
    page.fill(**{param.replace(".", "__"): value})
    page.send()
    assert page.wait_state("error", "finished", timeout=30) == "error"
    assert page.error_on(param) == message
    assert "invalid" in page.field(param).get_attribute("class")
    assert page.text("#banner") == f"400: {message}"


def test_wrong_key_shows_the_401(page, server):
    answer = post(server, {"messages": [{"role": "user", "content": "hi"}]}, api_key="wrong-key")
    assert answer.status_code == 401
    page.set_key("wrong-key")
    page.send()
    assert page.wait_state("error", "finished", timeout=30) == "error"
    assert page.text("#banner") == f"401: {answer.json()['error']['message']}"
    assert "invalid" in page.field("api_key").get_attribute("class")


def test_trace_names_the_token_each_multiplex_step_wrote(openai_client, model_name, tokenizer):
    """The grid frames each step's written token from the trace's ``token``: for multiplex
    it is the first draw, which another draw may outweigh, so it is not always ``ids[0]``."""
    soft = {"method": "multiplex", "width": 3, "max_topk": 5, "max_thinking_tokens": 6,
            "return_trace": True}
    choice = openai_client.chat.completions.create(
        model=model_name, messages=[{"role": "user", "content": PROMPT}], max_tokens=10,
        temperature=0.9, seed=2, extra_body={"soft_thinking": soft}).choices[0]
    trace = choice.model_extra["soft_thinking"]["trace"]
    assert len(trace) == soft["max_thinking_tokens"]
    assert all(entry["token"] in entry["ids"] for entry in trace)
    assert tokenizer.decode([e["token"] for e in trace], skip_special_tokens=True) == \
        choice.message.reasoning_content
