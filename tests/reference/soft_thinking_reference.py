"""Soft Thinking decoding, written out plainly with PyTorch and transformers.

This is the yardstick the engine is tested against, so it follows DESIGN §4 line by line and
favours clarity over speed: batch size 1, float32, one position per forward pass, and every
filter a small function on one probability vector over the whole vocabulary.

Per thinking step, from the logits row ``z`` of the last position:

1. ``p = softmax(z / T)``
2. ``H = -sum(p ln p)`` (nats) over the full ``p``; drives Cold Stop
3. top-k, then top-p, then min-p, each followed by renormalisation
4. (noise: not modelled here)
5. keep the ``max_topk`` largest, renormalise: the concept token ``(ids, weights)``
6. ``ids[0]`` is the token written to the text; the next input is ``sum_i weights[i] * E[ids[i]]``,
   ``E`` being the rows the model's input-embedding module gives (scaled, for Gemma)

The maths of steps 1-6 lives in ``concept_math``; this module holds the decoding loop.

Where the design leaves a choice open, this reference takes the following:

- A step whose ``ids[0]`` is a stop token is still a thinking step: it is in the trace.
- When the think-end string completes on its own, the next input is that last token's plain
  embedding (the delimiter is read as text, like the forced one), not the step's mixture.
- On Cold Stop or budget, the last step's mixture is fed as usual and its output is replaced
  by the think-end tokens, which are then fed one by one as plain embeddings.
- After thinking, decoding is greedy (after-thinking temperature 0).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .concept_math import (
    concept_embedding,
    concept_token,
    entropy_nats,
    filtered_probs,
    min_p_filter,
    renormalise,
    temperature_softmax,
    top_k_filter,
    top_p_filter,
)

DEFAULT_MODEL_DIR = (
    Path(os.environ.get("SOFTTHINK_HOME", Path.home() / ".cache" / "softthink"))
    / "models"
    / "smollm2-135m-instruct"
)

END_REASONS = ("think_end", "cold_stop", "budget", "stop", "steps")

__all__ = [
    "DEFAULT_MODEL_DIR",
    "END_REASONS",
    "ReferenceResult",
    "ReferenceSettings",
    "concept_embedding",
    "concept_token",
    "entropy_nats",
    "filtered_probs",
    "load_reference_model",
    "min_p_filter",
    "reference_soft_thinking",
    "renormalise",
    "run_reference_soft_thinking",
    "temperature_softmax",
    "token_embeddings",
    "top_k_filter",
    "top_p_filter",
]


@dataclass(frozen=True)
class ReferenceSettings:
    """The request's soft-thinking parameters, checked once."""

    num_steps: int
    temperature: float
    top_k: int = -1
    top_p: float = 1.0
    min_p: float = 0.001
    max_topk: int = 10
    think_end_str: str = "</think>"
    entropy_threshold: float = 0.0
    length_threshold: int = 256
    max_thinking_tokens: int | None = None
    num_answer_tokens: int = 0

    def __post_init__(self) -> None:
        checks = {
            "num_steps": self.num_steps >= 0,
            "temperature": self.temperature > 0 and math.isfinite(self.temperature),
            "top_k": self.top_k == -1 or self.top_k >= 1,
            "top_p": 0.0 < self.top_p <= 1.0,
            "min_p": 0.0 <= self.min_p < 1.0,
            "max_topk": self.max_topk >= 1,
            "think_end_str": len(self.think_end_str) > 0,
            "entropy_threshold": self.entropy_threshold >= 0.0,
            "length_threshold": self.length_threshold >= 1,
            "max_thinking_tokens": self.max_thinking_tokens is None or self.max_thinking_tokens >= 1,
            "num_answer_tokens": self.num_answer_tokens >= 0,
        }
        for name, is_valid in checks.items():
            if not is_valid:
                raise ValueError(f"invalid {name}: {getattr(self, name)!r}")


@dataclass
class ReferenceResult:
    """What one request produced.

    ``steps`` holds one ``{"ids", "weights", "entropy"}`` per thinking step. ``forced_ids`` are the
    think-end tokens written after Cold Stop or budget (empty otherwise). ``answer_ids`` are the
    greedy after-thinking tokens, at most ``num_answer_tokens``, ending with the stop token if one
    came.
    """

    steps: list[dict] = field(default_factory=list)
    end_reason: str = "steps"
    forced_ids: list[int] = field(default_factory=list)
    answer_ids: list[int] = field(default_factory=list)

    @property
    def output_ids(self) -> list[int]:
        """The token ids of the output text: each step's ``ids[0]``, forced tokens, answer."""
        return [step["ids"][0] for step in self.steps] + self.forced_ids + self.answer_ids


def token_embeddings(model: torch.nn.Module) -> torch.Tensor:
    """Every token's input embedding [V, H], as the model's input-embedding module gives it.

    Some models' module does more than look up a row: Gemma's scale it by sqrt(hidden size).
    A model given ``inputs_embeds`` skips that module, so the rows are taken through it here
    and a concept token, mixed from them, enters the first layer exactly as a token would.
    """
    module = model.get_input_embeddings()
    if type(module) is torch.nn.Embedding:
        return module.weight
    return module(torch.arange(module.num_embeddings))


