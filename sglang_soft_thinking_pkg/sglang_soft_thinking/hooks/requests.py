"""Seam: request state. Validates soft-thinking parameters and resolves them per request.

Three hooks, SGLang 0.5.23:

* ``TokenizerManager._tokenize_one_request`` (BEFORE), in the server process: refuses
  input embeddings with soft thinking (a 400 naming ``input_embeds``) before SGLang's own
  checks of them;
* ``TokenizerManager._create_tokenized_object`` (BEFORE), in the server process:
  validates ``sampling_params.custom_params``' soft-thinking part while the raw
  request is still at hand (SGLang later rewrites temperature 0 as greedy), and
  rewrites it in the canonical flat form, since ``custom_params`` may only
  nest one level; and refuses, for a soft-thinking request, the native fields soft
  thinking cannot serve right (native_fields.py: logprobs, grammars, beam search, ``n``,
  sessions, logit processors, ...). A ``ValueError`` here becomes SGLang's 400.
* ``Scheduler.run_batch`` (BEFORE), in each scheduler process: resolves each new
  request's settings to numbers, once, on the host, and keeps them on SGLang's
  ``Req`` (the table rows are written where the forward batch is built, see batch.py).

With the plugin switched off (``SOFTTHINK_DISABLE=1``) only one hook is registered, on
``_create_tokenized_object`` too: it refuses every request that asks for soft thinking with
a 400 naming ``soft_thinking`` (the engine would otherwise decode it plainly).

Deletable when SGLang grows per-request decoding-state hooks.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from sglang_soft_thinking import faults, runtime
from sglang_soft_thinking.draws import seed_of
from sglang_soft_thinking.hooks.results import fail_request, note_fault
from sglang_soft_thinking.native_fields import unsupported_field
from sglang_soft_thinking.params import CUSTOM_PARAMS_KEY, FLAT_NAMES, SoftThinkingParams, describe_validation_error
from sglang_soft_thinking.phases import MAX_END_TOKENS
from sglang_soft_thinking.runtime import SETTINGS_ATTR
from sglang_soft_thinking.settings import RequestSettings, resolve

logger = logging.getLogger(__name__)
TOKENIZE_TARGET = "sglang.srt.managers.tokenizer_manager.TokenizerManager._create_tokenized_object"
TOKENIZE_ONE_TARGET = "sglang.srt.managers.tokenizer_manager.TokenizerManager._tokenize_one_request"
RUN_BATCH_TARGET = "sglang.srt.managers.scheduler.Scheduler.run_batch"


def validate_sampling_params(sampling_params: dict | None, tokenizer=None,
                             input_embeds=None) -> SoftThinkingParams | None:
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
    if input_embeds is not None:
        raise ValueError("input_embeds: not accepted with soft thinking (its thinking steps are fed "
                         "through the model's token embedding; send input_ids or text)")
    if tokenizer is not None:
        length = len(runtime.get().tokenize_think_end(tokenizer, params.think_end_str))
        if length > MAX_END_TOKENS:
            raise ValueError(f"soft_thinking.think_end_str: {length} tokens long; at most "
                             f"{MAX_END_TOKENS} are supported")
    rest = {k: v for k, v in custom_params.items() if k != CUSTOM_PARAMS_KEY and k not in FLAT_NAMES}
    sampling_params["custom_params"] = {**rest, **params.to_custom_params()}
    return params


def _before_tokenize_one(manager, obj, *args, **kwargs):
    """Input embeddings with soft thinking are refused before SGLang looks at them."""
    sampling_params = getattr(obj, "sampling_params", None)
    if getattr(obj, "input_embeds", None) is None or not isinstance(sampling_params, dict):
        return
    validate_sampling_params(dict(sampling_params), input_embeds=obj.input_embeds)


def validate_request(obj, sampling_params: dict, tokenizer=None, preferred: dict | None = None) -> None:
    """Check one request's soft-thinking parameters (in place, as validate_sampling_params)
    and, when it thinks softly, the native fields it carries. ``preferred`` is the server's
    ``--preferred-sampling-params``, which SGLang merges under the request's own."""
    params = validate_sampling_params(sampling_params, tokenizer, getattr(obj, "input_embeds", None))
    if params is None:
        return
    problem = unsupported_field(obj, {**(preferred or {}), **sampling_params})
    if problem is not None:
        raise ValueError(problem)


