"""The one trained part of SoftCoT: a linear map from the assistant's hidden space to the base model's embeddings."""

from __future__ import annotations

import torch
from torch import nn


class SoftCoTProjection(nn.Module):
    """``Linear(d_assistant, d_base)`` whose weights stay float32 whatever the models' dtype.

    Small updates to weights kept in bfloat16 round away (the reference trains them so);
    here the master weights are float32, inputs are cast up and outputs cast to ``out_dtype``.
    """

    def __init__(self, d_assistant: int, d_base: int):
        super().__init__()
        self.linear = nn.Linear(d_assistant, d_base, dtype=torch.float32)

    @property
    def d_assistant(self) -> int:
        return self.linear.in_features

    @property
    def d_base(self) -> int:
        return self.linear.out_features

    def forward(self, hidden: torch.Tensor, out_dtype: torch.dtype | None = None) -> torch.Tensor:
        """``[..., d_assistant]`` hidden states to ``[..., d_base]`` thought embeddings."""
        thoughts = self.linear(hidden.to(self.linear.weight.device, torch.float32))
        return thoughts if out_dtype is None else thoughts.to(out_dtype)
