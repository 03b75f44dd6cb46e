"""Seam: request state. Validates soft-thinking parameters and admits requests to the table.

Two hooks, SGLang 0.5.23:

* ``TokenizerManager._create_tokenized_object`` (BEFORE), in the server process:
  validates ``sampling_params.custom_params``' soft-thinking part while the raw
  request is still at hand (SGLang later rewrites temperature 0 as greedy), and
  rewrites it in the canonical flat form, since ``custom_params`` may only
  nest one level. A ``ValueError`` here becomes SGLang's 400.
* ``Scheduler.run_batch`` (BEFORE), in each scheduler process: resolves each new
  request's settings to numbers, once, on the host, and keeps them on SGLang's
  ``Req`` (the table rows are written where the forward batch is built, see batch.py).

Deletable when SGLang grows per-request decoding-state hooks.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from pydantic import ValidationError

from sglang_soft_thinking import concept as C
from sglang_soft_thinking import runtime
from sglang_soft_thinking.params import (
    CUSTOM_PARAMS_KEY,
    FLAT_NAMES,
    METHODS,
    SoftThinkingParams,
    describe_validation_error,
)
from sglang_soft_thinking.draws import seed_of
from sglang_soft_thinking.runtime import SETTINGS_ATTR
from sglang_soft_thinking.state import RequestSettings

logger = logging.getLogger(__name__)

TOKENIZE_TARGET = "sglang.srt.managers.tokenizer_manager.TokenizerManager._create_tokenized_object"
RUN_BATCH_TARGET = "sglang.srt.managers.scheduler.Scheduler.run_batch"


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
        method=METHODS.index(params.method),
        beta=params.beta,
        window_size=params.window_size,
        max_switch_count=-1 if params.max_switch_count is None else params.max_switch_count,
        noise_kind=noise_kind,
        noise_param=noise_param,
        after_temperature=after.temperature,
        after_top_k=C.TOP_K_ALL if after.top_k == -1 else after.top_k,
        after_top_p=after.top_p,
        after_min_p=after.min_p,
        think_end_ids=runtime.get().tokenize_think_end(tokenizer, params.think_end_str),
        return_trace=params.return_trace,
        seed=seed_of(sampling.sampling_seed, req.rid),
    )


def resolve_batch(scheduler, batch) -> None:
    """Give every request of the batch its settings (None: plain), once per request."""
    for req in batch.reqs:
        if hasattr(req, SETTINGS_ATTR):
            continue
        try:
            settings = resolve_settings(req, scheduler.tokenizer)
        except ValueError as error:
            from sglang.srt.managers.schedule_batch import FINISH_ABORT

            # Validated in the server process already; should this ever fail, end the
            # request with an error (after this step, as SGLang ends aborted requests)
            # rather than serve it plainly behind a soft-thinking request or stop the
            # scheduler.
            logger.exception("soft thinking: request %s aborted", req.rid)
            req.to_finish = FINISH_ABORT(f"soft thinking: the request's settings could not be "
                                         f"resolved: {error}", HTTPStatus.INTERNAL_SERVER_ERROR)
            settings = None
        setattr(req, SETTINGS_ATTR, settings)


def _before_run_batch(scheduler, batch, *args, **kwargs):
    if batch.reqs and scheduler.is_generation:
        resolve_batch(scheduler, batch)


def register(registry, hook_type) -> None:
    registry.register(TOKENIZE_TARGET, _before_tokenize, hook_type.BEFORE)
    registry.register(RUN_BATCH_TARGET, _before_run_batch, hook_type.BEFORE)
