"""Native ``/generate`` fields a soft-thinking request may not carry (native_fields.py), checked
through the tokenizer-manager hook (hooks/requests.py) on SGLang's own ``GenerateReqInput``."""

from types import SimpleNamespace

import pytest
from sglang.srt.managers.io_struct import GenerateReqInput

from sglang_soft_thinking.hooks.requests import _before_tokenize
from sglang_soft_thinking.native_fields import AT_MOST_ONE, REQUEST_FIELDS, SAMPLING_FIELDS

SOFT = {"temperature": 0.7, "max_new_tokens": 4, "custom_params": {"soft_thinking": {"max_topk": 4}}}
MANAGER = SimpleNamespace(tokenizer=None, preferred_sampling_params=None)

# One request per refused feature: the GenerateReqInput fields, the sampling_params additions,
# and the field the 400 must name.
CASES = [
    ({"return_logprob": True}, {}, "return_logprob"),
    ({"return_sampling_mask": True}, {}, "return_sampling_mask"),
    ({"custom_logit_processor": "{\"callable\": \"x\"}"}, {}, "custom_logit_processor"),
    ({"session_params": {"id": "s1"}}, {}, "session_params"),
    ({"session_id": "s1"}, {}, "session_id"),
    ({"watermark": {"enabled": True}}, {}, "watermark"),
    ({"max_thinking_tokens": 8}, {}, "max_thinking_tokens"),
    ({}, {"regex": "[0-9]+"}, "sampling_params.regex"),
    ({}, {"json_schema": "{\"type\": \"string\"}"}, "sampling_params.json_schema"),
    ({}, {"ebnf": "root ::= \"a\""}, "sampling_params.ebnf"),
    ({}, {"structural_tag": "{}"}, "sampling_params.structural_tag"),
    ({}, {"stop_regex": "x+"}, "sampling_params.stop_regex"),
    ({}, {"watermark": {"enabled": True}}, "sampling_params.watermark"),
    ({}, {"n": 2}, "sampling_params.n"),
    ({}, {"beam_width": 3}, "sampling_params.beam_width"),
]


def request(fields: dict, sampling: dict) -> GenerateReqInput:
    obj = GenerateReqInput(input_ids=[1, 2, 3], sampling_params=sampling, **fields)
    obj.normalize_batch_and_arguments()
    return obj[0] if not obj.is_single else obj  # as the tokenizer manager hands it on


def test_every_refused_field_has_a_case():
    named = {name.removeprefix("sampling_params.") for _, _, name in CASES}
    assert set(REQUEST_FIELDS) | set(SAMPLING_FIELDS) | set(AT_MOST_ONE) <= named


@pytest.mark.parametrize("fields, sampling, name", CASES, ids=[c[2] for c in CASES])
def test_a_soft_request_with_the_field_is_refused_naming_it(fields, sampling, name):
    with pytest.raises(ValueError) as error:
        _before_tokenize(MANAGER, request(fields, {**SOFT, **sampling}))
    assert str(error.value).startswith(f"{name}: ")
    assert "soft thinking" in str(error.value)


@pytest.mark.parametrize("fields, sampling, name", CASES, ids=[c[2] for c in CASES])
def test_a_plain_request_keeps_the_feature(fields, sampling, name):
    plain = {k: v for k, v in SOFT.items() if k != "custom_params"}
    _before_tokenize(MANAGER, request(fields, {**plain, **sampling}))


def test_defaults_and_one_sample_pass():
    _before_tokenize(MANAGER, request({"return_logprob": False}, {**SOFT, "n": 1, "beam_width": 1,
                                                                   "regex": None, "stop": ["x"]}))


def test_the_servers_preferred_sampling_params_count_too():
    manager = SimpleNamespace(tokenizer=None, preferred_sampling_params={"regex": "[a-z]+"})
    with pytest.raises(ValueError, match=r"^sampling_params\.regex: "):
        _before_tokenize(manager, request({}, dict(SOFT)))
    # the request's own value overrides the preferred one, as SGLang merges them
    _before_tokenize(manager, request({}, {**SOFT, "regex": None}))


@pytest.mark.parametrize("sanitise", [False, True])
def test_soft_rows_see_logits_cleaned_as_sglangs_sampler_cleans_them(monkeypatch, sanitise):
    """NaN sanitising runs inside SGLang's sampler, after the soft step read the logits; the
    soft rows get the same cleaning first when it is switched on, and none when it is off."""
    import torch

    from sglang_soft_thinking.hooks.sampler import soft_rows_logits

    monkeypatch.setenv("SGLANG_SANITIZE_NAN_LOGITS", "1" if sanitise else "0")
    nan, inf = float("nan"), float("inf")
    logits = torch.tensor([[0.5, nan, 2.0], [1.0, 2.0, 3.0], [-inf, inf, 0.0]])
    rows = soft_rows_logits(logits, torch.tensor([0, 2]))
    if sanitise:
        expected = torch.tensor([[0.5, -1e30, 2.0], [-1e30, 1e30, 0.0]])
        assert torch.equal(rows, expected)
        assert torch.softmax(rows[0], dim=-1)[1] == 0  # a NaN logit gets no weight
    else:
        assert torch.equal(rows.isnan(), torch.tensor([[False, True, False], [False, False, False]]))
    assert logits[0, 1].isnan()  # SGLang's own sampler still gets its logits as they were

