"""The SGLang plugin entry point: every hook this package installs is registered here."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

SUPPORTED_SGLANG_VERSION = "0.5.23"
_registered = False
_targets: list[str] = []  # every target this package registered a hook on
_error: str | None = None  # why registering failed, if it did
DISABLED_REASON = "SOFTTHINK_DISABLE=1 switched the soft-thinking plugin off in the engine"


def check_version() -> None:
    """Fail loudly when the installed SGLang is not the one the hooks were written for."""
    import sglang

    if sglang.__version__ != SUPPORTED_SGLANG_VERSION:
        raise RuntimeError(
            f"sglang-soft-thinking supports SGLang {SUPPORTED_SGLANG_VERSION}, found "
            f"{sglang.__version__}; install sglang=={SUPPORTED_SGLANG_VERSION}"
        )


class _Recording:
    """SGLang's hook registry, noting each target this package hooks."""

    def __init__(self, registry):
        self._registry = registry

    def register(self, target, hook, hook_type):
        _targets.append(target)
        self._registry.register(target, hook, hook_type)


def register() -> None:
    """Called by SGLang's ``load_plugins()`` in every SGLang process; safe to call twice.

    SGLang logs, and otherwise ignores, a plugin that raises here or a hook it cannot
    apply; :func:`verify_hooks`, called at start-up in the server and in every scheduler,
    turns either into an error that stops the start.
    """
    global _registered, _error
    if _registered:
        return
    _registered = True
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    try:
        check_version()
        _register_all(_Recording(HookRegistry), HookType)
    except Exception as error:
        _error = f"{type(error).__name__}: {error}"
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
    for seam in (server_args, requests, batch, embedding, decode_graphs, sampler, prefix_cache, results):
        seam.register(registry, hook_type)
    handshake.register(registry, hook_type, None)


def missing_hooks() -> list[str]:
    """The targets this package hooked that SGLang's registry did not patch."""
    from sglang.srt.plugins.hook_registry import HookRegistry

    return sorted({target for target in _targets if target not in HookRegistry._patched})


def verify_hooks() -> None:
    """Stop with a message naming what is not in place: a registration that failed, or a
    hook SGLang could not apply (a renamed target, say)."""
    if _error is not None:
        raise RuntimeError(f"soft thinking: the plugin failed to register ({_error}); start with "
                           "SOFTTHINK_DISABLE=1 to run SGLang without soft thinking")
    missing = missing_hooks()
    if missing:
        raise RuntimeError("soft thinking: these hooks are not in place (SGLang could not apply "
                           "them; see its log): " + ", ".join(missing))
