"""Request and response models of the OpenAI API, with OpenAI's field names.

Requests accept unknown fields (they are ignored, or read as the reference fork's flat
soft-thinking names); responses are serialised without their ``None`` fields.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The most choices one request may ask for (``n``).
MAX_N = 16
# The most alternatives per token ``top_logprobs`` (chat) or ``logprobs`` (text) may ask for.
MAX_TOP_LOGPROBS = 20


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class StreamOptions(_Lenient):
    include_usage: bool = False


class SoftCoTRequest(BaseModel):
    """``"softcot": {"enabled": true, "num_thought_tokens": N}``; N defaults to the checkpoint's."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    num_thought_tokens: int | None = Field(None, ge=1)


class SamplingFields(_Lenient):
    """Fields shared by chat and text completions; the SGLang extensions come last."""

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=MAX_N)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None
    # SGLang's extensions.
    top_k: int | None = None
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, le=2)
    ignore_eos: bool = False
    stop_token_ids: list[int] | None = None
    # Validated by server.soft_thinking, so that errors name the field's full path.
    soft_thinking: dict[str, Any] | None = None
    softcot: SoftCoTRequest | None = None

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: int | None) -> int | None:
        if value is not None and value != -1 and value < 1:
            raise ValueError("must be -1 (all tokens) or at least 1")
        return value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def num_top_logprobs(self) -> int | None:
        """Alternatives per token to report, or None when no logprobs are asked for."""
        return None


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def as_template_input(self) -> dict:
        """The message as the chat template expects it: plain string content."""
        content = self.content
        if isinstance(content, list):
            content = "".join(part.text for part in content)
        message = {"role": self.role, "content": content or ""}
        if self.name is not None:
            message["name"] = self.name
        return message


# Our chat fields a client may also send inside ``chat_template_kwargs``: sglang-router
# rebuilds a chat body from the fields it knows and drops the others, but passes that
# dictionary on whole.
TEMPLATE_KWARGS_CARRIED = ("soft_thinking", "softcot")


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    # SGLang's extension: extra variables for the chat template (e.g. enable_thinking).
    chat_template_kwargs: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _carried_in_template_kwargs(cls, data: Any) -> Any:
        """Take ``soft_thinking`` and ``softcot`` out of ``chat_template_kwargs``."""
        kwargs = data.get("chat_template_kwargs") if isinstance(data, dict) else None
        if not isinstance(kwargs, dict) or not any(k in kwargs for k in TEMPLATE_KWARGS_CARRIED):
            return data
        data, kwargs = dict(data), dict(kwargs)
        for name in TEMPLATE_KWARGS_CARRIED:
            if name not in kwargs:
                continue
            if data.get(name) is not None:
                raise ValueError(f"{name}: given both in the body and in chat_template_kwargs; "
                                 f"give it once")
            data[name] = kwargs.pop(name)
        data["chat_template_kwargs"] = kwargs
        return data

    @property
    def num_top_logprobs(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None

    @property
    def max_new_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    echo: bool = False

    @property
    def num_top_logprobs(self) -> int | None:
        return self.logprobs

    @property
    def max_new_tokens(self) -> int | None:
        return self.max_tokens


class _Response(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    def to_json_str(self) -> str:
        return self.model_dump_json(exclude_none=True)


class CompletionTokensDetails(_Response):
    reasoning_tokens: int


class PromptTokensDetails(_Response):
    cached_tokens: int  # prompt tokens served from SGLang's prefix cache


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class TopLogprob(_Response):
    token: str
    logprob: float
    bytes: list[int] | None = None


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(_Response):
    content: list[ChatTokenLogprob]


class CompletionLogprobs(_Response):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class AssistantMessage(_Response):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = None


class ChatChoice(_Response):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: ChatLogprobs | None = None
    soft_thinking: dict | None = None


class ChatCompletion(_Response):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(_Response):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None


class ChatChunkChoice(_Response):
    index: int
    delta: ChatDelta
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None
    soft_thinking: dict | None = None


class ChatCompletionChunk(_Response):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(_Response):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None
    soft_thinking: dict | None = None


class Completion(_Response):
    """Both the whole response and, when streaming, each chunk (as OpenAI does)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(_Response):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "softthink"
    root: str | None = None
    max_model_len: int | None = None


class ModelList(_Response):
    object: Literal["list"] = "list"
    data: list[ModelCard]