def _before_tokenize(manager, obj, *args, **kwargs):
    sampling_params = getattr(obj, "sampling_params", None)
    tokenizer = getattr(manager, "tokenizer", None)
    preferred = getattr(manager, "preferred_sampling_params", None)
    items = [sampling_params] if isinstance(sampling_params, dict) else sampling_params
    for item in items if isinstance(items, list) else ():
        validate_request(obj, item, tokenizer, preferred)


def asks_for_soft_thinking(sampling_params: dict | None) -> bool:
    """Whether a request's ``sampling_params`` turn soft thinking on; invalid soft-thinking
    parameters count as asking for it."""
    if not isinstance(sampling_params, dict):
        return False
    try:
        return SoftThinkingParams.from_custom_params(sampling_params.get("custom_params")) is not None
    except (ValidationError, ValueError):
        return True


def refuse_soft_thinking(obj, reason: str) -> None:
    """A ``ValueError`` (SGLang's 400) when any prompt of ``obj`` asks for soft thinking."""
    sampling_params = getattr(obj, "sampling_params", None)
    items = sampling_params if isinstance(sampling_params, list) else [sampling_params]
    if any(asks_for_soft_thinking(item) for item in items):
        raise ValueError(f"soft_thinking: this engine runs without soft thinking ({reason}); "
                         f"send the request without soft-thinking parameters for plain decoding")


def register_refusal(registry, hook_type, reason: str) -> None:
    """The one hook of a switched-off plugin: soft-thinking requests are refused, not served plainly."""

    def before_tokenize(manager, obj, *args, **kwargs):
        refuse_soft_thinking(obj, reason)

    registry.register(TOKENIZE_TARGET, before_tokenize, hook_type.BEFORE)


def resolve_settings(req, tokenizer) -> RequestSettings | None:
    """A request's soft-thinking settings as numbers, or None for a plain request."""
    sampling = req.sampling_params
    params = SoftThinkingParams.from_custom_params(sampling.custom_params)
    if params is None:
        return None
    return resolve(params, prompt_len=len(req.origin_input_ids), temperature=sampling.temperature,
                   top_k=sampling.top_k, top_p=sampling.top_p,
                   think_end_ids=runtime.get().tokenize_think_end(tokenizer, params.think_end_str),
                   seed=seed_of(sampling.sampling_seed, req.rid))


def resolve_batch(scheduler, batch) -> None:
    """Give every request of the batch its settings (None: plain), once per request. One
    whose settings do not resolve (validated in the server process already, so this should
    not happen), or for which a fault is met here, is flagged (``note_fault``) and aborted
    after its first step on every rank (agreement.py), never served plainly."""
    for req in batch.reqs:
        if hasattr(req, SETTINGS_ATTR):
            continue
        settings = None
        try:
            settings = resolve_settings(req, scheduler.tokenizer)
            if settings is not None:
                faults.check("resolve", (settings.seed,))
        except Exception as error:  # a fault here costs this request alone
            logger.exception("soft thinking: resolving request %s failed", req.rid)
            note_fault(req, f"the request's settings could not be resolved: {error}")
            settings = None
        if settings is not None and runtime.get().table is None:
            fail_request(req, "the plugin's state table does not exist in this scheduler "
                              "(its hooks are not in place)")
            settings = None
        if settings is not None:
            try:
                faults.check("vocabulary", (settings.seed,))
                runtime.get().ensure_vocabulary(scheduler.tokenizer)
            except Exception as error:
                logger.exception("soft thinking: the model's vocabulary could not be built")
                note_fault(req, f"the model's vocabulary could not be built: {error}")
                settings = None  # plain here until the abort: its method may need the vocabulary
        setattr(req, SETTINGS_ATTR, settings)


def _before_run_batch(scheduler, batch, *args, **kwargs):
    if batch.reqs and scheduler.is_generation:
        resolve_batch(scheduler, batch)


def register(registry, hook_type) -> None:
    registry.register(TOKENIZE_ONE_TARGET, _before_tokenize_one, hook_type.BEFORE)
    registry.register(TOKENIZE_TARGET, _before_tokenize, hook_type.BEFORE)
    registry.register(RUN_BATCH_TARGET, _before_run_batch, hook_type.BEFORE)
