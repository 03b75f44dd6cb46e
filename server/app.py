"""The FastAPI app: OpenAI routes over an :class:`~server.engine.EngineHandle` in ``app.state``.

Each route validates its body, builds a :class:`~server.engine.GenerationJob`, and returns
JSON or a stream; every error goes through :mod:`server.errors`. With an API key, every
route but ``/health`` and the thought viewer's page and files (:mod:`server.viewer`) needs
it (``/metrics`` included: scrapers send it as a bearer token). Bodies over
``--max-request-bytes`` are refused (:mod:`server.body_limit`); finished requests and every
response's status feed ``/metrics`` (:mod:`server.metrics`).
"""

from __future__ import annotations

import json
import secrets
import time
from functools import partial
from typing import Callable

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, ValidationError

from server.body_limit import BodySizeLimit
from server.engine import EngineHandle, GenerationJob, build_sampling_params
from server.errors import APIError, from_validation_error, install_handlers, invalid_request
from server.metrics import CONTENT_TYPE, RequestCounter, ServerMetrics
from server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
    SamplingFields,
)
from server.results import ChoiceResult, chat_completion, choice_result, text_completion
from server.settings import ServerSettings
from server.soft_thinking import (
    check_defaults_servable,
    load_defaults,
    parse_soft_thinking,
    refuse_if_off,
)
from server.softcot import SoftCoTService
from server.softcot import requested as softcot_requested
from server.streaming import chat_events, completion_events, streaming_response
from server.think_markers import prompt_text
from server.viewer import api_routes as viewer_api_routes
from server.viewer import mount_page


def create_app(engine_handle: EngineHandle, settings: ServerSettings,
               softcot: SoftCoTService | None = None) -> FastAPI:
    app = FastAPI(title="soft-thinking server", docs_url=None, redoc_url=None)
    app.state.engine = engine_handle
    app.state.softcot = softcot
    app.state.settings = settings
    app.state.default_soft_thinking = defaults = load_defaults(settings.soft_thinking)
    check_defaults_servable(settings.soft_thinking, defaults, engine_handle.soft_thinking_off)
    app.state.created = int(time.time())
    app.state.metrics = metrics = ServerMetrics()
    install_handlers(app)
    app.include_router(_openai_routes())
    app.include_router(viewer_api_routes(), prefix="/v1", dependencies=[Depends(_check_api_key)])
    mount_page(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestCounter, metrics=metrics)  # outermost: sees every status

    @app.get("/health")
    async def health(request: Request) -> dict:
        handle: EngineHandle = request.app.state.engine
        return {"status": "ok", "model": handle.model_name,
                "num_running_requests": handle.num_running_requests}

    # What sglang-router asks a worker for when it registers it (and what shows, to anyone
    # holding the key, which settings the engine runs with).
    @app.get("/server_info", dependencies=[Depends(_check_api_key)])
    async def server_info(request: Request) -> dict:
        settings: ServerSettings = request.app.state.settings
        info = request.app.state.engine.server_info()
        return info | {"host": settings.host, "port": settings.port}

    @app.get("/model_info", dependencies=[Depends(_check_api_key)])
    async def model_info(request: Request) -> dict:
        return request.app.state.engine.model_info()

    @app.get("/metrics", dependencies=[Depends(_check_api_key)])
    async def prometheus_metrics(request: Request) -> Response:
        handle: EngineHandle = request.app.state.engine
        running, queued = await handle.load()
        metrics.set_load(running, queued, handle.num_running_requests)
        return Response(content=metrics.render(), media_type=CONTENT_TYPE)

    return app


async def _check_api_key(request: Request) -> None:
    api_key = request.app.state.settings.api_key
    if api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), api_key):
        raise APIError(401, "a valid API key is required: 'Authorization: Bearer KEY'",
                       code="invalid_api_key")


