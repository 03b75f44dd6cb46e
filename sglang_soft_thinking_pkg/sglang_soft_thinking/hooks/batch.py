"""Seam: forward batches. Admits requests to the table and gives each batch its plan.

One hook, SGLang 0.5.23: ``ForwardBatch.init_new`` (AFTER), where SGLang turns the
scheduler's batch into the batch the model runs. There, with the scheduler's requests
at hand:

* every request new to its row is admitted: its row is written whole, so nothing of the
  row's earlier occupant survives. A request is new to its row when the pair (row,
  retraction count) changed: a retracted request comes back with a higher count even if
  it gets its old row. A soft request that had output before is resumed from its own
  records (resume.py), never from the row: the rank that keeps them resumes it and plans
  each chunk of its re-prefill, and shares both with the other tensor-parallel ranks
  (reprefill.py), in one broadcast per batch that re-prefills such a request.
* the :class:`BatchPlan` is built and set on the forward batch, so that the embedding and
  sampling hooks read the plan of the batch they run, however late SGLang samples it.

Apart from that broadcast (a retraction's re-prefill, never a decode step), nothing here
waits on another process, and nothing reads the device: rows come from the scheduler's
host copy, and index tensors go to the device from pinned memory without a wait
(transfer.py). Under the
overlap scheduler SGLang calls ``init_new`` on the forward stream, so the admission writes
are ordered after the previous step's writes to a reused row. A fault while admitting or
planning one request flags that request's row (hooks/results.py ``note_fault``): every
rank aborts it after the step (agreement.py), and the scheduler goes on. A fault in a
batch-wide operation is narrowed to its requests where the operation splits by row
(writing the table rows); otherwise it flags the batch's soft requests.

Deletable when SGLang grows per-request decoding-state hooks.
"""

from __future__ import annotations

import logging

import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking import faults, reprefill, runtime
from sglang_soft_thinking.draws import seed_of
from sglang_soft_thinking.hooks.results import note_fault, this_rank_sends_outputs
from sglang_soft_thinking.output import ANSWER, META_INFO_KEY
from sglang_soft_thinking.plan import BatchPlan, ExtendInputs, SeededRows, SglangRows, group_soft_rows
from sglang_soft_thinking.records import RankRecords, RequestRecords
from sglang_soft_thinking.runtime import (
    ADMITTED_ATTR, FAILED_ATTR, FAULT_ATTR, PLAN_ATTR, REPREFILLED_ATTR, SETTINGS_ATTR,
)
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.transfer import to_device

logger = logging.getLogger(__name__)
INIT_NEW_TARGET = "sglang.srt.model_executor.forward_batch_info.ForwardBatch.init_new"


def settings_of(req) -> RequestSettings | None:
    """The request's settings; None for a plain request and for one that was aborted."""
    if not hasattr(req, SETTINGS_ATTR):
        raise RuntimeError(f"soft thinking: request {req.rid} reached the model unresolved")
    if getattr(req, FAILED_ATTR, None):
        return None
    settings = getattr(req, SETTINGS_ATTR)
    if settings is not None:
        faults.check("settings", (settings.seed,))
    return settings


def guarded_settings(req) -> RequestSettings | None:
    """:func:`settings_of`, with a fault noted on the request (then None: plain here)."""
    try:
        return settings_of(req)
    except Exception as error:
        logger.exception("soft thinking: reading the settings of request %s failed", req.rid)
        note_fault(req, f"its settings could not be read: {error}")
        return None


def _admission(req, settings: RequestSettings, shared: reprefill.Shared | None):
    """The request's state to admit it with: None to start, or resumed from its records
    (the state the rank that keeps them shared)."""
    if faults.seed_of("admit") == settings.seed:
        raise faults.InjectedFault("a fault injected at admission")
    if settings.method_object.input_kind == "vector" and runtime.get().geometry is None:
        raise RuntimeError(f"method {settings.method_object.name!r} feeds hidden-state vectors, which this "
                           f"engine cannot: {runtime.get().geometry_error or 'no embedding geometry'}")
    if len(req.output_ids) == 0:
        return None
    if shared is None:
        raise RuntimeError("no resumed state was shared for it")
    if shared.error is not None:
        raise RuntimeError(shared.error)
    return shared.state


