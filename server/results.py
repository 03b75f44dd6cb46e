"""From the engine's final outputs to OpenAI responses: choices, usage, soft-thinking fields."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from sglang_soft_thinking.output import (
    META_INFO_KEY,
    THINK,
    SoftThinkingSummary,
    split_reasoning,
    summarize,
)

from server.engine import GenerationJob, finish_reason_of
from server.logprobs import TokenLogprob, chat_logprobs, completion_logprobs, token_logprobs
from server.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    Completion,
    CompletionChoice,
    CompletionTokensDetails,
    PromptTokensDetails,
    Usage,
)


@dataclass
class ChoiceResult:
    """One finished choice, whichever way it was delivered.

    ``concept_steps`` counts the decode steps that fed a concept token; ``latency_s`` and
    ``first_token_s`` are seconds from the request's arrival to the choice's last output
    and (streamed choices only) to its first; ``logprobs`` is set when asked for and the
    choice was not streamed (a stream sends them chunk by chunk).
    """

    index: int
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    soft: SoftThinkingSummary | None = None
    concept_steps: int = 0
    latency_s: float | None = None
    first_token_s: float | None = None
    logprobs: list[TokenLogprob] | None = None
    cached_tokens: int = 0  # prompt tokens SGLang took from its prefix cache

    def soft_json(self) -> dict | None:
        return None if self.soft is None else self.soft.to_json()


def choice_result(job: GenerationJob, index: int, output: dict,
                  decode: Callable[[int], str] | None = None) -> ChoiceResult:
    """Read a final engine output; ``finish_reason_of`` raises for an aborted request.

    With ``decode`` (token id to text) the choice's logprobs are read too, if asked for.
    """
    meta = output["meta_info"]
    finish_reason = finish_reason_of(output) or "stop"
    result = ChoiceResult(index, output.get("text") or "", finish_reason,
                          meta["prompt_tokens"], meta["completion_tokens"],
                          cached_tokens=meta.get("cached_tokens") or 0,
                          latency_s=time.perf_counter() - job.arrival)
    if job.soft is not None:
        records = meta.get(META_INFO_KEY)
        result.soft = summarize(records, finish_reason, job.soft.return_trace)
        result.concept_steps = sum(1 for r in records or () if r is not None and r[0] == THINK)
    if decode is not None and job.top_logprobs is not None:
        result.logprobs = token_logprobs(meta, 0, decode)
    return result


def usage_of(job: GenerationJob, results: list[ChoiceResult]) -> Usage:
    """Each prompt counts once however many choices it has (its first choice's prompt and
    prefix-cache hits); reasoning tokens for soft requests."""
    firsts = [r for r in results if r.index % job.n == 0]
    prompt_tokens = sum(r.prompt_tokens for r in firsts)
    completion_tokens = sum(r.completion_tokens for r in results)
    details = None
    if job.soft is not None:
        thinking = sum(r.soft.thinking_tokens for r in results if r.soft is not None)
        details = CompletionTokensDetails(reasoning_tokens=thinking)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 total_tokens=prompt_tokens + completion_tokens,
                 prompt_tokens_details=PromptTokensDetails(
                     cached_tokens=sum(r.cached_tokens for r in firsts)),
                 completion_tokens_details=details)


def assistant_message(job: GenerationJob, result: ChoiceResult,
                      think_end_is_one_token: bool) -> AssistantMessage:
    if job.soft is None:
        return AssistantMessage(content=result.text)
    reasoning, content = split_reasoning(result.text, job.soft.think_end_str,
                                         think_end_is_one_token)
    return AssistantMessage(content=content, reasoning_content=reasoning)


def chat_completion(job: GenerationJob, model: str, results: list[ChoiceResult],
                    think_end_is_one_token: bool) -> ChatCompletion:
    choices = [ChatChoice(index=r.index, finish_reason=r.finish_reason, soft_thinking=r.soft_json(),
                          message=assistant_message(job, r, think_end_is_one_token),
                          logprobs=None if r.logprobs is None else chat_logprobs(r.logprobs))
               for r in results]
    return ChatCompletion(id=f"chatcmpl-{job.rid}", model=model, choices=choices,
                          usage=usage_of(job, results))


def text_completion(job: GenerationJob, model: str, results: list[ChoiceResult]) -> Completion:
    choices = [CompletionChoice(index=r.index, text=r.text, finish_reason=r.finish_reason,
                                soft_thinking=r.soft_json(),
                                logprobs=None if r.logprobs is None
                                else completion_logprobs(r.logprobs))
               for r in results]
    return Completion(id=f"cmpl-{job.rid}", model=model, choices=choices,
                      usage=usage_of(job, results))
