"""From the engine's final outputs to OpenAI responses: choices, usage, soft-thinking fields.

A chat choice's reasoning and answer are split from its tokens (:mod:`server.reasoning`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from sglang_soft_thinking.output import META_INFO_KEY, STEP_KINDS, SoftThinkingSummary, summarize

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
from server.reasoning import NewTokens, new_tokens, reasoning_splitter
from server.think_markers import ThinkMarkers


@dataclass
class ChoiceResult:
    """One finished choice, whichever way it was delivered.

    ``concept_steps`` counts the decode steps that fed a concept token; ``latency_s`` and
    ``first_token_s`` are seconds from the request's arrival to the choice's last output
    and (streamed choices only) to its first; ``logprobs`` is set when asked for and the
    choice was not streamed (a stream sends them chunk by chunk). ``tokens`` are its output
    tokens with their soft-thinking record kinds; ``reasoning_tokens`` is set once a chat
    choice's reasoning has been split from its answer.
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
    tokens: NewTokens | None = field(default=None, repr=False)
    reasoning_tokens: int | None = None

    @property
    def thinking_tokens(self) -> int | None:
        """Tokens before the answer: the reasoning split's count, else the soft-thinking
        records', else None (a choice that did not think)."""
        if self.reasoning_tokens is not None:
            return self.reasoning_tokens
        return None if self.soft is None else self.soft.thinking_tokens

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
                          latency_s=time.perf_counter() - job.arrival,
                          tokens=new_tokens(output, 0, soft=job.soft is not None))
    if job.soft is not None:
        records = meta.get(META_INFO_KEY)
        result.soft = summarize(records, finish_reason, job.soft.return_trace,
                                output.get("output_ids") or [])
        result.concept_steps = sum(1 for r in records or () if r is not None and r[0] in STEP_KINDS)
    if decode is not None and job.top_logprobs is not None:
        result.logprobs = token_logprobs(meta, 0, decode)
    return result


def usage_of(job: GenerationJob, results: list[ChoiceResult]) -> Usage:
    """Each prompt counts once however many choices it has (its first choice's prompt and
    prefix-cache hits); reasoning tokens for soft requests and for chat choices that thought."""
    firsts = [r for r in results if r.index % job.n == 0]
    prompt_tokens = sum(r.prompt_tokens for r in firsts)
    completion_tokens = sum(r.completion_tokens for r in results)
    reasoning = [r.thinking_tokens for r in results]
    details = None
    if job.soft is not None or any(count is not None for count in reasoning):
        details = CompletionTokensDetails(reasoning_tokens=sum(count or 0 for count in reasoning))
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 total_tokens=prompt_tokens + completion_tokens,
                 prompt_tokens_details=PromptTokensDetails(
                     cached_tokens=sum(r.cached_tokens for r in firsts)),
                 completion_tokens_details=details)


def assistant_message(job: GenerationJob, result: ChoiceResult, tokenizer,
                      markers: ThinkMarkers | None) -> AssistantMessage:
    """The choice's message; a choice that thinks has its reasoning split from its answer."""
    splitter = reasoning_splitter(job, result.index, tokenizer, markers)
    if splitter is None:
        return AssistantMessage(content=result.text)
    tokens = result.tokens
    splitter.finish(tokens.ids, tokens.kinds, tokens.stop_matched, tokens.pending)
    result.reasoning_tokens = splitter.reasoning_tokens
    return AssistantMessage(content=splitter.content, reasoning_content=splitter.reasoning)


def chat_completion(job: GenerationJob, model: str, results: list[ChoiceResult],
                    tokenizer, markers: ThinkMarkers | None) -> ChatCompletion:
    """``tokenizer`` (the model's) detokenizes the reasoning and the answer; ``markers``
    are the model's think markers."""
    choices = [ChatChoice(index=r.index, finish_reason=r.finish_reason, soft_thinking=r.soft_json(),
                          message=assistant_message(job, r, tokenizer, markers),
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
