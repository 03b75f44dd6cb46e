"""Seam: sampling. Soft-thinking rows get their token from the table, not SGLang's sampler.

Two hooks, SGLang 0.5.23:

* ``ModelRunner.sample`` (AROUND) hands the sampled batch's plan and request rows to
  the sampler hook on the step's ``logits_output`` (``Sampler.forward`` is not given
  the batch). SGLang may sample a batch after ``run_batch`` returns (overlap scheduler
  with a grammar, delayed sampling): the plan is the one carried by that batch.
* ``Sampler.forward`` (AROUND) samples each row once, by one of three samplers the
  batch's plan names (plan.py), on the logits after SGLang's own preprocessing
  (penalties, logit bias):
  - the soft rows by :func:`step.soft_step`, on those rows' logits only (cleaned of NaN
    first when SGLang cleans logits, ``SGLANG_SANITIZE_NAN_LOGITS``: its sampler does so
    only after this step); a row whose concept token was not mixed into its input this
    step is flagged (checked on the device: table.missed_inputs);
  - the plain requests with a seed from draws of their seed (draws.py), with SGLang's
    own settings for them, so a seed holds whatever shares the batch (SGLang honours
    seeds only in its deterministic mode);
  - the other rows by SGLang's sampler, given just those rows (a shallow copy of its
    sampling info cut to them), or every row when something it computes for the batch
    (logprobs, sampling masks, custom logit processors) needs them all; then the
    plugin's rows replace its choice. SGLang's sampler runs last: it overwrites the
    logits it is given in place.
  Each batch row has a flag (agreement.FLAG_*): a fault noted on its request before the
  step (hooks/results.py ``note_fault``), an input not mixed, a fault met here. Under
  tensor parallelism the ranks then make the step's one all-reduce (agreement.py): the
  largest flag and the smallest token of each row, and every few steps the rows' inputs
  (a row whose ranks drifted apart is flagged). The records ride on
  ``logits_output.customized_info``, which SGLang copies to each request and on to
  ``meta_info`` (records.py); a flagged row's record is an error record, from which every
  rank aborts its request at the same point (hooks/results.py). A fault in the soft step
  flags every soft row, which write their most likely token; a fault in the seeded
  sampling is retried row by row; a fault in SGLang's sampler on a subset of the rows is
  retried on every row, except where SGLang's sampler syncs its tokens across the ranks
  (``SYNC_TOKEN_IDS_ACROSS_TP``, a grammar): there the other ranks wait in that all-reduce
  for a tensor of the subset's size, so the faulting rank makes it with the subset's rows
  flagged instead. Every fallback thus makes the same collectives, of the same shapes, as
  the other ranks make without the fault.

Deletable when SGLang's sampler offers a per-request sampling hook.
"""

from __future__ import annotations

import copy
import logging

import torch

from sglang_soft_thinking import agreement, faults, runtime
from sglang_soft_thinking.agreement import FLAG_DRIFT, FLAG_FAULT, FLAG_INPUT
from sglang_soft_thinking.concept import sample_tokens
from sglang_soft_thinking.draws import STREAM_PLAIN, RowDraws
from sglang_soft_thinking.hooks.results import note_fault, soft_seeds
from sglang_soft_thinking.output import META_INFO_KEY
from sglang_soft_thinking.records import StepRecords
from sglang_soft_thinking.plan import SeededRows
from sglang_soft_thinking.runtime import PLAN_ATTR
from sglang_soft_thinking.step import StepResult, soft_step

logger = logging.getLogger(__name__)
MODEL_RUNNER_SAMPLE = "sglang.srt.model_executor.model_runner.ModelRunner.sample"
SAMPLER_FORWARD = "sglang.srt.layers.sampler.Sampler.forward"


def _around_model_runner_sample(original, model_runner, logits_output, forward_batch, *args, **kwargs):
    plan = getattr(forward_batch, PLAN_ATTR, None)
    # Under tensor parallelism every planned batch is sampled here: the step's agreement
    # is a collective every rank must make alike (agreement.py).
    if plan is None or not (plan.has_work or runtime.get().tp_size > 1):
        return original(model_runner, logits_output, forward_batch, *args, **kwargs)
    # Each row samples the token at position seq_len (the tokens it holds so far).
    setattr(logits_output, PLAN_ATTR, (plan, forward_batch.req_pool_indices, forward_batch.seq_lens))
    try:
        return original(model_runner, logits_output, forward_batch, *args, **kwargs)
    finally:
        delattr(logits_output, PLAN_ATTR)


