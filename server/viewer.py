"""The thought viewer: a page at ``/`` that streams a soft-thinking request and draws it.

The page (``server/static/``: plain HTML, CSS and JavaScript, nothing fetched from
elsewhere) is served without the API key, as it holds no data; it asks the person for the
key and sends it with its API calls. It reads two routes of its own, under ``/v1`` with
the other API routes (and so behind the key):

* ``GET /v1/soft_thinking/schema``: the JSON schema of the ``soft_thinking`` object (the
  validated :class:`SoftThinkingParams`), from which the page builds its form. Each
  property that only some methods read says which, as ``"x-methods": [...]`` (a method's
  own parameters, and ``noise`` for the methods that accept it); ``"x-method-papers"``
  names each method's source. A new method or parameter appears in the form unasked.
* ``POST /v1/soft_thinking/tokens`` with ``{"ids": [...]}``: each token's readable text
  (:mod:`server.token_texts`), for the grid of a trace's candidate tokens.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.params import SoftThinkingParams

from server.errors import from_validation_error, invalid_request
from server.token_texts import TokenTexts

STATIC_DIR = Path(__file__).with_name("static")
MAX_TOKEN_IDS = 4096  # ids per token-text request (a long trace's new candidates fit many times)


class TokenTextsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(max_length=MAX_TOKEN_IDS)


def soft_thinking_schema() -> dict:
    """The ``soft_thinking`` object's JSON schema, each method-specific property marked."""
    schema = SoftThinkingParams.model_json_schema()
    properties = schema["properties"]
    for method in REGISTRY:
        for name in method.Params.model_fields if method.Params is not None else ():
            properties[name].setdefault("x-methods", []).append(method.name)
    properties["noise"]["x-methods"] = [m.name for m in REGISTRY if m.accepts_noise]
    schema["x-method-papers"] = {m.name: m.paper for m in REGISTRY}
    return schema


def api_routes() -> APIRouter:
    """The page's API routes (the caller mounts them under ``/v1``, behind the key)."""
    router = APIRouter()
    schema = soft_thinking_schema()

    @router.get("/soft_thinking/schema")
    async def soft_thinking_schema_route() -> dict:
        return schema

    @router.post("/soft_thinking/tokens")
    async def token_texts(request: Request) -> dict:
        try:
            body = TokenTextsRequest.model_validate_json(await request.body())
        except ValidationError as error:
            raise from_validation_error(error) from None
        texts = _token_texts(request)
        outside = [i for i in body.ids if not 0 <= i < texts.vocab_size]
        if outside:
            raise invalid_request(f"ids: {outside[0]} is not a token id of this model "
                                  f"(0 to {texts.vocab_size - 1})", "ids")
        return {"tokens": [texts.text(i) for i in body.ids]}

    return router


def mount_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/viewer/``."""
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html")

    app.mount("/viewer", StaticFiles(directory=STATIC_DIR), name="viewer")


def _token_texts(request: Request) -> TokenTexts:
    """The app's one :class:`TokenTexts`, made on first use from the model's tokenizer."""
    state = request.app.state
    if getattr(state, "token_texts", None) is None:
        state.token_texts = TokenTexts(state.engine.tokenizer)
    return state.token_texts