def admit(table, reqs, rows: list[int], shared: dict[int, reprefill.Shared] | None = None) -> None:
    """Write the rows of the requests new to their row (see the module docstring);
    ``shared``: the resumed requests' shares by batch row (:func:`share_reprefills`)."""
    shared = shared or {}
    new_reqs, new_rows, new_settings, new_states = [], [], [], []
    for i, (req, row) in enumerate(zip(reqs, rows)):
        key = (row, req.retraction_count)
        if getattr(req, ADMITTED_ATTR, None) == key:
            continue
        setattr(req, ADMITTED_ATTR, key)
        settings, state = guarded_settings(req), None
        if settings is not None:
            try:
                state = _admission(req, settings, shared.get(i))
            except Exception as error:  # a fault here costs this request alone
                logger.exception("soft thinking: admitting request %s failed", req.rid)
                note_fault(req, f"admitting the request failed: {error}")
                state = None  # its row starts afresh: it runs this step, and is aborted after it
        new_reqs.append(req)
        new_rows.append(row)
        new_settings.append(settings)
        new_states.append(state)
    try:
        _write_rows(table, new_rows, new_settings, new_states)
    except Exception as error:  # split by row: the rows that still fail cost their requests
        logger.exception("soft thinking: writing %d table rows failed; writing them one by one", len(new_rows))
        for req, row, settings, state in zip(new_reqs, new_rows, new_settings, new_states):
            try:
                _write_rows(table, [row], [settings], [state])
            except Exception:
                note_fault(req, f"its table row could not be written: {error}")


def _write_rows(table, rows: list[int], settings: list, states: list) -> None:
    faults.check("table_admit", lambda: [s.seed for s in settings if s is not None])
    table.admit(rows, settings, states)


def faulty_rows(reqs) -> list[int]:
    """Batch rows whose requests met a fault here and are not aborted yet."""
    return [i for i, req in enumerate(reqs)
            if getattr(req, FAULT_ATTR, None) is not None and not getattr(req, FAILED_ATTR, None)]


def seeded_plain_rows(reqs, settings: list[RequestSettings | None], vocab_size: int) -> SeededRows | None:
    """The plain requests of the batch that carry a seed: the plugin samples those.

    Not those that ask for logprobs: SGLang reports the logprob of the token its own
    sampler chose, so such a request keeps SGLang's sample.
    """
    index = [i for i, (req, s) in enumerate(zip(reqs, settings))
             if s is None and req.sampling_params.sampling_seed is not None and not req.return_logprob]
    if not index:
        return None
    top_ks = [reqs[i].sampling_params.top_k for i in index]
    fetch_k = C.required_fetch_k(vocab_size, 1, [k for k in top_ks if 0 < k < C.TOP_K_ALL],
                                 full_support=any(k >= C.TOP_K_ALL for k in top_ks))
    return SeededRows(index, [seed_of(reqs[i].sampling_params.sampling_seed, reqs[i].rid) for i in index],
                      fetch_k)


def _answering(req) -> bool:
    """Whether the request's last processed record is an answer token: it has left thinking
    for good (the record may lag the device by a step or two; the phase never goes back)."""
    records = (req.customized_info or {}).get(META_INFO_KEY)
    return isinstance(records, (RequestRecords, RankRecords)) and bool(records) and records.kind(-1) == ANSWER


def sglang_rows(reqs, taken: set[int]) -> SglangRows:
    """The rows no plugin sampler takes, with the flags SGLang would derive for them alone."""
    index = [i for i in range(len(reqs)) if i not in taken]
    params = [reqs[i].sampling_params for i in index]
    return SglangRows(
        index=index,
        is_all_greedy=all(p.top_k <= 1 for p in params),
        need_top_p_sampling=any(p.top_p != 1.0 for p in params),
        need_top_k_sampling=any(p.top_k != C.TOP_K_ALL for p in params),
        need_min_p_sampling=any(p.min_p > 0 for p in params),
        max_top_k=(max(p.top_k for p in params)
                   if params and all(1 <= p.top_k < C.TOP_K_ALL for p in params) else None))


def plan(table, batch, forward_batch, vocab_size: int,
         shared: dict[int, reprefill.Shared] | None = None) -> BatchPlan:
    reqs = batch.reqs
    device = forward_batch.req_pool_indices.device
    result = BatchPlan(reqs=list(reqs))
    counted = [True] * len(reqs)  # whether each row's sample counts
    if not forward_batch.forward_mode.is_decode():
        # May abort requests it cannot plan.
        counted = _plan_extend(result, table, batch, forward_batch, shared or {})
    settings = [guarded_settings(req) for req in reqs]  # None for a plain request
    result.seeded_plain = seeded_plain_rows(reqs, settings, vocab_size)
    index = [i for i, s in enumerate(settings) if s is not None and counted[i]]
    if index:
        result.soft = group_soft_rows(index, [settings[i] for i in index], vocab_size,
                                      answering=[_answering(reqs[i]) for i in index],
                                      invariant_width=runtime.get().invariant_width())
    taken = set(result.soft.index if result.soft else ()) | set(
        result.seeded_plain.index if result.seeded_plain else ())
    if taken:
        result.sglang = sglang_rows(reqs, taken)
    result.fault_rows = faulty_rows(reqs)
    if result.fault_rows:
        result.fault_tensor = to_device(result.fault_rows, torch.int64, device)
    for part in (result.soft, result.seeded_plain, result.sglang):
        if part is not None:
            part.index_tensor = to_device(part.index, torch.int64, device)
    if result.seeded_plain is not None:
        result.seeded_plain.seeds_tensor = to_device(result.seeded_plain.seeds, torch.int64, device)
    return result