def seeded_plain_tokens(logits: torch.Tensor, sampling_info, seeded, positions: torch.Tensor) -> torch.Tensor:
    """SGLang's own sampling settings for the seeded plain rows, drawn from their seeds."""
    index = seeded.index_tensor
    return sample_tokens(
        logits.index_select(0, index),
        temperature=sampling_info.temperatures.view(-1).index_select(0, index),
        top_k=sampling_info.top_ks.index_select(0, index).long(),
        top_p=sampling_info.top_ps.index_select(0, index),
        min_p=sampling_info.min_ps.index_select(0, index),
        fetch_k=seeded.fetch_k,
        draws=RowDraws(seeded.seeds_tensor, positions.index_select(0, index)),
        stream=STREAM_PLAIN,
    )


def sglang_can_take_rows(sampling_info, return_logprob: bool) -> bool:
    """Whether SGLang's sampler may be run on a subset of the batch's rows: nothing it does
    for the batch besides sampling (logprobs, sampling masks, per-row logit processors,
    watermarks) depends on seeing every row."""
    return (not return_logprob
            and getattr(sampling_info, "sampling_mask_batch_indices", None) is None
            and not getattr(sampling_info, "has_custom_logit_processor", False)
            and not getattr(sampling_info, "has_watermark_candidates", False))


def sampling_info_for(sampling_info, rows):
    """A shallow copy of SGLang's sampling info for the batch rows ``rows`` (plan.SglangRows):
    the per-row tensors its sampler reads, and its batch flags derived from those rows alone."""
    index = rows.index_tensor
    subset = copy.copy(sampling_info)
    for name in ("temperatures", "top_ps", "top_ks", "min_ps", "sampling_seed"):
        value = getattr(sampling_info, name, None)
        if value is not None:
            setattr(subset, name, value.index_select(0, index))
    for name in ("is_all_greedy", "need_top_p_sampling", "need_top_k_sampling",
                 "need_min_p_sampling", "max_top_k"):
        setattr(subset, name, getattr(rows, name))
    return subset


def sglang_syncs_tokens(sampling_info) -> bool:
    """Whether SGLang's sampler all-reduces its sampled ids across the tensor-parallel ranks
    (SGLang 0.5.23: ``Sampler._sync_token_ids_across_tp``)."""
    from sglang.srt.layers import sampler as sglang_sampler

    return runtime.get().tp_size > 1 and bool(
        sglang_sampler.SYNC_TOKEN_IDS_ACROSS_TP or getattr(sampling_info, "grammars", None))


def _subset_fallback(sampler, logits, sampling_info, plan, flags) -> torch.Tensor:
    """The subset's rows when SGLang's sampler failed on them and syncs its tokens: their
    most likely tokens, synced as SGLang's sampler would have (the other ranks are in that
    all-reduce, at the subset's size), and the rows flagged, so every rank aborts them."""
    rows = plan.sglang
    ids = logits.index_select(0, rows.index_tensor).argmax(dim=-1)
    torch.distributed.all_reduce(ids, op=torch.distributed.ReduceOp.MIN, group=sampler.tp_sync_group)
    _note_rows(plan, rows.index, "SGLang's sampler failed on its row")
    _raise_flags(flags, rows.index_tensor, FLAG_FAULT)
    return ids


def _sglang_sample(original, sampler, logits_output, sampling_info, plan, return_logprob,
                   positions, flags, args, kwargs) -> torch.Tensor:
    """SGLang's sampler on the rows the plugin does not sample (all rows when it must see
    them all); [B] ids, meaningful on those rows. Every rank calls it on the same rows."""
    logits = logits_output.next_token_logits
    rows = plan.sglang
    if rows is None or not sglang_can_take_rows(sampling_info, return_logprob):
        return original(sampler, logits_output, sampling_info, return_logprob, *args, positions, **kwargs)
    next_ids = torch.zeros(logits.shape[0], dtype=torch.int64, device=logits.device)
    if not rows.index:
        return next_ids
    try:
        faults.check("subset", lambda: soft_seeds(plan, plan.soft.index if plan.soft else []))
        subset_output = copy.copy(logits_output)
        subset_output.next_token_logits = logits.index_select(0, rows.index_tensor)
        ids = original(sampler, subset_output, sampling_info_for(sampling_info, rows), return_logprob,
                       *args, positions.index_select(0, rows.index_tensor), **kwargs)
    except Exception:
        logger.exception("soft thinking: SGLang's sampler on a subset of the rows failed")
        # In the subset path nothing follows SGLang's token sync but its return, so a fault
        # came before it: this rank has not made it yet.
        if sglang_syncs_tokens(sampling_info):
            ids = _subset_fallback(sampler, logits, sampling_info, plan, flags)
        else:  # nothing is lost: SGLang's sampler takes every row, as it would alone
            return original(sampler, logits_output, sampling_info, return_logprob, *args, positions, **kwargs)
    return next_ids.index_copy(0, rows.index_tensor, ids.to(next_ids.dtype))


