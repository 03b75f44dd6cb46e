"""The SGLang plugin entry point: every hook this package installs is registered here."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def register() -> None:
    """Called by SGLang's ``load_plugins()`` in every SGLang process; safe to call twice."""
    from sglang_soft_thinking.cpu import boot

    if boot.is_active():
        from sglang_soft_thinking.cpu import server_defaults

        server_defaults.register()
