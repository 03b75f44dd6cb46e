"""Seam: request state. Validates soft-thinking parameters and admits requests to the table.

Two hooks, SGLang 0.5.23:

* ``TokenizerManager._create_tokenized_object`` (BEFORE), in the server process:
  validates ``sampling_params.custom_params``' soft-thinking part while the raw
  request is still at hand (SGLang later rewrites temperature 0 as greedy), and
  rewrites it in the canonical flat form, since ``custom_params`` may only
  nest one level. A ``ValueError`` here becomes SGLang's 400.
* ``Scheduler.run_batch`` (AROUND), in each scheduler process: writes the table
  rows of requests that just got a ``req_pool_idx`` and publishes this batch's
  :class:`BatchPlan` while the batch runs.

Deletable when SGLang grows per-request decoding-state hooks.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from sglang_soft_thinking import concept as C
from sglang_soft_thinking import runtime
from sglang_soft_thinking.params import (
    CUSTOM_PARAMS_KEY,
    FLAT_NAMES,
    SoftThinkingParams,
    describe_validation_error,
)
from sglang_soft_thinking.state import BatchPlan, RequestSettings

logger = logging.getLogger(__name__)

TOKENIZE_TARGET = "sglang.srt.managers.tokenizer_manager.TokenizerManager._create_tokenized_object"
RUN_BATCH_TARGET = "sglang.srt.managers.scheduler.Scheduler.run_batch"

# Where a request's resolved settings and table row are kept on SGLang's Req.
_SETTINGS_ATTR = "_soft_thinking_settings"
_ROW_ATTR = "_soft_thinking_row"


def validate_sampling_params(sampling_params: dict | None) -> SoftThinkingParams | None:
    """Check a request's soft-thinking parameters and put them in canonical form, in place."""
    if not sampling_params:
        return None
    custom_params = sampling_params.get("custom_params")
    try:
        params = SoftThinkingParams.from_custom_params(custom_params)
    except ValidationError as error:
        raise ValueError(describe_validation_error(error)) from None
    if params is None:
        return None
    temperature = sampling_params.get("temperature")
    if temperature is not None and temperature <= 0:
        raise ValueError("temperature: must be > 0 with soft thinking "
                         "(use soft_thinking.after_thinking.temperature = 0 for a greedy answer)")
    rest = {k: v for k, v in custom_params.items() if k != CUSTOM_PARAMS_KEY and k not in FLAT_NAMES}
    sampling_params["custom_params"] = {**rest, **params.to_custom_params()}
    return params


def _before_tokenize(manager, obj, *args, **kwargs):
    sampling_params = getattr(obj, "sampling_params", None)
    if isinstance(sampling_params, dict):
        validate_sampling_params(sampling_params)
    elif isinstance(sampling_params, list):
        for item in sampling_params:
            validate_sampling_params(item)


def resolve_settings(req, tokenizer) -> RequestSettings | None:
    """A request's soft-thinking settings as numbers, or None for a plain request."""
    sampling = req.sampling_params
    params = SoftThinkingParams.from_custom_params(sampling.custom_params)
    if params is None:
        return None
    noise_kind, noise_param = C.NOISE_NONE, 1.0
    if params.noise is not None and params.noise.type == "gumbel":
        noise_kind, noise_param = C.NOISE_GUMBEL, params.noise.temperature
    elif params.noise is not None:
        noise_kind, noise_param = C.NOISE_DIRICHLET, params.noise.alpha
    after = params.after_thinking
    return RequestSettings(
        prompt_len=len(req.origin_input_ids),
        temperature=sampling.temperature,
        top_k=min(sampling.top_k, C.TOP_K_ALL),
        top_p=sampling.top_p,
        min_p=params.min_p,
        max_topk=params.max_topk,
        entropy_threshold=params.early_stopping_entropy_threshold,
        length_threshold=params.early_stopping_length_threshold,
        max_thinking_tokens=-1 if params.max_thinking_tokens is None else params.max_thinking_tokens,
        noise_kind=noise_kind,
        noise_param=noise_param,
        after_temperature=after.temperature,
        after_top_k=C.TOP_K_ALL if after.top_k == -1 else after.top_k,
        after_top_p=after.top_p,
        after_min_p=after.min_p,
        think_end_ids=runtime.get().tokenize_think_end(tokenizer, params.think_end_str),
        return_trace=params.return_trace,
    )


def admit_new_requests(scheduler, batch) -> list[RequestSettings]:
    """Write table rows for requests new to their row; return the soft requests' settings."""
    rt = runtime.get()
    new_rows, new_settings, soft = [], [], []
    for req in batch.reqs:
        row = req.kv.req_pool_idx
        if getattr(req, _ROW_ATTR, None) != row:
            try:
                settings = resolve_settings(req, scheduler.tokenizer)
            except ValueError:
                # Validated in the server process already; should this ever fail, serve the
                # request plainly rather than let the exception stop the scheduler.
                logger.exception("soft thinking: request %s served without it", req.rid)
                settings = None
            setattr(req, _SETTINGS_ATTR, settings)
            setattr(req, _ROW_ATTR, row)
            new_rows.append(row)
            new_settings.append(settings)
        settings = getattr(req, _SETTINGS_ATTR)
        if settings is not None:
            soft.append(settings)
    if new_rows and (soft or rt.table is not None):
        table = rt.ensure_table(scheduler.req_to_token_pool.req_to_token.shape[0], scheduler.device)
        table.admit(new_rows, new_settings)
    return soft


def plan_batch(soft: list[RequestSettings], vocab_size: int) -> BatchPlan | None:
    if not soft:
        return None
    dirichlet = any(s.noise_kind == C.NOISE_DIRICHLET for s in soft)
    finite = [s.top_k for s in soft if s.top_k < C.TOP_K_ALL]
    answer_all = any(s.after_top_k >= C.TOP_K_ALL for s in soft)
    answer_finite = [s.after_top_k for s in soft if s.after_top_k < C.TOP_K_ALL]
    k_used = max(s.max_topk for s in soft)
    return BatchPlan(
        k_used=k_used,
        fetch_k_think=C.required_fetch_k(vocab_size, k_used, finite, full_support=dirichlet),
        fetch_k_answer=C.required_fetch_k(vocab_size, 1, answer_finite, full_support=answer_all),
        any_noise=any(s.noise_kind != C.NOISE_NONE for s in soft),
        any_trace=any(s.return_trace for s in soft),
    )


def _around_run_batch(original, scheduler, batch, *args, **kwargs):
    rt = runtime.get()
    plan = None
    if batch.reqs and scheduler.is_generation:
        soft = admit_new_requests(scheduler, batch)
        if soft:
            plan = plan_batch(soft, scheduler.model_config.vocab_size)
    rt.plan = plan
    try:
        return original(scheduler, batch, *args, **kwargs)
    finally:
        rt.plan = None


def register(registry, hook_type) -> None:
    registry.register(TOKENIZE_TARGET, _before_tokenize, hook_type.BEFORE)
    registry.register(RUN_BATCH_TARGET, _around_run_batch, hook_type.AROUND)
