"""Server-sent events for ``stream: true``: chat and text completion chunks, then ``[DONE]``.

The engine's outputs are cumulative; each chunk carries the text added since the last
one. Soft-thinking chat streams send ``reasoning_content`` deltas until the think-end
string, then ``content`` deltas (see :class:`server.soft_thinking.ReasoningSplitter`).
The final chunk of each choice has its ``finish_reason`` (and ``soft_thinking``); with
``stream_options.include_usage`` a last chunk carries the usage.

An error before the first chunk is raised (the route answers with its status code);
after it, the error is sent as an event. Closing a stream aborts its engine requests.
"""

from __future__ import annotations

import json
import time
from contextlib import aclosing
from typing import AsyncIterator, Callable

from fastapi.responses import StreamingResponse

from server.engine import EngineHandle, GenerationJob
from server.errors import APIError
from server.protocol import (
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatDelta,
    Completion,
    CompletionChoice,
    Usage,
)
from server.results import ChoiceResult, choice_result, usage_of
from server.soft_thinking import ReasoningSplitter

DONE = "data: [DONE]\n\n"


def sse(payload) -> str:
    return f"data: {payload.to_json_str()}\n\n"


async def _deltas(handle: EngineHandle, job: GenerationJob
                  ) -> AsyncIterator[tuple[int, str, ChoiceResult | None]]:
    """``(index, new_text, result)``; ``result`` is set on a choice's last output."""
    sent = [0] * job.num_choices
    async with aclosing(handle.stream(job)) as outputs:
        async for index, output in outputs:
            text = output.get("text") or ""
            delta, sent[index] = text[sent[index]:], len(text)
            is_finished = output["meta_info"].get("finish_reason") is not None
            yield index, delta, choice_result(job, index, output) if is_finished else None


async def _with_usage_and_errors(events: AsyncIterator[str], results: list[ChoiceResult],
                                 job: GenerationJob, usage_chunk: Callable[[Usage], str] | None
                                 ) -> AsyncIterator[str]:
    has_sent = False
    try:
        async for event in events:
            has_sent = True
            yield event
    except APIError as error:
        if not has_sent:
            raise
        yield f"data: {json.dumps(error.to_json())}\n\n"
        yield DONE
        return
    if usage_chunk is not None:
        yield usage_chunk(usage_of(job, sorted(results, key=lambda r: r.index)))
    yield DONE


def chat_events(handle: EngineHandle, job: GenerationJob, model: str,
                include_usage: bool) -> AsyncIterator[str]:
    created, chunk_id = int(time.time()), f"chatcmpl-{job.rid}"
    results: list[ChoiceResult] = []
    splitters = {}
    if job.soft is not None:
        is_one_token = handle.is_one_token(job.soft.think_end_str)
        splitters = {i: ReasoningSplitter(job.soft.think_end_str, is_one_token)
                     for i in range(job.num_choices)}

    def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> str:
        return sse(ChatCompletionChunk(id=chunk_id, created=created, model=model,
                                       choices=choices, usage=usage))

    async def events() -> AsyncIterator[str]:
        has_role = [False] * job.num_choices
        async for index, delta, result in _deltas(handle, job):
            reasoning, content = "", delta
            if splitters:
                reasoning, content = splitters[index].feed(delta)
                if result is not None:
                    tail_reasoning, tail_content = splitters[index].finish()
                    reasoning, content = reasoning + tail_reasoning, content + tail_content
            if result is None and not (reasoning or content or not has_role[index]):
                continue
            choice = ChatChunkChoice(
                index=index,
                delta=ChatDelta(role=None if has_role[index] else "assistant",
                                content=content or None, reasoning_content=reasoning or None))
            has_role[index] = True
            if result is not None:
                results.append(result)
                choice.finish_reason = result.finish_reason
                choice.soft_thinking = result.soft_json()
            yield chunk([choice])

    usage_chunk = (lambda usage: chunk([], usage)) if include_usage else None
    return _with_usage_and_errors(events(), results, job, usage_chunk)


def completion_events(handle: EngineHandle, job: GenerationJob, model: str,
                      include_usage: bool) -> AsyncIterator[str]:
    created, chunk_id = int(time.time()), f"cmpl-{job.rid}"
    results: list[ChoiceResult] = []

    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> str:
        return sse(Completion(id=chunk_id, created=created, model=model,
                              choices=choices, usage=usage))

    async def events() -> AsyncIterator[str]:
        async for index, delta, result in _deltas(handle, job):
            if result is None and not delta:
                continue
            choice = CompletionChoice(index=index, text=delta)
            if result is not None:
                results.append(result)
                choice.finish_reason = result.finish_reason
                choice.soft_thinking = result.soft_json()
            yield chunk([choice])

    usage_chunk = (lambda usage: chunk([], usage)) if include_usage else None
    return _with_usage_and_errors(events(), results, job, usage_chunk)


async def streaming_response(events: AsyncIterator[str]) -> StreamingResponse:
    """Wait for the first event, so an early error still gets its own status code."""
    try:
        first = await events.__anext__()
    except BaseException:
        await events.aclose()
        raise

    async def body() -> AsyncIterator[str]:
        try:
            yield first
            async for event in events:
                yield event
        finally:
            await events.aclose()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
