"""The in-process SGLang engine and what the routes ask of it.

:class:`EngineHandle` owns the ``sglang.Engine``, the model's tokenizer and its think
markers (:mod:`server.think_markers`): it turns messages and prompts into token ids,
checks lengths against the context, runs a :class:`GenerationJob` (all its choices at
once, whole or streamed) and aborts one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator

from starlette.exceptions import HTTPException

from sglang_soft_thinking.hooks.results import MESSAGE_PREFIX as SOFT_THINKING_ABORT_PREFIX
from sglang_soft_thinking.params import SoftThinkingParams

from server.errors import APIError, invalid_request
from server.protocol import SamplingFields
from server.settings import ServerSettings
from server.soft_thinking import custom_params
from server.softcot import generate_with_overrides
from server.think_markers import ThinkMarkers, find_think_markers

logger = logging.getLogger(__name__)


class EngineStartError(Exception):
    """SGLang, or the plugin, refused the engine options; the message says which and why."""


@dataclass
class GenerationJob:
    """One API request as the engine sees it: each prompt times ``n`` choices.

    Choice ``index = prompt_index * n + j`` runs as its own engine request with rid
    ``f"{rid}-{index}"``; with a seed, choice ``index`` samples with ``seed + index``.
    ``top_logprobs`` is None when no logprobs are asked for, else the number of
    alternatives to report per token; ``arrival`` (``time.perf_counter()``) is when the
    request came in, which latencies are measured from.
    """

    prompts: list[list[int]]
    n: int
    sampling_params: dict
    soft: SoftThinkingParams | None = None
    seed: int | None = None
    top_logprobs: int | None = None
    # SoftCoT: per prompt, SGLang ``PositionalEmbeds`` written over its placeholder tokens.
    embed_overrides: list | None = None
    rid: str = field(default_factory=lambda: uuid.uuid4().hex)
    arrival: float = field(default_factory=time.perf_counter)

    @property
    def num_choices(self) -> int:
        return len(self.prompts) * self.n

    def choice_rid(self, index: int) -> str:
        return f"{self.rid}-{index}"

    def choice_params(self, index: int) -> dict:
        params = dict(self.sampling_params)
        if self.seed is not None:
            params["sampling_seed"] = self.seed + index
        return params

    def prompt_of(self, index: int) -> list[int]:
        return self.prompts[index // self.n]

    def engine_kwargs(self, index: int) -> dict:
        """``Engine.async_generate``'s arguments for choice ``index`` (but ``stream``)."""
        kwargs = {"input_ids": self.prompt_of(index), "sampling_params": self.choice_params(index),
                  "rid": self.choice_rid(index)}
        if self.top_logprobs is not None:
            kwargs.update(return_logprob=True, top_logprobs_num=self.top_logprobs)
        if self.embed_overrides is not None:
            kwargs["positional_embed_overrides"] = self.embed_overrides[index // self.n]
        return kwargs


def build_sampling_params(request: SamplingFields, soft: SoftThinkingParams | None,
                          max_new_tokens: int) -> dict:
    """SGLang ``sampling_params`` for a request; unset fields keep SGLang's defaults.

    The temperature defaults to 1.0 as in OpenAI's API. A soft-thinking request's own
    ``min_p`` values travel in ``custom_params``, so the top-level one is not passed on.
    """
    params = {"max_new_tokens": max_new_tokens,
              "temperature": 1.0 if request.temperature is None else request.temperature}
    optional = {
        "top_p": request.top_p, "top_k": request.top_k, "stop": request.stop,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "repetition_penalty": request.repetition_penalty,
        "stop_token_ids": request.stop_token_ids,
        "min_p": None if soft is not None else request.min_p,
    }
    params.update({key: value for key, value in optional.items() if value is not None})
    if request.ignore_eos:
        params["ignore_eos"] = True
    if soft is not None:
        params["custom_params"] = custom_params(soft)
    return params


class EngineHandle:
    def __init__(self, engine, tokenizer, model_name: str, context_len: int,
                 think_markers: ThinkMarkers | None = None, soft_thinking_off: str | None = None):
        self.engine = engine
        self.tokenizer = tokenizer
        self.think_markers = think_markers
        # Why the engine runs without soft thinking (its requests are then refused), or None.
        self.soft_thinking_off = soft_thinking_off
        self.model_name = model_name
        self.context_len = context_len
        self._token_texts: dict[int, str] = {}

    @classmethod
    def start(cls, settings: ServerSettings) -> "EngineHandle":
        """Start SGLang's engine (its scheduler and detokenizer subprocesses) in this process."""
        settings.export_environment()
        import sglang
        from transformers import AutoTokenizer

        model_path = str(settings.resolved_model_path())
        # sleep_on_idle: the scheduler waits on its sockets instead of spinning a core
        # while no request runs (it wakes as soon as one arrives).
        engine_args = {"sleep_on_idle": True, **settings.engine_options,
                       "model_path": model_path, "log_level": settings.log_level,
                       "dtype": settings.dtype,
                       "max_total_tokens": settings.max_total_tokens,
                       "max_running_requests": settings.max_running_requests}
        engine_args = {k: v for k, v in engine_args.items() if v is not None}
        refuse_cpu_tensor_parallelism(engine_args)
        bind_cpu_ranks(engine_args)
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        # Before the engine starts, so that markers that do not fit (ThinkMarkersError) fail fast.
        markers = find_think_markers(tokenizer, settings.think_markers)
        try:
            engine = sglang.Engine(**engine_args)
        except ValueError as error:  # SGLang or the plugin refused the options
            logger.debug("the engine did not start", exc_info=True)
            raise EngineStartError(str(error)) from None
        context_len = engine.tokenizer_manager.context_len
        off = soft_thinking_off_reason(engine)
        if off is not None:
            logger.warning("soft thinking is off (%s): soft-thinking requests are refused", off)
        return cls(engine, tokenizer, settings.model_name(), context_len, markers, off)

    def shutdown(self) -> None:
        self.engine.shutdown()

    def server_info(self) -> dict:
        """The engine's settings after SGLang resolved them (what SGLang's ``/server_info``
        reports), secrets left out, with this server's own address and model name."""
        from sglang.srt.sampling.watermarking.core import redact_watermark_secrets
        from sglang.srt.utils.msgspec_utils import msgspec_to_builtins

        resolved = self.engine.tokenizer_manager.server_args.resolved_dict()
        info = msgspec_to_builtins(redact_watermark_secrets(resolved))
        for name in info:
            if "api_key" in name or "password" in name or "secret" in name:
                info[name] = None
        soft_thinking = {"enabled": self.soft_thinking_off is None, "reason": self.soft_thinking_off}
        return info | {"served_model_name": self.model_name, "context_len": self.context_len,
                       "soft_thinking": soft_thinking}

    def model_info(self) -> dict:
        """The served model, as SGLang's ``/model_info`` reports it."""
        return self.engine.get_model_info() | {"served_model_name": self.model_name}

    # --- prompts -------------------------------------------------------------------

    def chat_input_ids(self, messages: list[dict], template_kwargs: dict | None = None) -> list[int]:
        """The prompt's ids: ``messages`` through the model's chat template, with the
        request's ``chat_template_kwargs`` as extra template variables."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise invalid_request("this model has no chat template: use /v1/completions",
                                  "messages")
        try:
            return list(self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False,
                **(template_kwargs or {})))
        except Exception as error:  # the template itself rejects the conversation
            raise invalid_request(f"messages: the chat template failed: {error}",
                                  "messages") from None

    def text_input_ids(self, prompt: str | list) -> list[list[int]]:
        """Token ids of each prompt: a string, a list of strings, ids, or lists of ids."""
        prompts = prompt if isinstance(prompt, list) and prompt else [prompt]
        if all(isinstance(item, int) for item in prompts):
            prompts = [prompts]
        return [item if isinstance(item, list) else self.tokenizer(item).input_ids
                for item in prompts]

    def max_new_tokens(self, input_ids: list[int], requested: int | None,
                       prompt_field: str, max_tokens_field: str) -> int:
        """The generation budget, after checking prompt and request against the context."""
        if not input_ids:
            raise invalid_request(f"{prompt_field}: the prompt is empty", prompt_field)
        room = self.context_len - len(input_ids)
        if room <= 0:
            raise invalid_request(
                f"{prompt_field}: the prompt has {len(input_ids)} tokens, at least the "
                f"model's context length of {self.context_len}", prompt_field)
        if requested is None:
            return room
        if requested > room:
            raise invalid_request(
                f"{max_tokens_field}: {requested} new tokens plus the prompt's "
                f"{len(input_ids)} exceed the model's context length of {self.context_len}",
                max_tokens_field)
        return requested

    # --- generation ----------------------------------------------------------------

    async def generate(self, job: GenerationJob) -> list[dict]:
        """Every choice's final output, in index order."""
        tasks = [asyncio.ensure_future(self._async_generate(job.engine_kwargs(i)))
                 for i in range(job.num_choices)]
        try:
            return list(await asyncio.gather(*tasks))
        except ValueError as error:  # SGLang rejected the request
            raise invalid_request(str(error)) from None
        except HTTPException as error:  # SGLang aborted it
            raise aborted(error.status_code, str(error.detail)) from None
        finally:
            unfinished = [i for i, task in enumerate(tasks) if not task.done()]
            for i in unfinished:
                tasks[i].cancel()
                self.abort(job.choice_rid(i))

    async def stream(self, job: GenerationJob) -> AsyncIterator[tuple[int, dict]]:
        """``(index, output)`` pairs as the engine produces them, all choices interleaved.

        Each output is cumulative (its ``text`` is all the text so far). Closing the
        iterator early aborts the choices still running.
        """
        queue: asyncio.Queue = asyncio.Queue()
        finished: set[int] = set()

        async def pump(index: int) -> None:
            try:
                outputs = await self._async_generate(job.engine_kwargs(index), stream=True)
                async for output in outputs:
                    queue.put_nowait((index, output, None))
                queue.put_nowait((index, None, None))
            except Exception as error:
                queue.put_nowait((index, None, error))

        tasks = [asyncio.create_task(pump(i)) for i in range(job.num_choices)]
        try:
            while len(finished) < job.num_choices:
                index, output, error = await queue.get()
                if isinstance(error, ValueError):
                    raise invalid_request(str(error))
                if isinstance(error, HTTPException):
                    raise aborted(error.status_code, str(error.detail))
                if error is not None:
                    raise error
                if output is None:
                    finished.add(index)
                    continue
                yield index, output
        finally:
            for index, task in enumerate(tasks):
                if index not in finished:
                    task.cancel()
                    self.abort(job.choice_rid(index))

    def _async_generate(self, kwargs: dict, stream: bool = False):
        """``Engine.async_generate``, or its SoftCoT twin when prompt embeddings are overridden."""
        if "positional_embed_overrides" in kwargs:
            return generate_with_overrides(self.engine, stream=stream, **kwargs)
        return self.engine.async_generate(**kwargs, stream=stream)

    def abort(self, rid: str) -> None:
        try:
            self.engine.tokenizer_manager.abort_request(rid)
        except Exception:  # the request may already be gone
            logger.debug("abort of %s failed", rid, exc_info=True)

    @property
    def num_running_requests(self) -> int:
        """Engine requests this process is waiting on (queued or running in the scheduler)."""
        return len(self.engine.tokenizer_manager.rid_to_state)

    async def load(self) -> tuple[int, int]:
        """``(running, queued)`` requests as the scheduler last published them.

        The scheduler publishes its load every few steps and at once when it goes idle;
        before its first publication the server's own count stands in for ``running``.
        """
        snapshots = await self.engine.tokenizer_manager.get_loads()
        if not snapshots:
            return self.num_running_requests, 0
        return (sum(s.num_running_reqs for s in snapshots),
                sum(s.num_waiting_reqs for s in snapshots))

    def token_text(self, token_id: int) -> str:
        """One token's text, as logprobs report it."""
        text = self._token_texts.get(token_id)
        if text is None:
            text = self._token_texts[token_id] = self.tokenizer.decode([token_id])
        return text


def soft_thinking_off_reason(engine) -> str | None:
    """Why the engine's schedulers run without soft thinking, or None when they all run it.

    Each scheduler says so in its start-up report (``hooks/handshake.py``), which SGLang
    0.5.23's ``Engine`` keeps in ``_scheduler_init_result``; one that never loaded the
    plugin says nothing, and that counts as off.
    """
    from sglang_soft_thinking.hooks.handshake import off_reason

    init_result = getattr(engine, "_scheduler_init_result", None)
    infos = list(getattr(init_result, "scheduler_infos", None) or [])
    return off_reason(infos, os.environ.get("SGLANG_PLUGINS"))


def refuse_cpu_tensor_parallelism(engine_args: dict) -> None:
    """Refuse ``--tp-size`` above 1 on the CPU stand-in, before it starts ranks.

    Stock ``sglang.launch_server`` with the plugin runs tensor parallelism on this CPU path
    (sglang_soft_thinking.cpu.tensor_parallel builds SGLang's groups over gloo; checked by
    tests/integration/test_tensor_parallel.py); this server's own start-up with several
    ranks on a CPU is not tested, so it says where to go instead. Data parallelism
    (``--dp-size``) is served here.
    """
    from sglang_soft_thinking.cpu import boot

    tp_size = engine_args.get("tp_size", 1)
    if tp_size > 1 and boot.is_active():
        raise EngineStartError(
            f"--tp-size {tp_size}: tensor parallelism on a CPU is served by stock "
            f"`python -m sglang.launch_server --tp-size {tp_size}` with the plugin, not by this server; "
            f"use --dp-size for several ranks here, or a GPU machine")


def bind_cpu_ranks(engine_args: dict) -> None:
    """Give each CPU rank its own cores when SGLang would refuse to choose them.

    On a CPU, SGLang binds each rank (``dp_size * tp_size * pp_size`` of them) to one NUMA
    node and refuses more ranks than nodes unless ``SGLANG_CPU_OMP_THREADS_BIND`` lists
    each rank's cores. Then, and only if the variable is unset, split this machine's
    physical cores evenly among the ranks (``--dp-size 2`` on two cores: ``0|1``). The
    engine's scheduler processes inherit the variable.
    """
    if os.environ.get("SGLANG_CPU_OMP_THREADS_BIND"):
        return
    device = engine_args.get("device")
    if device not in (None, "cpu"):
        return
    import torch

    if device is None and torch.cuda.is_available():
        return
    from sglang.srt.utils.common import get_cpu_ids_by_node

    nodes = get_cpu_ids_by_node()
    num_ranks = (engine_args.get("dp_size", 1) * engine_args.get("tp_size", 1)
                 * engine_args.get("pp_size", 1))
    cores = [int(core) for node in nodes for core in node.split(",")]
    if num_ranks <= max(len(nodes), 1) or len(cores) < num_ranks:
        return  # SGLang's own binding, or its own message when there are too few cores
    per_rank = len(cores) // num_ranks
    groups = [cores[i * per_rank:(i + 1) * per_rank] for i in range(num_ranks)]
    binding = "|".join(",".join(map(str, group)) for group in groups)
    os.environ["SGLANG_CPU_OMP_THREADS_BIND"] = binding
    logger.info("CPU: %d ranks on %d NUMA node(s), cores per rank SGLANG_CPU_OMP_THREADS_BIND=%s",
                num_ranks, len(nodes), binding)


# The error code of a request the plugin aborted because its soft thinking could not be
# made right (its abort message starts with SOFT_THINKING_ABORT_PREFIX).
SOFT_THINKING_ERROR = "soft_thinking_error"


def aborted(status: int, message: str) -> APIError:
    """The error of a request the engine aborted (soft thinking's own aborts marked so)."""
    code = SOFT_THINKING_ERROR if message.startswith(SOFT_THINKING_ABORT_PREFIX) else None
    return APIError(status if 400 <= status < 600 else 500, message, code=code)


def finish_reason_of(output: dict) -> str | None:
    """The OpenAI finish reason of an engine output; an aborted request raises."""
    reason = output["meta_info"].get("finish_reason")
    if reason is None:
        return None
    kind = reason.get("type")
    if kind == "abort":
        raise aborted(reason.get("status_code") or 500, reason.get("message") or "the request was aborted")
    return "length" if kind == "length" else "stop"
