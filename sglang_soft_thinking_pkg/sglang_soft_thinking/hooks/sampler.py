"""Seam: sampling. Soft-thinking rows get their token from the table, not SGLang's sampler.

Two hooks, SGLang 0.5.23:

* ``ModelRunner.sample`` (AROUND) hands the sampled batch's plan and request rows to
  the sampler hook on the step's ``logits_output`` (``Sampler.forward`` is not given
  the batch). SGLang may sample a batch after ``run_batch`` returns (overlap scheduler
  with a grammar, delayed sampling): the plan is the one carried by that batch.
* ``Sampler.forward`` (AROUND) samples each row once, by one of three samplers the
  batch's plan names (plan.py), on the logits after SGLang's own preprocessing
  (penalties, logit bias):
  - the soft rows by :func:`step.soft_step`, on those rows' logits only; a row whose
    concept token was not mixed into its input this step gets an ``error`` record
    (checked on the device: table.missed_inputs), as does, every few steps under tensor
    parallelism, a row whose ranks drifted apart (checks.py);
  - the plain requests with a seed from draws of their seed (draws.py), with SGLang's
    own settings for them, so a seed holds whatever shares the batch (SGLang honours
    seeds only in its deterministic mode);
  - the other rows by SGLang's sampler, given just those rows (a shallow copy of its
    sampling info cut to them), or every row when something it computes for the batch
    (logprobs, sampling masks, custom logit processors) needs them all; then the
    plugin's rows replace its choice. SGLang's sampler runs last: it overwrites the
    logits it is given in place.
  The soft rows' records ride on ``logits_output.customized_info``, which SGLang copies to
  each request and on to ``meta_info`` (records.py). A fault in the soft step aborts the
  batch's soft requests (hooks/results.py); SGLang's sampler then samples their rows.

Deletable when SGLang's sampler offers a per-request sampling hook.
"""

from __future__ import annotations

import copy
import logging

import torch

from sglang_soft_thinking import checks, runtime
from sglang_soft_thinking.concept import sample_tokens
from sglang_soft_thinking.draws import STREAM_PLAIN, RowDraws
from sglang_soft_thinking.hooks.results import fail_request
from sglang_soft_thinking.output import META_INFO_KEY
from sglang_soft_thinking.phases import KIND_ERROR_DRIFT
from sglang_soft_thinking.records import StepRecords
from sglang_soft_thinking.runtime import PLAN_ATTR
from sglang_soft_thinking.step import StepResult, soft_step

logger = logging.getLogger(__name__)
MODEL_RUNNER_SAMPLE = "sglang.srt.model_executor.model_runner.ModelRunner.sample"
SAMPLER_FORWARD = "sglang.srt.layers.sampler.Sampler.forward"


def _around_model_runner_sample(original, model_runner, logits_output, forward_batch, *args, **kwargs):
    plan = getattr(forward_batch, PLAN_ATTR, None)
    if plan is None or not plan.has_work:
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


def _sglang_sample(original, sampler, logits_output, sampling_info, plan, return_logprob, whole,
                   positions, args, kwargs) -> torch.Tensor:
    """SGLang's sampler on the rows the plugin does not sample (all rows when it must see
    them all, or when the plugin's soft step failed); [B] ids, meaningful on those rows."""
    logits = logits_output.next_token_logits
    rows = plan.sglang
    if whole or rows is None or not sglang_can_take_rows(sampling_info, return_logprob):
        return original(sampler, logits_output, sampling_info, return_logprob, *args, positions, **kwargs)
    next_ids = torch.zeros(logits.shape[0], dtype=torch.int64, device=logits.device)
    if not rows.index:
        return next_ids
    subset_output = copy.copy(logits_output)
    subset_output.next_token_logits = logits.index_select(0, rows.index_tensor)
    ids = original(sampler, subset_output, sampling_info_for(sampling_info, rows), return_logprob,
                   *args, positions.index_select(0, rows.index_tensor), **kwargs)
    return next_ids.index_copy(0, rows.index_tensor, ids.to(next_ids.dtype))


def _soft_rows_step(table, plan, rows, logits, positions) -> StepResult | None:
    """The soft rows' step with its checks; None (and their requests aborted) on a fault."""
    soft = plan.soft
    index = soft.index_tensor
    soft_rows = rows.index_select(0, index)
    try:
        missed = table.missed_inputs(soft_rows)
        if plan.extend_inputs is not None and not plan.extend_applied:
            missed = torch.ones_like(missed)  # the embedding hook never put the concept tokens in
        result = soft_step(table, soft_rows, logits.index_select(0, index), soft,
                           positions.index_select(0, index), failed=missed, vocabulary=runtime.get().vocabulary)
        _check_ranks(result)
        return result
    except Exception as error:  # a fault here costs the batch's soft requests, not the server
        logger.exception("soft thinking: the soft rows' step failed")
        for i in soft.index:
            fail_request(plan.reqs[i], f"its sampling step failed: {error}")
        return None


def _check_ranks(result: StepResult) -> None:
    """Every few steps under tensor parallelism: rows whose ranks drifted get an error record."""
    rt = runtime.get()
    rt.steps += 1
    interval = checks.check_interval()
    if interval <= 0 or rt.steps % interval:
        return
    from sglang.srt.distributed import get_tp_group

    group = get_tp_group()
    if group.world_size <= 1:
        return

    def reduce(op):
        def run(tensor):
            torch.distributed.all_reduce(tensor, op=op, group=group.device_group)
            return tensor
        return run

    drifted = checks.drifted_rows(result.ids, result.weights, reduce(torch.distributed.ReduceOp.MAX),
                                  reduce(torch.distributed.ReduceOp.MIN))
    result.kinds = torch.where(drifted, KIND_ERROR_DRIFT, result.kinds)


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
    result = seeded = None
    if plan.soft is not None:
        result = _soft_rows_step(table, plan, rows, logits, sample_positions)
    if plan.seeded_plain is not None:
        seeded = seeded_plain_tokens(logits, sampling_info, plan.seeded_plain, sample_positions)
    # Run last: SGLang's sampler overwrites the logits it is given in place.
    next_ids = _sglang_sample(original, sampler, logits_output, sampling_info, plan, return_logprob,
                              plan.soft is not None and result is None, positions, args, kwargs)
    if seeded is not None:
        next_ids = next_ids.index_copy(0, plan.seeded_plain.index_tensor, seeded.to(next_ids.dtype))
    if result is not None:
        next_ids = next_ids.index_copy(0, plan.soft.index_tensor, result.tokens.to(next_ids.dtype))
        logits_output.customized_info = {
            META_INFO_KEY: StepRecords(result, plan.soft.position_of())}
    # The plugin's rows replaced SGLang's choice after SGLang's own cross-rank sync:
    # sync the final ids the way SGLang syncs its own (when it does: see its sampler).
    sampler._sync_token_ids_across_tp(next_ids, sampling_info)
    return next_ids


def register(registry, hook_type) -> None:
    registry.register(MODEL_RUNNER_SAMPLE, _around_model_runner_sample, hook_type.AROUND)
    registry.register(SAMPLER_FORWARD, _around_sampler_forward, hook_type.AROUND)
