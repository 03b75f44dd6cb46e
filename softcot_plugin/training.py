"""SoftCoT training: both models frozen, the projection trained on the answer tokens' loss.

:class:`SoftCoTTrainer` holds the models, the projection and the optimizer; one
:meth:`~SoftCoTTrainer.step` is one optimizer update on one batch. Its state (epochs done,
optimizer, sampling order) is saved with each checkpoint, so ``--resume`` continues
where the last finished epoch stopped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from softcot_plugin.checkpoint import SoftCoTConfig, save_checkpoint
from softcot_plugin.data import EncodedExample
from softcot_plugin.projection import SoftCoTProjection
from softcot_plugin.thoughts import assistant_hidden, inject, pad_right

logger = logging.getLogger(__name__)
STATE_FILE = "trainer_state.pt"
IGNORE = -100


class SoftCoTTrainer:
    def __init__(self, assistant, base, projection: SoftCoTProjection, *, assistant_pad_id: int,
                 base_pad_id: int, lr: float, seed: int):
        self.assistant, self.base, self.projection = assistant, base, projection
        self.assistant_pad_id, self.base_pad_id = assistant_pad_id, base_pad_id
        self.device = next(base.parameters()).device
        self.base_dtype = next(base.parameters()).dtype
        self.projection.to(self.device)
        self.optimizer = torch.optim.AdamW(projection.parameters(), lr=lr, weight_decay=0.0)
        self.seed = seed
        self.epochs_done = 0

    def thoughts(self, batch: list[EncodedExample]) -> torch.Tensor:
        """Projected thoughts ``[B, N, d_base]``, differentiable in the projection only."""
        hidden = assistant_hidden(self.assistant, [e.assistant_ids for e in batch],
                                  [e.assistant_positions for e in batch], self.assistant_pad_id)
        return self.projection(hidden, out_dtype=self.base_dtype)

    def loss(self, batch: list[EncodedExample]) -> torch.Tensor:
        """Mean cross-entropy over the batch's answer tokens (prompt and padding ignored)."""
        ids, mask = pad_right([e.base_ids for e in batch], self.base_pad_id, self.device)
        labels = ids.masked_fill(mask == 0, IGNORE)
        for row, example in enumerate(batch):
            labels[row, :example.num_prompt_tokens] = IGNORE
        embeds = self.base.get_input_embeddings()(ids)                       # [B, T, d]
        embeds = inject(embeds, [e.base_positions for e in batch], self.thoughts(batch))
        hidden = self.base.get_decoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        # Position t predicts token t + 1; only rows that predict an answer token need logits.
        targets = labels[:, 1:]
        keep = targets != IGNORE                                             # [B, T - 1]
        logits = self.base.get_output_embeddings()(hidden[:, :-1][keep])    # [M, V]
        return F.cross_entropy(logits.float(), targets[keep])

    def step(self, batch: list[EncodedExample]) -> float:
        self.projection.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(batch)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def evaluate(self, examples: list[EncodedExample], batch_size: int) -> float:
        """Mean of the batch losses over ``examples``."""
        self.projection.eval()
        losses = [self.loss(examples[i:i + batch_size]).item()
                  for i in range(0, len(examples), batch_size)]
        return sum(losses) / len(losses)

    def epoch_batches(self, examples: list[EncodedExample], batch_size: int
                      ) -> Iterator[list[EncodedExample]]:
        """The next epoch's batches; the order depends only on the seed and the epoch."""
        order = list(range(len(examples)))
        random.Random(self.seed * 1_000_003 + self.epochs_done).shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start:start + batch_size]]

    def save(self, directory: Path, config: SoftCoTConfig) -> None:
        """The checkpoint (projection + JSON) and the trainer's state beside it."""
        save_checkpoint(directory, self.projection, config)
        torch.save({"epochs_done": self.epochs_done, "seed": self.seed,
                    "optimizer": self.optimizer.state_dict()}, directory / STATE_FILE)

    def restore(self, directory: Path, projection: SoftCoTProjection) -> None:
        """Continue from a saved checkpoint: its projection weights, optimizer and epoch count."""
        state = torch.load(directory / STATE_FILE, map_location=self.device, weights_only=True)
        self.projection.load_state_dict(projection.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.epochs_done, self.seed = state["epochs_done"], state["seed"]
