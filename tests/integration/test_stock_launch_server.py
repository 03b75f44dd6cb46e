"""Stock ``python -m sglang.launch_server`` works with our package installed, with no extra flags.

The package's start-up hook and plugin make SGLang's CPU path work on a machine without
CUDA; this checks it from the outside, through the stock OpenAI endpoint.
"""

from __future__ import annotations

import sys

import openai
import pytest

from server_process import free_port, model_path, start_process

PROMPT = [{"role": "user", "content": "Name a fruit."}]


@pytest.fixture(scope="module")
def stock_server():
    port = free_port()
    args = [sys.executable, "-m", "sglang.launch_server", "--model-path", str(model_path()),
            "--max-total-tokens", "16384", "--port", str(port)]
    proc = start_process(args, port, "stock")
    try:
        proc.wait_healthy("/health")
        yield proc
    finally:
        proc.stop()


def test_stock_server_answers_a_greedy_chat(stock_server, openai_client, model_name):
    stock = openai.OpenAI(base_url=stock_server.base_url, api_key="none", max_retries=0,
                          timeout=300)
    stock_model = stock.models.list().data[0].id
    response = stock.chat.completions.create(model=stock_model, messages=PROMPT,
                                             max_tokens=16, temperature=0)
    choice = response.choices[0]
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert response.usage.completion_tokens <= 16
    # Same engine, same model, same greedy request: our server gives the same answer.
    ours = openai_client.chat.completions.create(model=model_name, messages=PROMPT,
                                                 max_tokens=16, temperature=0)
    assert ours.choices[0].message.content == choice.message.content
