"""Choose SGLang's CPU options for the user on a machine without CUDA.

Patches ``ServerArgs.resolve_once`` (SGLang 0.5.23) with a BEFORE hook: options
the user left unset get the values SGLang's CPU path needs without AMX:
``device="cpu"`` and ``attention_backend="torch_native"``, and ``sleep_on_idle``
on. The overlap scheduler stays SGLang's default (on): it runs on the CPU too.
Options the user set are kept. Registered only while the ``sgl_kernel`` stand-in
is active (see :mod:`.boot`); delete it together with the stand-in.
"""

from __future__ import annotations

TARGET = "sglang.srt.server_args.ServerArgs.resolve_once"


def apply_cpu_defaults(server_args) -> None:
    if server_args.device is None:
        server_args.device = "cpu"
    if server_args.device != "cpu":
        return
    if server_args.attention_backend is None:
        server_args.attention_backend = "torch_native"
    # An idle scheduler otherwise busy-polls a whole core, a large share of a small CPU
    # machine; sleeping on its sockets adds no delay when a request arrives.
    server_args.sleep_on_idle = True


def _before_resolve(server_args, *args, **kwargs):
    if not getattr(server_args, "_resolution_finished", False):
        apply_cpu_defaults(server_args)


def register(registry, hook_type) -> None:
    registry.register(TARGET, _before_resolve, hook_type.BEFORE)
