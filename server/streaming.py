"""Server-sent events for ``stream: true``: chat and text completion chunks, then ``[DONE]``.

The engine's outputs are cumulative; each chunk carries the text added since the last
one. A chat choice that thinks (soft thinking, or a model with think markers) sends
``reasoning_content`` deltas as its thinking tokens come, then ``content`` deltas: the
split follows its tokens, as for a whole response (:mod:`server.reasoning`).
The final chunk of each choice has its ``finish_reason`` (and ``soft_thinking``, its
summary); with ``return_trace`` each earlier chunk that adds concept-token steps carries
their trace entries as ``soft_thinking.trace`` (each naming the token its step wrote), so a
client can draw the thought as it forms. With ``stream_options.include_usage`` a last chunk carries the usage.

An error before the first chunk is raised (the route answers with its status code);
after it, the error is sent as an event. Closing a stream aborts its engine requests.
With logprobs asked for, each chunk carries those of the tokens it adds. ``on_done``
receives the finished choices once a stream has sent them all (for the metrics).
"""

from __future__ import annotations

import json
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from fastapi.responses import StreamingResponse

from server.engine import EngineHandle, GenerationJob
from server.errors import APIError
from server.logprobs import TokenLogprob, chat_logprobs, completion_logprobs, token_logprobs
from server.protocol import (
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatDelta,
    Completion,
    CompletionChoice,
    Usage,
)
from server.reasoning import new_tokens, reasoning_splitter
from server.results import ChoiceResult, choice_result, usage_of
from sglang_soft_thinking.output import META_INFO_KEY, trace_entries

DONE = "data: [DONE]\n\n"
OnDone = Callable[[list[ChoiceResult]], None]
OnError = Callable[[APIError], None]  # an error sent as an event, after the first chunk


def sse(payload) -> str:
    return f"data: {payload.to_json_str()}\n\n"


@dataclass
class Delta:
    """What one engine output adds to choice ``index``; ``result`` is set on its last one."""

    index: int
    text: str
    logprobs: list[TokenLogprob] | None
    result: ChoiceResult | None
    output: dict
    trace: list[dict] | None = None  # the concept-token steps it adds, with return_trace

    def soft_thinking(self) -> dict | None:
        """What the chunk says of soft thinking: the summary on a choice's last chunk (its
        whole trace included), else the trace entries of the steps it adds, if any."""
        if self.result is not None:
            return self.result.soft_json()
        return {"trace": self.trace} if self.trace else None


async def _deltas(handle: EngineHandle, job: GenerationJob) -> AsyncIterator[Delta]:
    sent_chars, sent_tokens = [0] * job.num_choices, [0] * job.num_choices
    traced = [0] * job.num_choices  # output tokens whose trace entries were sent
    with_trace = job.soft is not None and job.soft.return_trace
    first_token_s: list[float | None] = [None] * job.num_choices
    async with aclosing(handle.stream(job)) as outputs:
        async for index, output in outputs:
            if first_token_s[index] is None:
                first_token_s[index] = time.perf_counter() - job.arrival
            text = output.get("text") or ""
            delta, sent_chars[index] = text[sent_chars[index]:], len(text)
            logprobs = None
            if job.top_logprobs is not None:
                logprobs = token_logprobs(output["meta_info"], sent_tokens[index],
                                          handle.token_text)
                sent_tokens[index] += len(logprobs)
            result = None
            if output["meta_info"].get("finish_reason") is not None:
                result = choice_result(job, index, output)
                result.first_token_s = first_token_s[index]
            trace = None
            if with_trace:
                records = output["meta_info"].get(META_INFO_KEY) or []
                ids = output.get("output_ids") or []
                count = min(len(records), output["meta_info"]["completion_tokens"])
                start = traced[index]
                trace = trace_entries(records[start:count], ids[start:count])
                traced[index] = max(count, start)
            yield Delta(index, delta, logprobs, result, output, trace)