def _history(req, prefix: int, length: int, start: int, k_max: int, shared: reprefill.Shared | None):
    """A resumed request's re-prefilled positions that take their recorded inputs:
    (flattened positions, ids, weights), from the chunk's ``shared`` inputs (None: the
    request had no output when admitted, nothing to rebuild).

    The extend may start past the prompt only on KV this same re-prefill wrote: SGLang
    splits a long re-prefill into chunks, and each later chunk starts where the one before
    it ended. The prefix cache never serves a soft request beyond its prompt, so any other
    prefix past the prompt would be KV of token embeddings where concept tokens were fed."""
    if shared is None:
        return [], [], []
    prompt_len = len(req.origin_input_ids)
    rebuilt = _rebuilt_end(req)
    if prefix > max(prompt_len, rebuilt):
        raise RuntimeError(f"its re-prefill starts at {prefix}, past its prompt ({prompt_len} tokens) and "
                           f"past what its earlier chunks rebuilt ({rebuilt}): cached KV would stand for "
                           "positions fed concept tokens")
    if shared.error is not None:
        raise RuntimeError(shared.error)
    positions, ids, weights = [], [], []
    for index, concept_ids, concept_weights in shared.fed:  # output token index: position prompt_len + index
        positions.append(start + prompt_len + index - prefix)
        ids.append(_padded(concept_ids, k_max, 0))
        weights.append(_padded(concept_weights, k_max, 0.0))
    setattr(req, REPREFILLED_ATTR, (req.retraction_count, prefix + length))
    return positions, ids, weights


def _reprefilled_outputs(req, prefix: int, length: int) -> tuple[int, int]:
    """The output tokens [start, stop) an extend of ``length`` after ``prefix`` re-prefills."""
    prompt_len = len(req.origin_input_ids)
    return max(prefix, prompt_len) - prompt_len, max(prefix + length, prompt_len) - prompt_len


def _wanted_reprefills(batch, forward_batch, rows: list[int]) -> list[reprefill.Wanted]:
    """The batch's soft requests whose re-prefill needs their records. Decided from facts
    every tensor-parallel rank shares (the batch, its requests' attributes and output
    lengths), never from this rank's own settings reads or faults."""
    if forward_batch.forward_mode.is_decode():
        return []
    prefix_lens, extend_lens = forward_batch.extend_prefix_lens_cpu, forward_batch.extend_seq_lens_cpu
    if prefix_lens is None or extend_lens is None or len(extend_lens) < len(batch.reqs):
        return []  # the plan refuses this batch (_plan_extend) on every rank
    decoding = {id(req) for req in (batch.decoding_reqs or [])}
    wanted = []
    for i, req in enumerate(batch.reqs):
        settings = getattr(req, SETTINGS_ATTR, None)
        if settings is None or getattr(req, FAILED_ATTR, None) or id(req) in decoding or not req.output_ids:
            continue
        new = getattr(req, ADMITTED_ATTR, None) != (rows[i], req.retraction_count)
        start, stop = _reprefilled_outputs(req, prefix_lens[i], extend_lens[i])
        if new or start < stop:
            wanted.append(reprefill.Wanted(i, settings, (req.customized_info or {}).get(META_INFO_KEY),
                                           req.output_ids, new, start, min(stop, len(req.output_ids))))
    return wanted


def share_reprefills(batch, forward_batch, rows: list[int]) -> dict[int, reprefill.Shared]:
    """The shares of the batch's re-prefilled soft requests, by batch row: computed by the
    rank that keeps their records and broadcast over SGLang's tensor-parallel group (its
    CPU channel) when there is more than one rank."""
    def broadcast(local):
        if runtime.get().tp_size <= 1:
            return local
        from sglang.srt.distributed import get_tp_group

        return get_tp_group().broadcast_object(local, src=0)

    return reprefill.share(_wanted_reprefills(batch, forward_batch, rows), this_rank_sends_outputs(), broadcast)


def _rebuilt_end(req) -> int:
    """How far the chunks of the request's current re-prefill reach (0 before its first):
    a retraction frees that KV, so a mark from an earlier retraction counts for nothing."""
    count, end = getattr(req, REPREFILLED_ATTR, None) or (None, 0)
    return end if count == req.retraction_count else 0


