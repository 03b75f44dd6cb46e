"""The thought viewer's routes without an engine: the page and its files, the parameter
schema it builds its form from, and token texts from the default model's tokenizer."""

from __future__ import annotations

import codecs
import re
import tomllib
from fnmatch import fnmatch
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.params import SoftThinkingParams
from transformers import AutoTokenizer

from server.errors import install_handlers
from server.viewer import STATIC_DIR, api_routes, mount_page
from server_process import REPO_ROOT, model_path


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(model_path())


@pytest.fixture(scope="module")
def client(tokenizer) -> TestClient:
    app = FastAPI()
    install_handlers(app)
    app.state.engine = SimpleNamespace(tokenizer=tokenizer)  # all the routes read of it
    app.include_router(api_routes(), prefix="/v1")
    mount_page(app)
    return TestClient(app)


def test_page_and_its_files_are_served_and_packaged(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    files = sorted(p.name for p in STATIC_DIR.iterdir())
    for name in re.findall(r'(?:href|src)="viewer/([^"]+)"', page.text) + ["form.js", "run.js"]:
        assert name in files and client.get(f"/viewer/{name}").status_code == 200, name
    # Nothing fetched from elsewhere at run time.
    for name in files:
        assert not re.search(r"https?://", (STATIC_DIR / name).read_text().replace(
            "http://www.w3.org/2000/svg", "")), name
    globs = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["server"]
    assert all(any(fnmatch(f"static/{name}", glob) for glob in globs) for name in files)


def test_schema_is_the_models_with_each_methods_own_fields_marked(client):
    schema = client.get("/v1/soft_thinking/schema").json()
    assert set(schema["properties"]) == set(SoftThinkingParams.model_fields)
    assert schema["properties"]["method"]["enum"] == [m.name for m in REGISTRY]
    for method in REGISTRY:
        for name in method.Params.model_fields if method.Params else ():
            assert schema["properties"][name]["x-methods"] == [method.name]
    assert schema["properties"]["noise"]["x-methods"] == [m.name for m in REGISTRY if m.accepts_noise]
    assert "x-methods" not in schema["properties"]["max_topk"]
    assert set(schema["x-method-papers"]) == {m.name for m in REGISTRY}


def test_token_texts_are_readable_and_keep_every_byte(client, tokenizer):
    text = "日本語 ✓ naïve\n🙂 the"
    ids = tokenizer.encode(text, add_special_tokens=False)
    shown = client.post("/v1/soft_thinking/tokens", json={"ids": ids}).json()["tokens"]
    assert len(shown) == len(ids) and "\ufffd" not in "".join(shown)
    assert any("\\x" in s for s in shown), "the text has tokens that are parts of characters"
    # Whole tokens read as they decode; the others show their bytes, which add up.
    for token_id, one in zip(ids, shown):
        if "\ufffd" not in tokenizer.decode([token_id]):
            assert one == tokenizer.decode([token_id])
    assert b"".join(codecs.escape_decode(s.encode("utf-8"))[0] for s in shown) == text.encode("utf-8")


def test_token_ids_outside_the_vocabulary_are_a_400_naming_ids(client, tokenizer):
    answer = client.post("/v1/soft_thinking/tokens", json={"ids": [1, len(tokenizer)]})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "ids"
    assert str(len(tokenizer)) in answer.json()["error"]["message"]
    assert client.post("/v1/soft_thinking/tokens", json={"ids": "x"}).json()["error"]["param"] == "ids"
