"""Choose SGLang's CPU options for the user on a machine without CUDA.

Patches ``ServerArgs.resolve_once`` (SGLang 0.5.23) with a BEFORE hook: options
the user left unset get the values SGLang's CPU path needs without AMX:
``device="cpu"`` and ``attention_backend="torch_native"``, a KV pool of
``CPU_DEFAULT_MAX_TOTAL_TOKENS`` tokens (said in the start-up log), and ``sleep_on_idle``
on. The overlap scheduler stays SGLang's default (on): it runs on the CPU too.
Options the user set are kept. Registered only while the ``sgl_kernel`` stand-in
is active (see :mod:`.boot`); delete it together with the stand-in.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

TARGET = "sglang.srt.server_args.ServerArgs.resolve_once"
# KV-cache tokens when the user gives no --max-total-tokens. On a CPU SGLang sizes the pool
# from free memory, which on a 24 GiB machine held 17 GB for a 135M model; this is about
# 1.5 GB for that model and a few GB for a 7B one.
CPU_DEFAULT_MAX_TOTAL_TOKENS = 32768


def apply_cpu_defaults(server_args) -> None:
    if server_args.device is None:
        server_args.device = "cpu"
    if server_args.device != "cpu":
        return
    if server_args.attention_backend is None:
        server_args.attention_backend = "torch_native"
    if server_args.max_total_tokens is None:
        server_args.max_total_tokens = CPU_DEFAULT_MAX_TOTAL_TOKENS
        logger.info("CPU default: a KV pool of %d tokens (--max-total-tokens changes it)",
                    CPU_DEFAULT_MAX_TOTAL_TOKENS)
    # An idle scheduler otherwise busy-polls a whole core, a large share of a small CPU
    # machine; sleeping on its sockets adds no delay when a request arrives.
    server_args.sleep_on_idle = True


def _before_resolve(server_args, *args, **kwargs):
    if not getattr(server_args, "_resolution_finished", False):
        apply_cpu_defaults(server_args)


def register(registry, hook_type) -> None:
    registry.register(TARGET, _before_resolve, hook_type.BEFORE)