async def _with_usage_and_errors(events: AsyncIterator[str], results: list[ChoiceResult],
                                 job: GenerationJob, usage_chunk: Callable[[Usage], str] | None,
                                 on_done: OnDone | None, on_error: OnError | None) -> AsyncIterator[str]:
    has_sent = False
    try:
        async for event in events:
            has_sent = True
            yield event
    except APIError as error:
        if not has_sent:
            raise
        if on_error is not None:
            on_error(error)
        yield f"data: {json.dumps(error.to_json())}\n\n"
        yield DONE
        return
    results.sort(key=lambda r: r.index)
    if on_done is not None:
        on_done(results)
    if usage_chunk is not None:
        yield usage_chunk(usage_of(job, results))
    yield DONE


def _finish(choice: ChatChunkChoice | CompletionChoice, step: Delta,
            results: list[ChoiceResult]) -> None:
    """Soft thinking on every chunk that has some to say; on a choice's last chunk, keep
    its result and send its finish reason."""
    choice.soft_thinking = step.soft_thinking()
    if step.result is not None:
        results.append(step.result)
        choice.finish_reason = step.result.finish_reason


def chat_events(handle: EngineHandle, job: GenerationJob, model: str,
                include_usage: bool, on_done: OnDone | None = None,
                on_error: OnError | None = None) -> AsyncIterator[str]:
    created, chunk_id = int(time.time()), f"chatcmpl-{job.rid}"
    results: list[ChoiceResult] = []
    splitters = [reasoning_splitter(job, i, handle.tokenizer, handle.think_markers)
                 for i in range(job.num_choices)]

    def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> str:
        return sse(ChatCompletionChunk(id=chunk_id, created=created, model=model,
                                       choices=choices, usage=usage))

    async def events() -> AsyncIterator[str]:
        has_role = [False] * job.num_choices
        seen_tokens = [0] * job.num_choices
        async for step in _deltas(handle, job):
            index, result, splitter = step.index, step.result, splitters[step.index]
            reasoning, content = "", step.text
            if splitter is not None:
                new = new_tokens(step.output, seen_tokens[index], soft=job.soft is not None)
                seen_tokens[index] += len(new.ids)
                if new.finished:
                    reasoning, content = splitter.finish(new.ids, new.kinds, new.stop_matched, new.pending)
                    result.reasoning_tokens = splitter.reasoning_tokens
                else:
                    reasoning, content = splitter.feed(new.ids, new.kinds, new.pending)
            if (result is None and has_role[index]
                    and not (reasoning or content or step.logprobs or step.trace)):
                continue
            choice = ChatChunkChoice(
                index=index,
                delta=ChatDelta(role=None if has_role[index] else "assistant",
                                content=content or None, reasoning_content=reasoning or None),
                logprobs=None if step.logprobs is None else chat_logprobs(step.logprobs))
            has_role[index] = True
            _finish(choice, step, results)
            yield chunk([choice])

    usage_chunk = (lambda usage: chunk([], usage)) if include_usage else None
    return _with_usage_and_errors(events(), results, job, usage_chunk, on_done, on_error)


def completion_events(handle: EngineHandle, job: GenerationJob, model: str,
                      include_usage: bool, on_done: OnDone | None = None,
                      on_error: OnError | None = None) -> AsyncIterator[str]:
    created, chunk_id = int(time.time()), f"cmpl-{job.rid}"
    results: list[ChoiceResult] = []

    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> str:
        return sse(Completion(id=chunk_id, created=created, model=model,
                              choices=choices, usage=usage))

    async def events() -> AsyncIterator[str]:
        text_offsets = [0] * job.num_choices
        async for step in _deltas(handle, job):
            index, result = step.index, step.result
            if result is None and not (step.text or step.logprobs or step.trace):
                continue
            choice = CompletionChoice(index=index, text=step.text)
            if step.logprobs is not None:
                choice.logprobs = completion_logprobs(step.logprobs, text_offsets[index])
                text_offsets[index] += sum(len(entry.token) for entry in step.logprobs)
            _finish(choice, step, results)
            yield chunk([choice])

    usage_chunk = (lambda usage: chunk([], usage)) if include_usage else None
    return _with_usage_and_errors(events(), results, job, usage_chunk, on_done, on_error)


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
