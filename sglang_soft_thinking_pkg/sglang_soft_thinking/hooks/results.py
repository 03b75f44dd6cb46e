"""Seam: step results. Each soft request keeps its records compactly; a request whose step
went wrong is aborted with an error, alone.

A fault in our code, or a check that fails (an input that was not mixed, a rank whose
soft state drifted), must cost the request it concerns, never the scheduler and so the
server. :func:`fail_request` ends one request with SGLang's own abort (HTTP 500 with a
message naming soft thinking; the request runs one more step, as any aborted request does,
and its KV is released by SGLang's usual path). A step the device found wrong reaches the
host as an ``error`` record. One hook:

* ``SchedulerBatchResultProcessor._maybe_collect_customized_info`` (AROUND), SGLang 0.5.23,
  which appends each request's record of the step to a list on the request (and SGLang
  sends slices of that list on to the server). Before a soft request's first record, the
  hook puts a :class:`records.RequestRecords` in that list's place, which SGLang appends to
  and slices as it would the list, so that the scheduler keeps no object per token; on a
  rank that sends no outputs (records.sends_outputs) a :class:`records.RankRecords`, which
  keeps nothing per token. After the append, an ``error`` record becomes that abort; but a
  fault met here on the host (a record that could not be read or kept) is this rank's
  alone, so it is noted on the request (:func:`note_fault`) and the next step's agreement
  aborts the request on every rank at once (a rank that aborted it alone would run a
  batch the others do not).

Deletable when SGLang offers per-request output records and error reporting to plugins.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from sglang_soft_thinking.output import ERROR, META_INFO_KEY
from sglang_soft_thinking.records import (
    KIND_READ_FAULT, READ_FAULT_RECORD, RankRecords, RequestRecords, sends_outputs,
)
from sglang_soft_thinking.runtime import FAILED_ATTR, FAULT_ATTR, SETTINGS_ATTR

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


def soft_seeds(plan, index) -> list[int]:
    """The seeds of the plan's soft requests at batch rows ``index`` (for faults a test injects)."""
    return [getattr(plan.reqs[i], SETTINGS_ATTR).seed for i in index
            if getattr(plan.reqs[i], SETTINGS_ATTR, None) is not None]


def this_rank_sends_outputs() -> bool:
    """Whether this scheduler sends outputs to the server (a process whose ranks SGLang has
    not published is taken to send them, so that the server misses nothing)."""
    from sglang.srt.runtime_context import get_parallel

    parallel = get_parallel()
    try:
        return sends_outputs(parallel.pp_rank, parallel.attn_tp_rank, parallel.attn_cp_rank)
    except RuntimeError:  # SGLang: "parallel name ... has not been written in this process"
        return True


def records_for(req) -> RequestRecords | RankRecords:
    """The request's records, put in place of SGLang's list before the first one."""
    if req.customized_info is None:
        req.customized_info = {}
    records = req.customized_info.get(META_INFO_KEY)
    if records is None:
        if this_rank_sends_outputs():
            records = RequestRecords(traced=getattr(req, SETTINGS_ATTR).return_trace)
        else:
            records = RankRecords()
        req.customized_info[META_INFO_KEY] = records
    return records


def _last_is_error(records) -> bool:
    if isinstance(records, (RequestRecords, RankRecords)):
        return records.kind(-1) == ERROR
    return records[-1] is not None and records[-1][0] == ERROR  # a plain request's list


def _last_is_local_fault(records) -> bool:
    """Whether the last record is an error this rank met reading it (no other rank knows)."""
    return isinstance(records, (RequestRecords, RankRecords)) and records.last_code == KIND_READ_FAULT


def _around_collect(original, processor, i, req, logits_output, *args, **kwargs):
    carried = getattr(logits_output, "customized_info", None) if logits_output is not None else None
    try:
        if carried and META_INFO_KEY in carried and getattr(req, SETTINGS_ATTR, None) is not None:
            records_for(req)
        result = original(processor, i, req, logits_output, *args, **kwargs)
        records = (req.customized_info or {}).get(META_INFO_KEY)
        failed = bool(records) and _last_is_error(records)
        local = failed and _last_is_local_fault(records)
    except Exception as error:  # keeping the record failed: this request, not the scheduler
        logger.exception("soft thinking: the record of request %s could not be kept", req.rid)
        note_fault(req, f"its record of the step could not be kept: {error}")
        return None
    if local:  # aborted on every rank after the next step's agreement
        note_fault(req, READ_FAULT_RECORD[1])
        return result
    if failed:
        reason = getattr(req, FAULT_ATTR, None) or records[-1][1]
        fail_request(req, f"{reason}; the request is aborted rather than served a wrong result")
    return result


def register(registry, hook_type) -> None:
    registry.register(COLLECT_TARGET, _around_collect, hook_type.AROUND)
