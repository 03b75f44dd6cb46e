"""Start-up hook, imported from a ``.pth`` file in every Python process of the env.

SGLang's CPU path imports a few ops from ``sgl_kernel``, whose PyPI wheel is
built for CUDA only and fails to import without ``libcuda.so.1``. SGLang spawns
its scheduler processes, and they import ``sgl_kernel`` while unpickling their
entry function, before SGLang loads any plugin. The only place early enough in
every process is interpreter start-up, hence the ``.pth`` file.

On a machine without a GPU this module:

* installs an import hook that serves :mod:`sglang_soft_thinking.cpu.sgl_kernel_standin`
  under the name ``sgl_kernel``;
* sets ``SGLANG_USE_CPU_ENGINE=1`` unless the user set it, which is how SGLang
  0.5.23 selects its CPU platform.

Whether there is a GPU is read from the device files a GPU driver creates and a container
runtime passes in with the GPU (:data:`GPU_DEVICE_PATTERNS`): NVIDIA's ``/dev/nvidia*``,
AMD ROCm's ``/dev/kfd`` (its ``sgl_kernel`` is a ROCm build, which the stand-in must not
shadow either) and WSL2's ``/dev/dxg``. Not from whether ``libcuda.so.1`` loads: a GPU
container whose driver library sits on an unusual path would run on the CPU without a
word, and a CPU container that ships the CUDA libraries would get no stand-in. Listing
``/dev`` costs microseconds; ``nvidia-smi`` would cost a process per Python start.
Any such file means "GPU": the stand-in is only for machines that surely have none.

The stand-in says so once per process, when SGLang imports ``sgl_kernel`` through it (a
warning on ``logging``; with logging not set up yet, one line on stderr), so that
processes that never import SGLang stay quiet. It imports only the standard library, so
every Python start in the environment pays well under a millisecond.
``SOFTTHINK_NO_CPU_STANDIN=1`` turns it off.

Delete this module once SGLang ships a CPU build of its kernels that imports
without CUDA.
"""

from __future__ import annotations

import fnmatch
import importlib.abc
import importlib.machinery
import logging
import os
import sys

STANDIN_MODULE = "sglang_soft_thinking.cpu.sgl_kernel_standin"
# Device files whose presence in /dev means a GPU: NVIDIA, AMD ROCm, WSL2.
GPU_DEVICE_PATTERNS = ("nvidia*", "kfd", "dxg")
ACTIVE_MESSAGE = ("soft thinking: no GPU device file in /dev (%s), so SGLang runs on its CPU "
                  "engine with a pure-torch sgl_kernel stand-in (SOFTTHINK_NO_CPU_STANDIN=1 "
                  "turns it off)")


def gpu_device_files(dev_dir: str = "/dev") -> list[str]:
    """The GPU device files in ``dev_dir`` (empty: no GPU on this machine)."""
    try:
        names = os.listdir(dev_dir)
    except OSError:
        return []
    return sorted(name for name in names
                  if any(fnmatch.fnmatchcase(name, pattern) for pattern in GPU_DEVICE_PATTERNS))


def wants_standin(environ=os.environ, dev_dir: str = "/dev") -> bool:
    """Whether this process should get the CPU stand-in: no GPU, and not switched off."""
    return environ.get("SOFTTHINK_NO_CPU_STANDIN") != "1" and not gpu_device_files(dev_dir)


class _StandinLoader(importlib.abc.Loader):
    def create_module(self, spec):
        from sglang_soft_thinking.cpu import sgl_kernel_standin

        logging.getLogger(__name__).warning(
            ACTIVE_MESSAGE, ", ".join("/dev/" + p for p in GPU_DEVICE_PATTERNS))
        return sgl_kernel_standin.make_module(spec.name)

    def exec_module(self, module):
        pass


class SglKernelStandinFinder(importlib.abc.MetaPathFinder):
    """Resolves ``sgl_kernel`` to the pure-torch stand-in.

    Its submodules (``sgl_kernel.scalar_type``, ``sgl_kernel.mamba``, ...) are not
    found, as on a machine without sgl_kernel; SGLang has fallbacks for those.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "sgl_kernel":
            return None
        return importlib.machinery.ModuleSpec(fullname, _StandinLoader(), is_package=True)


def install() -> None:
    if any(isinstance(f, SglKernelStandinFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, SglKernelStandinFinder())
    os.environ.setdefault("SGLANG_USE_CPU_ENGINE", "1")


def is_active() -> bool:
    return any(isinstance(f, SglKernelStandinFinder) for f in sys.meta_path)


if wants_standin():
    install()
