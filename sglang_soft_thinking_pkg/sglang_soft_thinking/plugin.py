"""The SGLang plugin entry point: every hook this package installs is registered here."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

SUPPORTED_SGLANG_VERSION = "0.5.23"
_registered = False


def check_version() -> None:
    """Fail loudly when the installed SGLang is not the one the hooks were written for."""
    import sglang

    if sglang.__version__ != SUPPORTED_SGLANG_VERSION:
        raise RuntimeError(
            f"sglang-soft-thinking supports SGLang {SUPPORTED_SGLANG_VERSION}, found "
            f"{sglang.__version__}; install sglang=={SUPPORTED_SGLANG_VERSION}"
        )


def register() -> None:
    """Called by SGLang's ``load_plugins()`` in every SGLang process; safe to call twice."""
    global _registered
    if _registered:
        return
    _registered = True
    check_version()

    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    from sglang_soft_thinking.cpu import boot
    from sglang_soft_thinking.hooks import batch, embedding, prefix_cache, requests, sampler, server_args

    if boot.is_active():
        from sglang_soft_thinking.cpu import server_defaults

        server_defaults.register(HookRegistry, HookType)
    if os.environ.get("SOFTTHINK_DISABLE") == "1":
        logger.warning("soft thinking: SOFTTHINK_DISABLE=1, the engine runs without it")
        return
    for seam in (server_args, requests, batch, embedding, sampler, prefix_cache):
        seam.register(HookRegistry, HookType)
