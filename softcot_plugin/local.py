"""SoftCoT in this process with transformers: the evaluation CLI's ``--in-process`` sampler."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from softcot_plugin.checkpoint import check_fits, load_checkpoint
from softcot_plugin.templates import TASK_INSTRUCTIONS, chat_ids, without_thoughts
from softcot_plugin.thoughts import assistant_hidden, inject, load_frozen, pick_device

logger = logging.getLogger(__name__)


class LocalSampler:
    """k answers per question from the base model, with or without the projected thoughts."""

    def __init__(self, base: Path, assistant: Path | None, projection_dir: Path | None, task: str):
        device = pick_device()
        self.base, self.tokenizer = load_frozen(base, hidden_only=False, device=device)
        self.plain_instruction = without_thoughts(TASK_INSTRUCTIONS[task][1])
        self.config = None
        if projection_dir is not None:
            self.config, self.projection = load_checkpoint(projection_dir)
            check_fits(self.config, "base", self.base.config, self.tokenizer)
            self.assistant, self.assistant_tokenizer = load_frozen(assistant, hidden_only=True,
                                                                   device=device)
            check_fits(self.config, "assistant", self.assistant.config, self.assistant_tokenizer)
            self.projection.to(device).eval()

    @torch.no_grad()
    def sample(self, question: str, use_softcot: bool, k: int, temperature: float,
               max_tokens: int) -> list[str]:
        embeds = self._prompt_embeds(question, use_softcot)           # [1, T, d]
        embeds = embeds.expand(k, -1, -1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        out = self.base.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_tokens,
                                 pad_token_id=self.tokenizer.eos_token_id, **sampling)
        return [self.tokenizer.decode(row, skip_special_tokens=True) for row in out]

    def _prompt_embeds(self, question: str, use_softcot: bool) -> torch.Tensor:
        device = next(self.base.parameters()).device
        if not use_softcot:
            ids = chat_ids(self.tokenizer, [{"role": "user",
                                             "content": self.plain_instruction.format(question=question)}])
            return self.base.get_input_embeddings()(torch.tensor([ids], device=device))
        templates = self.config.templates
        ids = templates.base_ids(self.tokenizer, question)
        assistant_ids = templates.assistant_ids(self.assistant_tokenizer, question)
        hidden = assistant_hidden(self.assistant, [assistant_ids],
                                  [templates.placeholder_positions(self.assistant_tokenizer, assistant_ids)],
                                  self.assistant_tokenizer.eos_token_id)
        thoughts = self.projection(hidden, out_dtype=self.base.dtype)  # [1, N, d]
        embeds = self.base.get_input_embeddings()(torch.tensor([ids], device=device))
        return inject(embeds, [templates.placeholder_positions(self.tokenizer, ids)], thoughts)
