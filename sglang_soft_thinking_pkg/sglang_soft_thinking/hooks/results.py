"""Seam: step results. A request whose step went wrong is aborted with an error, alone.

A fault in our code, or a check that fails (an input that was not mixed, a rank whose
soft state drifted), must cost the request it concerns, never the scheduler and so the
server. :func:`fail_request` ends one request with SGLang's own abort (HTTP 500 with a
message naming soft thinking; the request runs one more step, as any aborted request does,
and its KV is released by SGLang's usual path). A step the device found wrong reaches the
host as an ``error`` record; one hook turns it into that abort:

* ``SchedulerBatchResultProcessor._maybe_collect_customized_info`` (AFTER), SGLang 0.5.23,
  which copies each request's record of the step onto the request.

Deletable when SGLang offers per-request error reporting to plugins.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from sglang_soft_thinking.output import ERROR, META_INFO_KEY
from sglang_soft_thinking.runtime import FAILED_ATTR, FAULT_ATTR

logger = logging.getLogger(__name__)

COLLECT_TARGET = ("sglang.srt.managers.scheduler_components.batch_result_processor."
                  "SchedulerBatchResultProcessor._maybe_collect_customized_info")
MESSAGE_PREFIX = "soft thinking:"


def fail_request(req, reason: str) -> None:
    """Abort ``req`` with an error naming soft thinking; from now on it is a plain request
    to the plugin (it is not sampled or mixed as a soft one)."""
    from sglang.srt.managers.schedule_batch import FINISH_ABORT

    if getattr(req, FAILED_ATTR, None):
        return
    setattr(req, FAILED_ATTR, reason)
    logger.error("soft thinking: request %s aborted: %s", req.rid, reason)
    if not req.finished():
        req.to_finish = FINISH_ABORT(f"{MESSAGE_PREFIX} {reason}", HTTPStatus.INTERNAL_SERVER_ERROR,
                                     "InternalServerError")


def note_fault(req, reason: str) -> None:
    """A fault this process met for ``req`` before its step was sampled. The request is
    not aborted here: its batch row is flagged (plan.BatchPlan.fault_rows), every
    tensor-parallel rank learns of the flag in the step's agreement (agreement.py), and
    each aborts it from the step's error record, at the same point of the same step, so
    no rank runs a batch the others do not. ``reason`` names the fault in the abort."""
    if getattr(req, FAULT_ATTR, None) is None and not getattr(req, FAILED_ATTR, None):
        logger.error("soft thinking: request %s met a fault: %s", req.rid, reason)
        setattr(req, FAULT_ATTR, reason)


def _after_collect(result, processor, i, req, logits_output, *args, **kwargs):
    records = (req.customized_info or {}).get(META_INFO_KEY)
    if records and records[-1] is not None and records[-1][0] == ERROR:
        reason = getattr(req, FAULT_ATTR, None) or records[-1][1]
        fail_request(req, f"{reason}; the request is aborted rather than served a wrong result")
    return result


def register(registry, hook_type) -> None:
    registry.register(COLLECT_TARGET, _after_collect, hook_type.AFTER)
