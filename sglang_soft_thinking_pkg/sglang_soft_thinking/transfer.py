"""Host <-> device copies on the scheduling path that never make the host wait.

On CUDA, a copy from ordinary (pageable) host memory to the device waits until the stream
has drained, which would cancel the overlap scheduler's overlap on every batch that admits
a request. :func:`to_device` copies from pinned memory without blocking; PyTorch's
pinned-memory allocator keeps the host buffer alive until the copy has run. On a CPU the
copy is a plain conversion. On a device that cannot pin host memory (``meta``, in tests)
the host buffer is marked as standing for pinned memory (:data:`PINNED_STAND_IN`), so the
guard of sync_guard.py tells this path from a pageable copy there too. No SGLang import.
"""

from __future__ import annotations

import torch

# Attribute set on a host tensor that would have been pinned had its device allowed it.
PINNED_STAND_IN = "_soft_thinking_pinned_stand_in"


def to_device(values, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """``values`` (nested lists of numbers) as a tensor on ``device``, without a wait."""
    device = torch.device(device)
    host = torch.tensor(values, dtype=dtype)
    if device.type == "cpu":
        return host
    if device.type == "cuda":
        host = host.pin_memory()
    else:
        setattr(host, PINNED_STAND_IN, True)
    return host.to(device, non_blocking=True)


class HostCopy:
    """A device tensor's copy on the host, started now without a wait and read later
    (where SGLang already waits for the step's sampled ids). ``wait()`` returns it."""

    def __init__(self, tensor: torch.Tensor):
        if tensor.device.type == "cuda":
            self._host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._host.copy_(tensor, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host, self._event = tensor, None

    def wait(self) -> torch.Tensor:
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        return self._host
