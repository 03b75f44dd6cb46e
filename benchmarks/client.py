"""One benchmark sample against an OpenAI-compatible server: a streamed chat completion,
timed, retried on transport errors, and put back together as a whole response.

Streaming is what lets the harness see the time to the first token. The chunks are
assembled into the shape of a non-streamed chat completion (``"streamed": true`` marks
it), including the server's per-choice ``soft_thinking`` summary when there is one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
import openai

logger = logging.getLogger(__name__)

# Failures worth another try: the server or the network hiccupped, not the request.
# A connection lost mid-stream surfaces as httpx's own error, not the client's.
RETRYABLE = (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError,
             openai.RateLimitError, httpx.TransportError)
TRANSPORT_ERRORS = (openai.APIConnectionError, openai.APITimeoutError, httpx.TransportError)


@dataclass
class SampleResponse:
    response: dict
    started_at: float
    finished_at: float
    ttft_s: float | None

    @property
    def e2e_s(self) -> float:
        return self.finished_at - self.started_at

    def tpot_s(self, completion_tokens: int) -> float | None:
        """Mean time per output token after the first one."""
        if self.ttft_s is None or completion_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (completion_tokens - 1)


def _attr(obj, name: str):
    """A field of an OpenAI model, also when the server added it (``extra`` fields)."""
    value = getattr(obj, name, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(name)
    return value


async def stream_chat(client: openai.AsyncOpenAI, body: dict) -> SampleResponse:
    """Send one chat request with ``stream=True`` and assemble the chunks."""
    started_at = time.time()
    first_token_at = None
    content, reasoning = [], []
    finish_reason = soft_thinking = usage = None
    response_id = model = None
    stream = await client.chat.completions.create(
        **body, stream=True, stream_options={"include_usage": True})
    async with stream:
        async for chunk in stream:
            response_id, model = chunk.id, chunk.model
            if chunk.usage is not None:
                usage = chunk.usage.model_dump(exclude_none=True)
            for choice in chunk.choices:
                delta_content = choice.delta.content
                delta_reasoning = _attr(choice.delta, "reasoning_content")
                if (delta_content or delta_reasoning) and first_token_at is None:
                    first_token_at = time.time()
                content.append(delta_content or "")
                reasoning.append(delta_reasoning or "")
                finish_reason = choice.finish_reason or finish_reason
                soft_thinking = _attr(choice, "soft_thinking") or soft_thinking
    finished_at = time.time()
    message = {"role": "assistant", "content": "".join(content),
               "reasoning_content": "".join(reasoning) or None}
    choice = {"index": 0, "message": message, "finish_reason": finish_reason}
    if soft_thinking is not None:
        choice["soft_thinking"] = soft_thinking
    response = {"id": response_id, "object": "chat.completion", "model": model,
                "streamed": True, "choices": [choice], "usage": usage}
    ttft = None if first_token_at is None else first_token_at - started_at
    return SampleResponse(response, started_at, finished_at, ttft)


async def stream_chat_with_retries(client: openai.AsyncOpenAI, body: dict, retries: int,
                                   backoff_s: float = 1.0) -> SampleResponse:
    """Retry transport errors and 5xx with exponential backoff; a 4xx is raised at once."""
    for attempt in range(retries + 1):
        try:
            return await stream_chat(client, body)
        except RETRYABLE as error:
            if attempt == retries:
                raise
            delay = min(backoff_s * 2 ** attempt, 30.0)
            logger.warning("request failed (%s: %s); retry %d/%d in %.0f s",
                           type(error).__name__, error, attempt + 1, retries, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
