"""Native ``/generate`` fields a soft-thinking request may not carry, and why.

SGLang 0.5.23 lets a ``GenerateReqInput`` ask for features that act on its sampler's own
choice of token: they run inside ``Sampler.forward`` after the soft step has read the raw
logits (``hooks/sampler.py``), or they reuse or split the request in ways the per-request
soft-thinking state does not follow. Served with soft thinking, each would return
something that looks right and is not (a logprob of a token the plugin did not write, a
grammar that never constrained the thinking tokens, ...). So a soft-thinking request that
carries one is refused with a 400 naming the field (``hooks/requests.py`` calls
:func:`unsupported_field` in the tokenizer manager, where a ``ValueError`` becomes
SGLang's 400). Plain requests keep every feature.

Pure data and checks: no SGLang import. Our OpenAI server never sends these fields for a
soft-thinking request (it refuses ``logprobs`` with soft thinking itself and runs ``n``
choices as separate engine requests).
"""

from __future__ import annotations

from typing import Any

# GenerateReqInput field -> why it is refused with soft thinking.
REQUEST_FIELDS = {
    "return_logprob": "SGLang reports the logprob of the token its own sampler chose, not of the "
                      "token soft thinking writes (use soft_thinking.return_trace for the "
                      "concept tokens' weights)",
    "return_sampling_mask": "the mask is SGLang's sampler's, which does not choose the thinking tokens",
    "custom_logit_processor": "it runs in SGLang's sampler after the soft step has read the logits, "
                              "so it would not shape the thinking distribution",
    "session_params": "a session continues from the request's KV, which holds concept tokens past "
                      "the prompt; sessions are not verified with soft thinking",
    "session_id": "a session continues from the request's KV, which holds concept tokens past the "
                  "prompt; sessions are not verified with soft thinking",
    "watermark": "the watermark biases SGLang's sampler after the soft step has read the logits",
    "max_thinking_tokens": "SGLang's thinking budget is a logit processor that the soft step does not "
                           "see; use soft_thinking.max_thinking_tokens",
}

# sampling_params key -> why it is refused with soft thinking.
SAMPLING_FIELDS = {
    "regex": "a grammar masks SGLang's sampler's choice, while the thinking tokens are chosen by the "
             "soft step",
    "json_schema": "a grammar masks SGLang's sampler's choice, while the thinking tokens are chosen "
                   "by the soft step",
    "ebnf": "a grammar masks SGLang's sampler's choice, while the thinking tokens are chosen by the "
            "soft step",
    "structural_tag": "a grammar masks SGLang's sampler's choice, while the thinking tokens are "
                      "chosen by the soft step",
    "stop_regex": "stop regexes are not verified with soft thinking (stop strings are: use stop)",
    "watermark": "the watermark biases SGLang's sampler after the soft step has read the logits",
}

# sampling_params keys whose value must stay at most 1.
AT_MOST_ONE = {
    "n": "parallel samples share one prefix request and are not verified with soft thinking; send "
         "the request n times (with different seeds)",
    "beam_width": "beam search re-selects tokens from SGLang's logits; soft-thinking rows are never "
                  "admitted to a beam",
}


def _is_set(value: Any) -> bool:
    """Whether a field asks for its feature: anything but None, False, 0, '' or empty."""
    return bool(value)


def unsupported_field(obj: Any, sampling_params: dict) -> str | None:
    """The refusal message for the first feature a soft-thinking request asks for that soft
    thinking cannot serve right, or None. ``obj`` is the (single) ``GenerateReqInput``,
    ``sampling_params`` its sampling parameters as SGLang will build them."""
    for name, reason in REQUEST_FIELDS.items():
        if _is_set(getattr(obj, name, None)):
            return f"{name}: not supported with soft thinking ({reason})"
    for name, reason in SAMPLING_FIELDS.items():
        if _is_set(sampling_params.get(name)):
            return f"sampling_params.{name}: not supported with soft thinking ({reason})"
    for name, reason in AT_MOST_ONE.items():
        value = sampling_params.get(name)
        if isinstance(value, (int, float)) and value > 1:
            return f"sampling_params.{name}: must be 1 with soft thinking ({reason})"
    return None
