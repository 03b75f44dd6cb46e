"""A guard that fails when device code makes the host wait for the device.

On CUDA, reading a device value on the host (``.item()``, ``bool()`` of a tensor,
``.tolist()``, a copy to the host), ops whose output size depends on values (``nonzero``,
boolean-mask indexing, ``unique``, ``masked_select``) and copies from pageable host memory
all wait for the GPU to drain: on the scheduling path that cancels the overlap scheduler's
overlap. :func:`no_host_sync` turns each into a :class:`HostSyncError`:

* everywhere, a PyTorch dispatch mode refuses those ops, and ``Tensor.tolist`` /
  ``Tensor.numpy`` are refused, even on CPU tensors, where they cost nothing, so a CPU test
  proves what the code would do on a GPU;
* a copy between host and device memory must be non-blocking and its host side pinned
  (:func:`transfer.to_device`; on a device that cannot pin, such as ``meta``, a host tensor
  that transfer.py marks as standing for pinned memory). A blocking copy, a copy of a
  pageable host tensor, an op that mixes a device tensor with a host tensor of one or more
  dimensions (an implicit pageable copy), and ``torch.tensor`` / ``torch.as_tensor`` of host
  data straight onto a device are refused. A CPU test with its device tensors on ``meta``
  therefore catches what CUDA's sync debug mode catches;
* on CUDA, PyTorch's own sync debug mode is set to ``"error"`` as well.

No SGLang import.
"""

from __future__ import annotations

import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sglang_soft_thinking.transfer import PINNED_STAND_IN

aten = torch.ops.aten


class HostSyncError(AssertionError):
    """Device code read a value back to the host, or otherwise waited for the device."""


# Ops whose result needs a value from the device on the host.
_SYNCING = {aten._local_scalar_dense, aten.nonzero, aten.masked_select, aten.unique_consecutive,
            aten._unique2, aten.unique_dim, aten.equal, aten.is_nonzero}
_COPIES = {aten._to_copy, aten.copy_, aten.copy, aten._copy_from, aten._copy_from_and_resize}


def _on_host(t: torch.Tensor) -> bool:
    return t.device.type == "cpu"


def _pinned(t: torch.Tensor) -> bool:
    return bool(getattr(t, PINNED_STAND_IN, False)) or t.is_pinned()


def _copy_problem(func, args, kwargs) -> str | None:
    """Why a host <-> device copy would wait, or None (a pinned, non-blocking copy)."""
    if func.overloadpacket is aten._to_copy:
        source, target = args[0], kwargs.get("device") or args[0].device
        target_is_host = torch.device(target).type == "cpu"
        host = source if _on_host(source) else None
    else:  # copy_(self=target, src=source, non_blocking)
        target, source = args[0], args[1]
        if not isinstance(source, torch.Tensor):
            return None
        target_is_host = _on_host(target)
        host = source if _on_host(source) else (target if target_is_host else None)
    if _on_host(source) == target_is_host:
        return None  # host to host, or device to device
    non_blocking = kwargs.get("non_blocking", len(args) > 2 and bool(args[2]))
    if not non_blocking:
        return f"{func} is a blocking copy between host and device"
    if host is not None and not _pinned(host):
        return f"{func} copies pageable (non-pinned) host memory"
    return None


def _mixes_host_tensor(args, kwargs) -> bool:
    """A device tensor and a host tensor of one or more dimensions in one op: the host one
    is copied to the device from pageable memory first (a 0-d host tensor is a scalar)."""
    tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    return (any(not _on_host(t) for t in tensors)
            and any(_on_host(t) and t.dim() > 0 for t in tensors))


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
        if func.overloadpacket in _COPIES:
            problem = _copy_problem(func, args, kwargs)
            if problem:
                raise HostSyncError(problem)
        elif _mixes_host_tensor(args, kwargs):
            raise HostSyncError(f"{func} mixes device tensors with a pageable host tensor (a blocking copy)")
        return func(*args, **kwargs)


def _refused(name: str):
    def method(self, *args, **kwargs):
        raise HostSyncError(f"Tensor.{name}() reads the tensor on the host")
    return method


def _host_data_refused(original, device_position: int):
    """``torch.tensor`` / ``torch.as_tensor`` that refuse to put host data on a device: the
    copy happens below PyTorch's dispatch, so the mode above never sees it."""
    def factory(data, *args, **kwargs):
        device = kwargs.get("device", args[device_position] if len(args) > device_position else None)
        if device is not None and torch.device(device).type != "cpu":
            raise HostSyncError(f"torch.{original.__name__}(..., device={device}) copies pageable host data")
        return original(data, *args, **kwargs)
    return factory


@contextlib.contextmanager
def no_host_sync():
    """Within the block, any op that would make the host wait raises HostSyncError."""
    saved = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}
    factories = {"tensor": torch.tensor, "as_tensor": torch.as_tensor}
    cuda = torch.cuda.is_available()
    previous = torch.cuda.get_sync_debug_mode() if cuda else None
    for name in saved:
        setattr(torch.Tensor, name, _refused(name))
    # torch.tensor takes its device by keyword only; torch.as_tensor also third.
    torch.tensor = _host_data_refused(factories["tensor"], 99)
    torch.as_tensor = _host_data_refused(factories["as_tensor"], 1)
    if cuda:
        torch.cuda.set_sync_debug_mode("error")
    try:
        with _Refuse():
            yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)
        torch.tensor, torch.as_tensor = factories["tensor"], factories["as_tensor"]
        if cuda:
            torch.cuda.set_sync_debug_mode(previous)