def _padded(values, width: int, fill) -> list:
    values = list(values)[:width]
    return values + [fill] * (width - len(values))


def _plan_extend(result: BatchPlan, table, batch, forward_batch, shared: dict[int, reprefill.Shared]) -> list[bool]:
    """Which flattened positions take concept tokens; returns which rows' samples count (not
    a prefill chunk that ends short of its request's input)."""
    prefix_lens, extend_lens = forward_batch.extend_prefix_lens_cpu, forward_batch.extend_seq_lens_cpu
    if prefix_lens is None or extend_lens is None or len(extend_lens) < len(batch.reqs):
        raise RuntimeError("soft thinking: an extend batch without per-request lengths on the host")
    decoding = {id(req) for req in (batch.decoding_reqs or [])}
    device = forward_batch.req_pool_indices.device
    counted, start = [], 0
    history_pos, history_ids, history_weights = [], [], []
    decode_pos, decode_rows = [], []
    rows = _rows_of(batch)
    for i, req in enumerate(batch.reqs):
        prefix, length = prefix_lens[i], extend_lens[i]
        settings = guarded_settings(req)
        if id(req) in decoding:
            counted.append(True)
            if settings is not None:
                decode_pos.append(start)
                decode_rows.append(rows[i])
        else:
            counted.append(prefix + length >= len(req.origin_input_ids) + len(req.output_ids))
            if settings is not None:
                try:
                    positions, ids, weights = _history(req, prefix, length, start, table.k_max, shared.get(i))
                except Exception as error:  # a fault here costs this request alone
                    logger.exception("soft thinking: planning request %s failed", req.rid)
                    note_fault(req, f"its re-prefill could not be planned: {error}")
                    positions, ids, weights = [], [], []
                history_pos += positions
                history_ids += ids
                history_weights += weights
        start += length
    parts = []
    if history_pos:  # a re-prefill never holds vectors (resume.py refuses a request that fed one)
        count = len(history_pos)
        parts.append((to_device(history_pos, torch.int64, device), to_device(history_ids, torch.int64, device),
                      to_device(history_weights, torch.float32, device),
                      torch.ones(count, dtype=torch.bool, device=device),
                      torch.zeros(count, dtype=torch.bool, device=device), None))
    if decode_pos:
        decode_rows_t = to_device(decode_rows, torch.int64, device)
        use, ids, weights = table.concept_inputs(decode_rows_t)
        table.mark_mixed(decode_rows_t, use)  # checked against plan.extend_applied (sampler)
        vector, vectors = table.vector_inputs(decode_rows_t)
        parts.append((to_device(decode_pos, torch.int64, device), ids, weights, use, vector, vectors))
    if parts:
        columns = [torch.cat([part[j] for part in parts]) for j in range(5)]
        if table.vectors is not None:
            columns.append(torch.cat([part[5] if part[5] is not None
                                      else table.vectors.new_zeros(part[0].shape[0], table.vectors.shape[1])
                                      for part in parts]))
        else:
            columns[4] = None
        result.extend_inputs = ExtendInputs(*columns)
    return counted


def _rows_of(batch) -> list[int]:
    """The requests' table rows, from the scheduler's host copy (never the device's)."""
    rows = batch.req_pool_indices_cpu
    if rows is not None:
        return rows.tolist()[:len(batch.reqs)]
    return [req.kv.req_pool_idx for req in batch.reqs]


def _after_init_new(forward_batch, cls, batch, model_runner, *args, **kwargs):
    rt = runtime.get()
    if rt.table is None or not getattr(batch, "reqs", None) or not model_runner.is_generation:
        return forward_batch
    rows = _rows_of(batch)
    shared = share_reprefills(batch, forward_batch, rows)  # every rank alike: before anything that may fault
    admit(rt.table, batch.reqs, rows, shared)
    try:
        batch_plan = plan(rt.table, batch, forward_batch, model_runner.model_config.vocab_size, shared)
    except Exception as error:  # a fault in the plan costs this batch's soft requests
        logger.exception("soft thinking: planning a batch failed")
        for req in batch.reqs:
            if getattr(req, SETTINGS_ATTR, None) is not None:
                note_fault(req, f"its batch could not be planned: {error}")
        batch_plan = BatchPlan(reqs=list(batch.reqs), fault_rows=faulty_rows(batch.reqs))
        if batch_plan.fault_rows:
            batch_plan.fault_tensor = to_device(batch_plan.fault_rows, torch.int64,
                                                forward_batch.req_pool_indices.device)
    setattr(forward_batch, PLAN_ATTR, batch_plan)
    return forward_batch


def register(registry, hook_type) -> None:
    registry.register(INIT_NEW_TARGET, _after_init_new, hook_type.AFTER)