def soft_rows_logits(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The soft rows' logits [S, V], a copy. When SGLang is set to sanitise NaN logits, they
    are cleaned as its sampler cleans every row (NaN and -inf to -1e30, +inf to 1e30), which
    it does inside ``Sampler.forward``, after the soft step would have read them."""
    from sglang.srt.environ import envs

    rows = logits.index_select(0, index)
    if envs.SGLANG_SANITIZE_NAN_LOGITS.get():
        torch.nan_to_num_(rows, nan=-1e30, posinf=1e30, neginf=-1e30)
    return rows


def _raise_flags(flags: torch.Tensor, index: torch.Tensor, code: int | torch.Tensor) -> None:
    """flags[index] = max(flags[index], code), code a number or an [N] tensor (device ops
    only: a number is never copied to the device)."""
    current = flags.index_select(0, index)
    raised = torch.clamp(current, min=code) if isinstance(code, int) else torch.maximum(current, code)
    flags.index_copy_(0, index, raised)


def _note_rows(plan, index: list[int], reason: str) -> None:
    for i in index:
        note_fault(plan.reqs[i], reason)


def _soft_rows_step(table, plan, rows, logits, positions, flags) -> StepResult | None:
    """The soft rows' step; their rows' flags get their inputs' check (not mixed). On a
    fault: None, and every soft row flagged (the step is one computation for them all);
    they then write their most likely token (:func:`_failed_soft_tokens`)."""
    soft = plan.soft
    index = soft.index_tensor
    soft_rows = rows.index_select(0, index)
    try:
        faults.check("soft_step", lambda: soft_seeds(plan, soft.index))
        missed = table.missed_inputs(soft_rows)
        if plan.inputs_failed or (plan.extend_inputs is not None and not plan.extend_applied):
            missed = torch.ones_like(missed)  # the embedding hook never put the concept tokens in
        result = soft_step(table, soft_rows, soft_rows_logits(logits, index), soft,
                           positions.index_select(0, index), vocabulary=runtime.get().vocabulary,
                           geometry=runtime.get().geometry)
    except Exception as error:
        logger.exception("soft thinking: the soft rows' step failed")
        _note_rows(plan, soft.index, f"its sampling step failed: {error}")
        _raise_flags(flags, index, FLAG_FAULT)
        return None
    _raise_flags(flags, index, missed.to(flags.dtype) * FLAG_INPUT)
    return result


def _failed_soft_tokens(logits: torch.Tensor, plan) -> torch.Tensor:
    """The tokens of soft rows whose step failed (they are aborted after it): their most
    likely ones, on this rank alone, so every rank still calls SGLang's sampler on the same
    rows; zeros if even that fails (the step's agreement syncs them)."""
    try:
        return logits.index_select(0, plan.soft.index_tensor).argmax(dim=-1)
    except Exception:
        logger.exception("soft thinking: the failed soft rows' most likely tokens could not be read")
        return torch.zeros(len(plan.soft.index), dtype=torch.int64, device=logits.device)


def _seeded_tokens(logits, sampling_info, plan, positions, flags) -> torch.Tensor:
    """The seeded plain rows' tokens; on a fault, row by row, and a row that still fails
    is flagged (its token 0: it is aborted)."""
    seeded = plan.seeded_plain
    try:
        faults.check("seeded_plain", seeded.seeds)
        return seeded_plain_tokens(logits, sampling_info, seeded, positions)
    except Exception:
        logger.exception("soft thinking: sampling the seeded plain rows failed; sampling them one by one")
    tokens = torch.zeros(len(seeded.index), dtype=torch.int64, device=logits.device)
    for j, (i, seed) in enumerate(zip(seeded.index, seeded.seeds)):
        one = SeededRows([i], [seed], seeded.fetch_k, index_tensor=seeded.index_tensor[j:j + 1],
                         seeds_tensor=seeded.seeds_tensor[j:j + 1])
        try:
            faults.check("seeded_plain", (seed,))
            tokens[j] = seeded_plain_tokens(logits, sampling_info, one, positions)[0]
        except Exception as error:
            note_fault(plan.reqs[i], f"its seeded sampling failed: {error}")
            _raise_flags(flags, one.index_tensor, FLAG_FAULT)
    return tokens


def _records(plan, result: StepResult | None, flags) -> StepRecords | None:
    """The soft rows' records, their copy to the host started; on a fault, None and every
    soft row flagged."""
    if result is None:
        return None
    try:
        faults.check("records", lambda: soft_seeds(plan, plan.soft.index))
        host_fault = faults.seed_of("records_host")
        fault_positions = frozenset() if host_fault is None else frozenset(
            j for j, i in enumerate(plan.soft.index) if soft_seeds(plan, [i]) == [host_fault])
        return StepRecords(result, plan.soft.position_of(), fault_positions=fault_positions)
    except Exception as error:
        logger.exception("soft thinking: the step's records could not be built")
        _note_rows(plan, plan.soft.index, f"its step's records could not be built: {error}")
        _raise_flags(flags, plan.soft.index_tensor, FLAG_FAULT)
        return None


def _agree(plan, table, result: StepResult | None, flags, next_ids):
    """Under tensor parallelism, the ranks' shared flags and tokens (agreement.py): one
    all-reduce, with the rows' inputs on a check step. Returns (flags, next_ids)."""
    rt = runtime.get()
    if rt.tp_size <= 1:
        return flags, next_ids
    rt.steps += 1
    interval = agreement.check_interval()
    inputs = None
    if interval > 0 and rt.steps % interval == 0:
        index = plan.soft.index_tensor if plan.soft is not None else next_ids.new_zeros(0)
        inputs = agreement.batch_inputs(next_ids.shape[0], index, None if result is None else result.ids,
                                        None if result is None else result.weights, table.k_max)
    from sglang.srt.distributed import get_tp_group

    group = get_tp_group().device_group

    def reduce_max(tensor):
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX, group=group)
        return tensor

    agreed = agreement.agree(flags, next_ids, reduce_max, inputs)
    flags = agreed.flags
    if agreed.drifted is not None:
        flags = torch.maximum(flags, agreed.drifted.to(flags.dtype) * FLAG_DRIFT)
    return flags, agreed.tokens


def _around_sampler_forward(original, sampler, logits_output, sampling_info, return_logprob,
                            top_logprobs_nums, token_ids_logprobs, positions, **kwargs):
    carried = getattr(logits_output, PLAN_ATTR, None)
    table = runtime.get().table
    args = (top_logprobs_nums, token_ids_logprobs)
    if carried is None or table is None:
        return original(sampler, logits_output, sampling_info, return_logprob, *args, positions, **kwargs)
    plan, rows, seq_lens = carried
    logits = logits_output.next_token_logits  # [B, V]
    # The position of the token each row samples: the number of tokens it holds so far.
    sample_positions = seq_lens[:logits.shape[0]].long()
    flags = torch.zeros(logits.shape[0], dtype=torch.int32, device=logits.device)  # [B] FLAG_*
    if plan.fault_tensor is not None:
        _raise_flags(flags, plan.fault_tensor, FLAG_FAULT)
    result = seeded = soft_tokens = None
    if plan.soft is not None:
        result = _soft_rows_step(table, plan, rows, logits, sample_positions, flags)
        soft_tokens = _failed_soft_tokens(logits, plan) if result is None else result.tokens
    if plan.seeded_plain is not None:
        seeded = _seeded_tokens(logits, sampling_info, plan, sample_positions, flags)
    # Run last: SGLang's sampler overwrites the logits it is given in place.
    next_ids = _sglang_sample(original, sampler, logits_output, sampling_info, plan, return_logprob,
                              positions, flags, args, kwargs)
    if seeded is not None:
        next_ids = next_ids.index_copy(0, plan.seeded_plain.index_tensor, seeded.to(next_ids.dtype))
    if soft_tokens is not None:
        next_ids = next_ids.index_copy(0, plan.soft.index_tensor, soft_tokens.to(next_ids.dtype))
    records = _records(plan, result, flags)
    # The plugin's rows replaced SGLang's choice after SGLang's own token sync: the
    # agreement syncs the final ids (and the flags) across the ranks.
    flags, next_ids = _agree(plan, table, result, flags, next_ids)
    if records is None:
        records = StepRecords(None, {})
    records.set_flags(flags)
    logits_output.customized_info = {META_INFO_KEY: records}
    return next_ids


def register(registry, hook_type) -> None:
    registry.register(MODEL_RUNNER_SAMPLE, _around_model_runner_sample, hook_type.AROUND)
    registry.register(SAMPLER_FORWARD, _around_sampler_forward, hook_type.AROUND)
