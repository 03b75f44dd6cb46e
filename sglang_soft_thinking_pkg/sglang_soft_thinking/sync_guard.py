"""A guard that fails when device code makes the host wait for the device.

On CUDA, reading a device value on the host (``.item()``, ``bool()`` of a tensor,
``.tolist()``, a copy to the host), ops whose output size depends on values (``nonzero``,
boolean-mask indexing, ``unique``, ``masked_select``) and copies from pageable host memory
all wait for the GPU to drain: on the scheduling path that cancels the overlap scheduler's
overlap. :func:`no_host_sync` turns each into a :class:`HostSyncError`:

* everywhere, a PyTorch dispatch mode refuses those ops, and ``Tensor.tolist`` /
  ``Tensor.numpy`` are refused, even on CPU tensors, where they cost nothing, so a CPU test
  proves what the code would do on a GPU;
* on CUDA, PyTorch's own sync debug mode is set to ``"error"`` as well.

No SGLang import.
"""

from __future__ import annotations

import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


class HostSyncError(AssertionError):
    """Device code read a value back to the host, or otherwise waited for the device."""


# Ops whose result needs a value from the device on the host.
_SYNCING = {aten._local_scalar_dense, aten.nonzero, aten.masked_select, aten.unique_consecutive,
            aten._unique2, aten.unique_dim, aten.equal, aten.is_nonzero}


class _Refuse(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket in _SYNCING:
            raise HostSyncError(f"{func} reads a device value on the host")
        if func.overloadpacket in (aten.index, aten.index_put, aten.index_put_) and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or ())):
            raise HostSyncError(f"{func} with a boolean mask needs the mask's count on the host")
        if func.overloadpacket is aten.repeat_interleave and kwargs.get("output_size") is None:
            raise HostSyncError("repeat_interleave without output_size reads its counts on the host")
        return func(*args, **kwargs)


def _refused(name: str):
    def method(self, *args, **kwargs):
        raise HostSyncError(f"Tensor.{name}() reads the tensor on the host")
    return method


@contextlib.contextmanager
def no_host_sync():
    """Within the block, any op that would make the host wait raises HostSyncError."""
    saved = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}
    cuda = torch.cuda.is_available()
    previous = torch.cuda.get_sync_debug_mode() if cuda else None
    for name in saved:
        setattr(torch.Tensor, name, _refused(name))
    if cuda:
        torch.cuda.set_sync_debug_mode("error")
    try:
        with _Refuse():
            yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)
        if cuda:
            torch.cuda.set_sync_debug_mode(previous)
