"""The SGLang plugin entry point: every hook this package installs is registered here."""

from __future__ import annotations

import logging
import os

# verify_hooks and missing_hooks live below the hooks (registration.py); named here too,
# as the plugin's public check.
from sglang_soft_thinking.registration import Recording, missing_hooks, record_failure, verify_hooks

logger = logging.getLogger(__name__)

SUPPORTED_SGLANG_VERSION = "0.5.23"
_registered = False
DISABLED_REASON = "SOFTTHINK_DISABLE=1 switched the soft-thinking plugin off in the engine"


def check_version() -> None:
    """Fail loudly when the installed SGLang is not the one the hooks were written for."""
    import sglang

    if sglang.__version__ != SUPPORTED_SGLANG_VERSION:
        raise RuntimeError(
            f"sglang-soft-thinking supports SGLang {SUPPORTED_SGLANG_VERSION}, found "
            f"{sglang.__version__}; install sglang=={SUPPORTED_SGLANG_VERSION}"
        )


def register() -> None:
    """Called by SGLang's ``load_plugins()`` in every SGLang process; safe to call twice.

    SGLang logs, and otherwise ignores, a plugin that raises here or a hook it cannot
    apply; :func:`verify_hooks`, called at start-up in the server and in every scheduler,
    turns either into an error that stops the start.
    """
    global _registered
    if _registered:
        return
    _registered = True
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    try:
        check_version()
        _register_all(Recording(HookRegistry), HookType)
    except Exception as error:
        record_failure(error)
        # So that the start stops rather than serving soft-thinking requests plainly.
        HookRegistry.register("sglang.srt.server_args.ServerArgs.resolve_once", _refuse_start, HookType.AFTER)
        raise


def _refuse_start(result, *args, **kwargs):
    verify_hooks()


def _register_all(registry, hook_type) -> None:
    from sglang_soft_thinking.cpu import boot
    from sglang_soft_thinking.hooks import (
        batch,
        decode_graphs,
        embedding,
        handshake,
        hidden,
        prefix_cache,
        requests,
        results,
        sampler,
        server_args,
    )

    if boot.is_active():
        from sglang_soft_thinking.cpu import server_defaults, tensor_parallel

        server_defaults.register(registry, hook_type)
        tensor_parallel.register(registry, hook_type)
    if os.environ.get("SOFTTHINK_DISABLE") == "1":
        logger.warning("soft thinking: SOFTTHINK_DISABLE=1, the engine runs without it and "
                       "refuses soft-thinking requests")
        # Off, but never silently: soft-thinking requests are refused (a 400), and the
        # schedulers tell the engine why (a server in front of it refuses them too).
        requests.register_refusal(registry, hook_type, DISABLED_REASON)
        handshake.register(registry, hook_type, DISABLED_REASON)
        # These hooks must be in place as much as the full set: check them at start-up.
        registry.register(server_args.TARGET, _refuse_start, hook_type.AFTER)
        return
    for seam in (server_args, requests, batch, embedding, hidden, decode_graphs, sampler, prefix_cache, results):
        seam.register(registry, hook_type)
    handshake.register(registry, hook_type, None)


__all__ = ["register", "check_version", "missing_hooks", "verify_hooks"]
