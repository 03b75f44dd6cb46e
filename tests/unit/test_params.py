"""The soft-thinking parameter model: defaults, limits, the flat names, canonical form."""

import pytest
from pydantic import ValidationError

from sglang_soft_thinking.hooks.requests import validate_sampling_params
from sglang_soft_thinking.params import SoftThinkingParams, describe_validation_error


def error_text(value) -> str:
    with pytest.raises(ValidationError) as info:
        SoftThinkingParams.parse(value)
    return describe_validation_error(info.value)


def test_defaults_follow_the_design():
    p = SoftThinkingParams()
    assert (p.max_topk, p.min_p, p.early_stopping_entropy_threshold, p.early_stopping_length_threshold) == (10, 0.001, 0.01, 256)
    assert p.think_end_str == "</think>" and p.noise is None and not p.return_trace
    assert p.after_thinking.model_dump() == {"temperature": 0.6, "top_p": 0.95, "top_k": 30, "min_p": 0.0}


@pytest.mark.parametrize("value, field", [
    ({"max_topk": 0}, "soft_thinking.max_topk"),
    ({"max_topk": 65}, "soft_thinking.max_topk"),
    ({"early_stopping_entropy_threshold": -0.1}, "soft_thinking.early_stopping_entropy_threshold"),
    ({"early_stopping_length_threshold": 0}, "soft_thinking.early_stopping_length_threshold"),
    ({"noise": {"type": "uniform"}}, "soft_thinking.noise"),
    ({"noise": {"type": "gumbel", "temperature": 0}}, "soft_thinking.noise.gumbel.temperature"),
    ({"after_thinking": {"top_p": 1.5}}, "soft_thinking.after_thinking.top_p"),
    ({"max_thinking_tokens": -1}, "soft_thinking.max_thinking_tokens"),
    ({"think_end_str": ""}, "soft_thinking.think_end_str"),
    ({"max_topk": 5, "colour": "red"}, "soft_thinking.colour"),
    ({"method": "no_such_method"}, "soft_thinking.method"),
    ({"method": "mixture_of_inputs", "beta": -1}, "soft_thinking.beta"),
    ({"method": "switch", "window_size": 0}, "soft_thinking.window_size"),
    ({"method": "switch", "max_switch_count": 0}, "soft_thinking.max_switch_count"),
])
def test_invalid_values_name_the_field(value, field):
    assert error_text(value).startswith(field + ":")


def test_limit_follows_environment(monkeypatch):
    monkeypatch.setenv("SOFTTHINK_MAX_TOPK", "4")
    assert "at most 4" in error_text({"max_topk": 5})


def test_flat_names_of_the_reference_fork():
    p = SoftThinkingParams.from_flat({
        "enable_soft_thinking": True, "max_topk": 15, "after_thinking_temperature": 0.0,
        "after_thinking_top_k": -1, "add_noise_dirichlet": True, "dirichlet_temperature": 2.0,
    })
    assert p.max_topk == 15 and p.after_thinking.temperature == 0.0 and p.after_thinking.top_k == -1
    assert p.noise.type == "dirichlet" and p.noise.alpha == 2.0
    with pytest.raises(ValueError, match="unknown soft-thinking parameter"):
        SoftThinkingParams.from_flat({"enable_soft_thinking": True, "max_top_k": 3})


def test_canonical_form_round_trips_and_is_one_level_deep():
    p = SoftThinkingParams.parse({"max_topk": 7, "noise": {"type": "gumbel", "temperature": 0.3},
                                  "after_thinking": {"temperature": 0}, "return_trace": True})
    custom = p.to_custom_params()
    assert all(not isinstance(v, (dict, list)) for v in custom["soft_thinking"].values())
    assert SoftThinkingParams.from_custom_params(custom) == p


def test_method_and_its_parameters_round_trip_under_both_names():
    p = SoftThinkingParams.parse({"method": "mixture_of_inputs", "beta": 0.5, "max_topk": 20})
    assert SoftThinkingParams.from_custom_params(p.to_custom_params()) == p
    flat = SoftThinkingParams.from_flat({"enable_soft_thinking": True, "method": "mixture_of_inputs",
                                         "beta": 0.5, "max_topk": 20})
    assert flat == p and SoftThinkingParams().method == "concept"
    switch = SoftThinkingParams.parse({"method": "switch", "window_size": 4, "max_switch_count": 2,
                                       "noise": {"type": "gumbel"}})
    assert SoftThinkingParams.from_custom_params(switch.to_custom_params()) == switch


def test_noise_with_the_mixture_of_inputs_is_refused():
    text = error_text({"method": "mixture_of_inputs", "noise": {"type": "gumbel"}})
    assert text.startswith("soft_thinking.noise:") and "noise applies to concept tokens" in text


def test_request_validation_rewrites_custom_params_and_rejects_greedy_thinking():
    sampling = {"temperature": 0.7, "custom_params": {"soft_thinking": {"max_topk": 3}, "other": 1}}
    params = validate_sampling_params(sampling)
    assert params.max_topk == 3
    assert sampling["custom_params"]["other"] == 1
    assert sampling["custom_params"]["soft_thinking"]["enable_soft_thinking"] is True
    with pytest.raises(ValueError, match="^temperature: must be > 0"):
        validate_sampling_params({"temperature": 0, "custom_params": {"enable_soft_thinking": True}})
    with pytest.raises(ValueError, match="soft_thinking.max_topk"):
        validate_sampling_params({"custom_params": {"soft_thinking": {"max_topk": -2}}})
    assert validate_sampling_params({"temperature": 0, "custom_params": {"soft_thinking": {"enabled": False}}}) is None
    assert validate_sampling_params({"temperature": 0}) is None
