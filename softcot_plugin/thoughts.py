"""Soft thoughts: the assistant's hidden states at the placeholders, and their injection into the base prompt.

Shared by training, the in-process evaluation and the server, so all three compute the
thoughts the same way: the assistant's last-layer hidden states (after its final norm,
as ``AutoModel`` returns them) at the N placeholder positions, then the projection.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when present, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_frozen(path: Path | str, *, hidden_only: bool, device: torch.device,
                dtype: torch.dtype = torch.float32):
    """A frozen model in eval mode and its tokenizer.

    ``hidden_only`` loads the bare transformer (``AutoModel``), enough for the assistant,
    whose language-model head is never used.
    """
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    loader = AutoModel if hidden_only else AutoModelForCausalLM
    model = loader.from_pretrained(str(path), dtype=dtype).to(device).eval()
    model.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return model, tokenizer


def pad_right(sequences: list[list[int]], pad_id: int, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids ``[B, T]`` and their attention mask (causal models ignore the pads)."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, :len(sequence)] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def assistant_hidden(assistant, sequences: list[list[int]], positions: list[list[int]],
                     pad_id: int) -> torch.Tensor:
    """Last-layer hidden states at each sequence's placeholder positions: ``[B, N, d_assistant]``."""
    device = next(assistant.parameters()).device
    ids, mask = pad_right(sequences, pad_id, device)
    hidden = assistant(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, T, d]
    index = torch.tensor(positions, dtype=torch.long, device=device)          # [B, N]
    return torch.gather(hidden, 1, index[..., None].expand(-1, -1, hidden.shape[-1]))


def inject(embeds: torch.Tensor, positions: list[list[int]], thoughts: torch.Tensor) -> torch.Tensor:
    """``embeds`` ``[B, T, d]`` with row b's ``positions[b]`` replaced by ``thoughts[b]`` ``[N, d]``.

    Out of place, so gradients flow into ``thoughts``.
    """
    rows = torch.arange(len(positions), device=embeds.device)[:, None].expand(-1, thoughts.shape[1])
    cols = torch.tensor(positions, dtype=torch.long, device=embeds.device)
    out = embeds.clone()
    out[rows, cols] = thoughts.to(embeds.dtype)
    return out
