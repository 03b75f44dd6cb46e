"""Shared fixtures: the real server, started once per test session, and an OpenAI client for it.

``SOFTTHINK_TEST_MODEL_PATH`` serves another local model folder instead of the default one.
"""

from __future__ import annotations

import sys

import pytest

from server_process import TEST_KV_TOKENS, free_port, model_path, start_process


@pytest.fixture(scope="session")
def server():
    """``python -m server`` on a free port with an API key; stopped at the end of the session."""
    port, api_key = free_port(), "test-key"
    args = [sys.executable, "-m", "server", "--port", str(port), "--api-key", api_key,
            "--max-total-tokens", str(TEST_KV_TOKENS), "--model-path", str(model_path()),
            # float32 like the transformers reference the soft-thinking traces are compared with
            # (see tests/integration/test_soft_thinking.py).
            "--dtype", "float32"]
    proc = start_process(args, port, "server", api_key)
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def openai_client(server):
    import openai

    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0,
                         timeout=300)


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path())


@pytest.fixture(scope="session")
def model_name(openai_client) -> str:
    return openai_client.models.list().data[0].id
