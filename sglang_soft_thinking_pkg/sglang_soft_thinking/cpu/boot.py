"""Start-up hook, imported from a ``.pth`` file in every Python process of the env.

SGLang's CPU path imports a few ops from ``sgl_kernel``, whose PyPI wheel is
built for CUDA only and fails to import without ``libcuda.so.1``. SGLang spawns
its scheduler processes, and they import ``sgl_kernel`` while unpickling their
entry function, before SGLang loads any plugin. The only place early enough in
every process is interpreter start-up, hence the ``.pth`` file.

On a machine without a CUDA driver this module:

* installs an import hook that serves :mod:`sglang_soft_thinking.cpu.sgl_kernel_standin`
  under the name ``sgl_kernel``;
* sets ``SGLANG_USE_CPU_ENGINE=1`` unless the user set it, which is how SGLang
  0.5.23 selects its CPU platform.

With a CUDA driver it does nothing. It imports only the standard library, so
every Python start in the environment pays well under a millisecond.
``SOFTTHINK_NO_CPU_STANDIN=1`` turns it off.

Delete this module once SGLang ships a CPU build of its kernels that imports
without CUDA.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import importlib.machinery
import os
import sys

STANDIN_MODULE = "sglang_soft_thinking.cpu.sgl_kernel_standin"


def has_cuda_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


class _StandinLoader(importlib.abc.Loader):
    def create_module(self, spec):
        from sglang_soft_thinking.cpu import sgl_kernel_standin

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


if os.environ.get("SOFTTHINK_NO_CPU_STANDIN") != "1" and not has_cuda_driver():
    install()
