"""SoftCoT in the server: the assistant model, the projection, and the base prompt's overrides.

Started with ``--softcot-assistant PATH --softcot-projection DIR``. A chat request with
``"softcot": {"enabled": true}`` has its last user turn rewritten by the checkpoint's
base template (question + thought block); the assistant (a transformers model in this
process) reads the question, and the projected hidden states at its placeholders replace
the base prompt's placeholder embeddings through SGLang's ``positional_embed_overrides``.

Concurrent requests share assistant forwards: :class:`AssistantRunner` takes every
request waiting when its worker thread is free and runs them as one padded batch, off the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from server.errors import invalid_request
from server.protocol import SoftCoTRequest
from server.settings import ServerSettings

logger = logging.getLogger(__name__)
MAX_ASSISTANT_BATCH = 32


class SoftCoTStartupError(ValueError):
    """SoftCoT flags that cannot be served; the message says what to fix."""


@dataclass
class _Pending:
    ids: list[int]
    positions: list[int]
    future: asyncio.Future


class AssistantRunner:
    """Computes ``projection(assistant hidden states at the placeholders)`` in batches."""

    def __init__(self, assistant, projection, pad_id: int):
        self.assistant, self.projection, self.pad_id = assistant, projection, pad_id
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="softcot")

    async def thoughts(self, ids: list[int], positions: list[int]) -> torch.Tensor:
        """The request's N thought vectors ``[N, d_base]`` (float32, on the CPU)."""
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(ids, positions, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_ASSISTANT_BATCH:
                batch.append(self._queue.get_nowait())
            batch = [item for item in batch if not item.future.done()]  # cancelled meanwhile
            if not batch:
                continue
            try:
                result = await loop.run_in_executor(self._executor, self._compute, batch)
            except Exception as error:  # fail these requests, keep serving others
                logger.exception("SoftCoT assistant failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            for item, thoughts in zip(batch, result):
                if not item.future.done():
                    item.future.set_result(thoughts)

    def _compute(self, batch: list[_Pending]) -> list[torch.Tensor]:
        from softcot_plugin.thoughts import assistant_hidden

        with torch.no_grad():
            hidden = assistant_hidden(self.assistant, [item.ids for item in batch],
                                      [item.positions for item in batch], self.pad_id)
            thoughts = self.projection(hidden, out_dtype=torch.float32).cpu()  # [B, N, d_base]
        return list(thoughts.unbind(0))

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


class SoftCoTService:
    """The loaded checkpoint, the assistant and the templates; one per server."""

    def __init__(self, config, runner: AssistantRunner, assistant_tokenizer, base_tokenizer):
        self.config = config
        self.templates = config.templates
        self.runner = runner
        self.assistant_tokenizer = assistant_tokenizer
        self.base_tokenizer = base_tokenizer

    @classmethod
    def load(cls, settings: ServerSettings) -> "SoftCoTService | None":
        """The service for the settings' SoftCoT flags (None without them); a misfit raises."""
        if settings.softcot_assistant is None and settings.softcot_projection is None:
            return None
        if settings.softcot_assistant is None or settings.softcot_projection is None:
            raise SoftCoTStartupError("--softcot-assistant and --softcot-projection go together")
        from transformers import AutoConfig, AutoTokenizer

        from softcot_plugin.checkpoint import check_fits, load_checkpoint
        from softcot_plugin.thoughts import load_frozen, pick_device

        config, projection = load_checkpoint(settings.softcot_projection.expanduser())
        base_path = str(settings.resolved_model_path())
        base_tokenizer = AutoTokenizer.from_pretrained(base_path)
        check_fits(config, "base", AutoConfig.from_pretrained(base_path), base_tokenizer)
        assistant_path = settings.softcot_assistant.expanduser()
        if not (assistant_path / "config.json").is_file():
            raise SoftCoTStartupError(f"--softcot-assistant: {assistant_path} is not a model "
                                      "folder (no config.json)")
        check_fits(config, "assistant", AutoConfig.from_pretrained(str(assistant_path)),
                   AutoTokenizer.from_pretrained(str(assistant_path)))
        device = pick_device()
        dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
        assistant, assistant_tokenizer = load_frozen(assistant_path, hidden_only=True,
                                                     device=device, dtype=dtype)
        projection.to(device).eval()
        runner = AssistantRunner(assistant, projection, assistant_tokenizer.eos_token_id)
        logger.info("SoftCoT: assistant %s, %d thought tokens, markers %s", assistant_path,
                    config.num_thought_tokens, config.marker_family)
        return cls(config, runner, assistant_tokenizer, base_tokenizer)

    def check(self, request: SoftCoTRequest) -> None:
        wanted = request.num_thought_tokens
        if wanted is not None and wanted != self.config.num_thought_tokens:
            raise invalid_request(
                f"softcot.num_thought_tokens: this server's projection was trained with "
                f"{self.config.num_thought_tokens} thought tokens, not {wanted}",
                "softcot.num_thought_tokens")

    def base_messages(self, messages: list[dict]) -> tuple[list[dict], str]:
        """The messages with the last user turn in the base template, and that turn's question."""
        users = [i for i, message in enumerate(messages) if message["role"] == "user"]
        if not users:
            raise invalid_request("messages: SoftCoT needs a user message (the question)", "messages")
        question = messages[users[-1]]["content"]
        rewritten = [dict(message) for message in messages]
        rewritten[users[-1]]["content"] = self.templates.base_user_content(question)
        return rewritten, question

    async def overrides(self, question: str, prompt_ids: list[int]):
        """SGLang's ``PositionalEmbeds`` for one base prompt: the thoughts at its placeholders."""
        from sglang.srt.managers.embed_types import PositionalEmbeds

        from softcot_plugin.templates import TemplateError

        try:
            base_positions = self.templates.placeholder_positions(self.base_tokenizer, prompt_ids)
            assistant_ids = self.templates.assistant_ids(self.assistant_tokenizer, question)
            assistant_positions = self.templates.placeholder_positions(self.assistant_tokenizer,
                                                                       assistant_ids)
        except TemplateError as error:
            raise invalid_request(f"messages: {error}", "messages") from None
        thoughts = await self.runner.thoughts(assistant_ids, assistant_positions)
        return PositionalEmbeds(embeds=thoughts, positions=base_positions)

    def close(self) -> None:
        self.runner.close()


def requested(body, service: SoftCoTService | None, endpoint_is_chat: bool) -> bool:
    """Whether a request asks for SoftCoT; a request this server cannot serve is a 400."""
    request: SoftCoTRequest | None = body.softcot
    if request is None or not request.enabled:
        return False
    if service is None:
        raise invalid_request("softcot: this server has no SoftCoT model (start it with "
                              "--softcot-assistant and --softcot-projection)", "softcot")
    if not endpoint_is_chat:
        raise invalid_request("softcot: only /v1/chat/completions supports SoftCoT", "softcot")
    service.check(request)
    return True


async def generate_with_overrides(engine, stream: bool = False, **kwargs):
    """``Engine.async_generate`` for a request with ``positional_embed_overrides``.

    SGLang 0.5.23's ``Engine.async_generate`` has no such argument, though its
    ``GenerateReqInput`` and scheduler do; this builds the input and hands it to the
    tokenizer manager as that method does. A whole output, or an async iterator of
    outputs when ``stream``.
    """
    from sglang.srt.managers.io_struct import GenerateReqInput

    obj = GenerateReqInput(stream=stream, **kwargs)
    generator = engine.tokenizer_manager.generate_request(obj, None)
    if stream:
        return generator
    return await generator.__anext__()
