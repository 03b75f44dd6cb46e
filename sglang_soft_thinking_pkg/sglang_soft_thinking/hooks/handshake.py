"""Seam: the start-up handshake. Each scheduler tells the engine whether it runs soft thinking.

A server in front of the engine must not answer a soft-thinking request plainly, so it
has to know whether the engine's schedulers run this plugin's hooks: the plugin may be
switched off (``SOFTTHINK_DISABLE=1``) or never loaded (an ``SGLANG_PLUGINS`` allow-list
without ``soft_thinking``). The scheduler's start-up report answers it: two AFTER hooks,
SGLang 0.5.23, add :data:`INIT_INFO_KEY` to it:

* ``Scheduler.get_init_info``, in each scheduler process: ``{"enabled": bool, "reason": str | None}``;
* ``DataParallelController.get_init_info``, with ``--dp-size`` > 1, whose report to the
  engine keeps only the fields it knows: the merge of its schedulers' reports (enabled
  only when every one is).

The engine keeps the reports (``Engine._scheduler_init_result.scheduler_infos``) and its
``get_server_info()`` (stock ``/server_info``) shows the first. A scheduler that never
loaded the plugin adds nothing, which :func:`off_reason` reads as "off".

Deletable when SGLang lets a plugin publish its state to the engine.
"""

from __future__ import annotations

SCHEDULER_TARGET = "sglang.srt.managers.scheduler.Scheduler.get_init_info"
DP_CONTROLLER_TARGET = ("sglang.srt.managers.data_parallel_controller."
                        "DataParallelController.get_init_info")
INIT_INFO_KEY = "soft_thinking"
PLUGIN_NAME = "soft_thinking"  # the entry point's name, what SGLANG_PLUGINS lists


def report(reason: str | None) -> dict:
    """What a scheduler adds to its start-up report: ``reason`` None means it runs soft thinking."""
    return {"enabled": reason is None, "reason": reason}


def merge(reports: list[dict | None]) -> dict:
    """One report for several schedulers: enabled only when each of them is."""
    if not reports:
        return report("no scheduler reported on soft thinking")
    for item in reports:
        if not isinstance(item, dict):
            return report("a scheduler did not load the soft-thinking plugin")
        if not item.get("enabled"):
            return report(item.get("reason") or "the soft-thinking plugin is off in a scheduler")
    return report(None)


def off_reason(scheduler_infos: list[dict], plugins_allowed: str | None = None) -> str | None:
    """Why the engine whose schedulers reported ``scheduler_infos`` runs without soft
    thinking, or None when every one of them runs it.

    ``plugins_allowed`` is ``SGLANG_PLUGINS`` as the engine saw it, named in the reason when
    a scheduler reported nothing.
    """
    if not scheduler_infos:
        return "the engine's schedulers reported nothing about soft thinking"
    for info in scheduler_infos:
        status = info.get(INIT_INFO_KEY)
        if not isinstance(status, dict):
            if plugins_allowed and PLUGIN_NAME not in {p.strip() for p in plugins_allowed.split(",")}:
                return (f"SGLANG_PLUGINS={plugins_allowed} leaves out the soft-thinking plugin "
                        f"('{PLUGIN_NAME}'), so the engine does not load it")
            return "the engine did not load the soft-thinking plugin"
        if not status.get("enabled"):
            return status.get("reason") or "the soft-thinking plugin is off in the engine"
    return None


def register(registry, hook_type, reason: str | None) -> None:
    """Report ``reason`` (None: soft thinking runs) from every scheduler of this process."""

    def after_scheduler_info(result, *args, **kwargs):
        result[INIT_INFO_KEY] = report(reason)
        return result

    def after_controller_info(result, controller, *args, **kwargs):
        # The controller's own schedulers' reports, as it received them (SGLang 0.5.23).
        with controller._scheduler_init_info_lock:
            infos = list(controller._scheduler_init_infos)
        result[INIT_INFO_KEY] = merge([info.get(INIT_INFO_KEY) for info in infos])
        return result

    registry.register(SCHEDULER_TARGET, after_scheduler_info, hook_type.AFTER)
    registry.register(DP_CONTROLLER_TARGET, after_controller_info, hook_type.AFTER)
