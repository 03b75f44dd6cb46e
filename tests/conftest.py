"""Shared fixtures: the real server, started once per test session, and an OpenAI client for it.

``SOFTTHINK_TEST_MODEL_PATH`` serves another local model folder instead of the default one.
"""

from __future__ import annotations

import pytest

from server_process import TEST_KV_TOKENS, model_path, serving


@pytest.fixture(scope="session")
def server():
    """``python -m server`` on a free port with an API key; stopped at the end of the session."""
    # float32 like the transformers reference the soft-thinking traces are compared with
    # (see tests/integration/test_soft_thinking.py).
    with serving("--max-total-tokens", str(TEST_KV_TOKENS), "--dtype", "float32",
                 name="server", api_key="test-key") as proc:
        yield proc


@pytest.fixture(scope="session")
def stock_server():
    """Stock ``python -m sglang.launch_server`` + plugin in float32 with SGLang's defaults
    otherwise; shared by the modules that check the stock server and its default mode."""
    with serving("--max-total-tokens", "16384", "--dtype", "float32", name="stock", stock=True) as proc:
        yield proc


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