class _CachedDecoder:
    """A causal LM fed one position at a time through a real KV cache (batch size 1)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.embedding_matrix = token_embeddings(model)  # [V, H]
        self.cache = None

    def prefill(self, prompt_ids: list[int]) -> torch.Tensor:
        out = self.model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
        self.cache = out.past_key_values
        return out.logits[0, -1].float()  # [V]

    def feed_embedding(self, embedding: torch.Tensor) -> torch.Tensor:
        inputs_embeds = embedding.view(1, 1, -1)  # [1, 1, H]
        out = self.model(inputs_embeds=inputs_embeds, past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return out.logits[0, -1].float()  # [V]

    def feed_token(self, token_id: int) -> torch.Tensor:
        return self.feed_embedding(self.embedding_matrix[token_id])


def _default_eos_ids(model: torch.nn.Module, tokenizer) -> tuple[int, ...]:
    ids = set()
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source is not None:
            ids.update(source)
    return tuple(sorted(ids))


def _end_of_step(
    settings: ReferenceSettings,
    output_ids: list[int],
    think_end_ids: list[int],
    num_low_entropy: int,
    eos_ids: tuple[int, ...],
) -> str | None:
    """Why thinking ends after the latest step, or None; checked in this order."""
    if output_ids[-1] in eos_ids:
        return "stop"
    if output_ids[-len(think_end_ids):] == think_end_ids:
        return "think_end"
    if settings.entropy_threshold > 0 and num_low_entropy >= settings.length_threshold:
        return "cold_stop"
    if settings.max_thinking_tokens is not None and len(output_ids) >= settings.max_thinking_tokens:
        return "budget"
    return None


def _greedy_answer(
    decoder: _CachedDecoder, logits: torch.Tensor, num_tokens: int, eos_ids: tuple[int, ...]
) -> list[int]:
    """After thinking: greedy decoding from ``logits`` (the next position's), up to a stop token."""
    answer_ids: list[int] = []
    while len(answer_ids) < num_tokens:
        answer_ids.append(int(torch.argmax(logits)))
        if answer_ids[-1] in eos_ids or len(answer_ids) == num_tokens:
            break
        logits = decoder.feed_token(answer_ids[-1])
    return answer_ids


@torch.no_grad()
def _run(
    model, tokenizer, prompt_ids: list[int], settings: ReferenceSettings, eos_ids: tuple[int, ...]
) -> ReferenceResult:
    if not prompt_ids:
        raise ValueError("prompt_ids must not be empty")
    think_end_ids = tokenizer(settings.think_end_str, add_special_tokens=False)["input_ids"]
    decoder = _CachedDecoder(model)
    logits = decoder.prefill(list(prompt_ids))
    result = ReferenceResult()
    output_ids: list[int] = []
    num_low_entropy = 0  # consecutive steps with H below the Cold Stop threshold
    while len(result.steps) < settings.num_steps:
        probs, entropy = filtered_probs(
            logits, settings.temperature, settings.top_k, settings.top_p, settings.min_p
        )
        ids, weights = concept_token(probs, settings.max_topk)
        result.steps.append({"ids": ids, "weights": weights, "entropy": entropy})
        output_ids.append(ids[0])
        num_low_entropy = num_low_entropy + 1 if entropy < settings.entropy_threshold else 0
        reason = _end_of_step(settings, output_ids, think_end_ids, num_low_entropy, eos_ids)
        if reason in ("stop", "think_end"):
            result.end_reason = reason
            if reason == "think_end":
                logits = decoder.feed_token(ids[0])
            break
        logits = decoder.feed_embedding(concept_embedding(decoder.embedding_matrix, ids, weights))
        if reason is not None:  # Cold Stop or budget: the think-end string is written next
            result.end_reason = reason
            result.forced_ids = list(think_end_ids)
            for token_id in think_end_ids:
                logits = decoder.feed_token(token_id)
            break
    if result.end_reason in ("think_end", "cold_stop", "budget"):
        result.answer_ids = _greedy_answer(decoder, logits, settings.num_answer_tokens, eos_ids)
    return result


def run_reference_soft_thinking(
    model,
    tokenizer,
    prompt_ids: list[int],
    *,
    eos_ids: tuple[int, ...] | None = None,
    **settings,
) -> ReferenceResult:
    """Soft Thinking on one prompt; the keyword arguments are those of ``ReferenceSettings``.

    ``eos_ids`` defaults to the tokenizer's and the generation config's EOS ids. Thinking runs at
    most ``num_steps`` steps (``end_reason == "steps"`` when none of the other ends came first).
    """
    resolved_eos_ids = _default_eos_ids(model, tokenizer) if eos_ids is None else tuple(eos_ids)
    return _run(model, tokenizer, prompt_ids, ReferenceSettings(**settings), resolved_eos_ids)


def reference_soft_thinking(
    model,
    tokenizer,
    prompt_ids: list[int],
    *,
    num_steps: int,
    temperature: float,
    top_k: int = -1,
    top_p: float = 1.0,
    min_p: float = 0.001,
    max_topk: int = 10,
    think_end_str: str = "</think>",
    entropy_threshold: float = 0.0,
    length_threshold: int = 256,
    max_thinking_tokens: int | None = None,
    eos_ids: tuple[int, ...] | None = None,
) -> list[dict]:
    """The thinking trace alone: one ``{"ids", "weights", "entropy"}`` per step.

    Use ``run_reference_soft_thinking`` for the end reason, forced tokens and answer.
    """
    return run_reference_soft_thinking(
        model, tokenizer, prompt_ids, eos_ids=eos_ids, num_steps=num_steps,
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, max_topk=max_topk,
        think_end_str=think_end_str, entropy_threshold=entropy_threshold,
        length_threshold=length_threshold, max_thinking_tokens=max_thinking_tokens,
    ).steps


def load_reference_model(path: str | Path = DEFAULT_MODEL_DIR):
    """``(model, tokenizer)`` from a Hugging Face folder, float32, eval mode, on the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, tokenizer
