"""From the engine's final outputs to OpenAI responses: choices, usage, soft-thinking fields."""

from __future__ import annotations

from dataclasses import dataclass

from sglang_soft_thinking.output import (
    META_INFO_KEY,
    SoftThinkingSummary,
    split_reasoning,
    summarize,
)

from server.engine import GenerationJob, finish_reason_of
from server.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    Completion,
    CompletionChoice,
    CompletionTokensDetails,
    Usage,
)


@dataclass
class ChoiceResult:
    """One finished choice, whichever way it was delivered."""

    index: int
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    soft: SoftThinkingSummary | None = None

    def soft_json(self) -> dict | None:
        return None if self.soft is None else self.soft.to_json()


def choice_result(job: GenerationJob, index: int, output: dict) -> ChoiceResult:
    """Read a final engine output; ``finish_reason_of`` raises for an aborted request."""
    meta = output["meta_info"]
    finish_reason = finish_reason_of(output) or "stop"
    summary = None
    if job.soft is not None:
        summary = summarize(meta.get(META_INFO_KEY), finish_reason, job.soft.return_trace)
    return ChoiceResult(index, output.get("text") or "", finish_reason,
                        meta["prompt_tokens"], meta["completion_tokens"], summary)


def usage_of(job: GenerationJob, results: list[ChoiceResult]) -> Usage:
    """Each prompt counts once however many choices it has; reasoning tokens for soft requests."""
    prompt_tokens = sum(r.prompt_tokens for r in results if r.index % job.n == 0)
    completion_tokens = sum(r.completion_tokens for r in results)
    details = None
    if job.soft is not None:
        thinking = sum(r.soft.thinking_tokens for r in results if r.soft is not None)
        details = CompletionTokensDetails(reasoning_tokens=thinking)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 total_tokens=prompt_tokens + completion_tokens,
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
                          message=assistant_message(job, r, think_end_is_one_token))
               for r in results]
    return ChatCompletion(id=f"chatcmpl-{job.rid}", model=model, choices=choices,
                          usage=usage_of(job, results))


def text_completion(job: GenerationJob, model: str, results: list[ChoiceResult]) -> Completion:
    choices = [CompletionChoice(index=r.index, text=r.text, finish_reason=r.finish_reason,
                                soft_thinking=r.soft_json())
               for r in results]
    return Completion(id=f"cmpl-{job.rid}", model=model, choices=choices,
                      usage=usage_of(job, results))