def _openai_routes() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(_check_api_key)])

    @router.get("/models")
    async def list_models(request: Request) -> Response:
        handle: EngineHandle = request.app.state.engine
        settings: ServerSettings = request.app.state.settings
        card = ModelCard(id=handle.model_name, created=request.app.state.created,
                         root=str(settings.resolved_model_path()),
                         max_model_len=handle.context_len)
        return _json(ModelList(data=[card]))

    @router.post("/chat/completions")
    async def chat_completions(request: Request) -> Response:
        arrival = time.perf_counter()
        body = await _parse_body(request, ChatCompletionRequest)
        handle: EngineHandle = request.app.state.engine
        if body.top_logprobs is not None and not body.logprobs:
            raise invalid_request("top_logprobs: requires logprobs: true", "top_logprobs")
        messages = [m.as_template_input() for m in body.messages]
        softcot: SoftCoTService | None = request.app.state.softcot
        if is_softcot := softcot_requested(body, softcot, endpoint_is_chat=True):
            messages, question = softcot.base_messages(messages)
        prompt = handle.chat_input_ids(messages, body.chat_template_kwargs)
        job = _job(request, body, [prompt], "messages", arrival)
        if job.soft is not None:
            _refuse_closed_thinking(handle, prompt)
        if is_softcot:
            job.embed_overrides = [await softcot.overrides(question, prompt)]
        if body.stream:
            return await streaming_response(chat_events(
                handle, job, handle.model_name, body.include_usage, _observer(request, job),
                request.app.state.metrics.observe_error))
        results = await _generate(request, job)
        response = chat_completion(job, handle.model_name, results, handle.tokenizer,
                                   handle.think_markers)
        _observer(request, job)(results)  # after the split, which counts reasoning tokens
        return _json(response)

    @router.post("/completions")
    async def completions(request: Request) -> Response:
        arrival = time.perf_counter()
        body = await _parse_body(request, CompletionRequest)
        handle: EngineHandle = request.app.state.engine
        if body.echo:
            raise invalid_request("echo: not supported by this server", "echo")
        softcot_requested(body, request.app.state.softcot, endpoint_is_chat=False)
        job = _job(request, body, handle.text_input_ids(body.prompt), "prompt", arrival)
        if body.stream:
            return await streaming_response(completion_events(
                handle, job, handle.model_name, body.include_usage, _observer(request, job),
                request.app.state.metrics.observe_error))
        results = await _generate(request, job)
        _observer(request, job)(results)
        return _json(text_completion(job, handle.model_name, results))

    return router


async def _parse_body(request: Request, model: type[BaseModel]):
    """The validated body; a request for another model than ours is a 404."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid_request(f"the request body is not valid JSON: {error}") from None
    try:
        parsed = model.model_validate(body)
    except ValidationError as error:
        raise from_validation_error(error) from None
    handle: EngineHandle = request.app.state.engine
    settings: ServerSettings = request.app.state.settings
    if parsed.model not in (None, handle.model_name, str(settings.resolved_model_path())):
        raise APIError(404, f"model: '{parsed.model}' does not exist; this server serves "
                       f"'{handle.model_name}'", param="model", code="model_not_found")
    return parsed


async def _generate(request: Request, job: GenerationJob) -> list[ChoiceResult]:
    """Run a job to the end (not streamed)."""
    handle: EngineHandle = request.app.state.engine
    outputs = await handle.generate(job)
    return [choice_result(job, i, output, handle.token_text) for i, output in enumerate(outputs)]


def _observer(request: Request, job: GenerationJob) -> Callable[[list[ChoiceResult]], None]:
    """What counts a job's finished choices in the metrics."""
    metrics: ServerMetrics = request.app.state.metrics
    return partial(metrics.observe_choices, n=job.n)


def _refuse_closed_thinking(handle: EngineHandle, prompt: list[int]) -> None:
    """A soft-thinking request needs a prompt that leaves thinking to the model: one whose
    template closed it (an empty think block) would have the engine think over the answer."""
    markers = handle.think_markers
    if markers is not None and markers.closed_by(prompt_text(handle.tokenizer, prompt)):
        raise invalid_request(
            f"soft_thinking: the chat template closed thinking in the prompt (it ends with "
            f"{markers.end!r}, as with chat_template_kwargs enable_thinking false); let the "
            f"model think, or send soft_thinking.enabled false", "soft_thinking")


def _job(request: Request, body: SamplingFields, prompts: list[list[int]],
         prompt_field: str, arrival: float) -> GenerationJob:
    """Check soft-thinking parameters and lengths; build the engine job."""
    handle: EngineHandle = request.app.state.engine
    _reject_unsupported(body)
    soft = parse_soft_thinking(body, request.app.state.default_soft_thinking)
    refuse_if_off(soft, handle.soft_thinking_off)
    top_logprobs = body.num_top_logprobs
    if soft is not None and top_logprobs is not None:
        raise invalid_request("logprobs: not available with soft thinking (a concept token "
                              "is not one sampled token; use soft_thinking.return_trace)",
                              "logprobs")
    max_tokens_field = "max_tokens"
    if getattr(body, "max_completion_tokens", None) is not None:
        max_tokens_field = "max_completion_tokens"
    max_new_tokens = min(handle.max_new_tokens(ids, body.max_new_tokens, prompt_field,
                                               max_tokens_field) for ids in prompts)
    return GenerationJob(prompts=prompts, n=body.n, soft=soft, seed=body.seed,
                         top_logprobs=top_logprobs, arrival=arrival,
                         sampling_params=build_sampling_params(body, soft, max_new_tokens))


def _reject_unsupported(body: SamplingFields) -> None:
    """Fields that would change the answer if honoured: say so instead of ignoring them."""
    extra = body.model_extra or {}
    if extra.get("tools"):
        raise invalid_request("tools: not supported by this server", "tools")
    response_format = extra.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise invalid_request("response_format: only 'text' is supported", "response_format")


def _json(payload) -> Response:
    return Response(content=payload.to_json_str(), media_type="application/json")
