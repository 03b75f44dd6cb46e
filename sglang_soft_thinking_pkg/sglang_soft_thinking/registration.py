"""What the plugin registered with SGLang's hook registry, and the start-up check on it.

Below both ``plugin`` (which registers the hooks) and the hooks (which run the check at
start-up), so that neither imports the other. No SGLang import at module level.
"""

from __future__ import annotations

_targets: list[str] = []  # every target this package registered a hook on
_error: str | None = None  # why registering failed, if it did


class Recording:
    """SGLang's hook registry, noting each target this package hooks."""

    def __init__(self, registry):
        self._registry = registry

    def register(self, target, hook, hook_type):
        _targets.append(target)
        self._registry.register(target, hook, hook_type)


def record_failure(error: BaseException) -> None:
    """Remember why registering failed, for :func:`verify_hooks` to report."""
    global _error
    _error = f"{type(error).__name__}: {error}"


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
