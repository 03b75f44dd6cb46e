"""Flags come from the settings model; request fields map onto SGLang's sampling parameters."""

from __future__ import annotations

from pathlib import Path

from server.engine import GenerationJob, build_sampling_params
from server.protocol import ChatCompletionRequest
from server.settings import ServerSettings, parse_settings
from server.soft_thinking import parse_soft_thinking

HELLO = [{"role": "user", "content": "hi"}]


def test_defaults_live_in_the_settings_model():
    settings = parse_settings([])
    assert settings == ServerSettings()
    assert settings.host == "127.0.0.1" and settings.port == 30000


def test_flags_override_defaults():
    settings = parse_settings(["--model-path", "/m/qwen", "--port", "1234",
                               "--max-topk-limit", "8", "--log-level", "warning"])
    assert settings.model_path == Path("/m/qwen") and settings.port == 1234
    assert settings.max_topk_limit == 8 and settings.log_level == "warning"
    assert settings.model_name() == "qwen"


def test_sampling_params_keep_engine_defaults_for_unset_fields():
    request = ChatCompletionRequest(messages=HELLO, top_k=20, stop="x", ignore_eos=True)
    params = build_sampling_params(request, None, max_new_tokens=9)
    assert params == {"max_new_tokens": 9, "temperature": 1.0, "top_k": 20, "stop": "x",
                      "ignore_eos": True}


def test_flat_soft_thinking_names_and_thinking_min_p():
    request = ChatCompletionRequest.model_validate(
        {"messages": HELLO, "enable_soft_thinking": True, "max_topk": 7, "min_p": 0.02,
         "after_thinking_temperature": 0.3})
    soft = parse_soft_thinking(request)
    assert soft.max_topk == 7 and soft.min_p == 0.02
    assert soft.after_thinking.temperature == 0.3
    params = build_sampling_params(request, soft, max_new_tokens=4)
    assert "min_p" not in params
    assert params["custom_params"]["soft_thinking"]["max_topk"] == 7


def test_soft_thinking_off_unless_asked():
    plain = ChatCompletionRequest.model_validate({"messages": HELLO, "max_topk": 3, "min_p": 0.1})
    assert parse_soft_thinking(plain) is None
    disabled = ChatCompletionRequest.model_validate(
        {"messages": HELLO, "soft_thinking": {"enabled": False}, "temperature": 0})
    assert parse_soft_thinking(disabled) is None


def test_choices_get_their_own_rid_and_seed():
    job = GenerationJob(prompts=[[1], [2]], n=2, sampling_params={"temperature": 1.0}, seed=5)
    assert job.num_choices == 4 and job.prompt_of(3) == [2]
    assert job.choice_params(3)["sampling_seed"] == 8
    assert len({job.choice_rid(i) for i in range(4)}) == 4


def test_server_default_soft_thinking_applies_to_requests_that_send_none(tmp_path):
    from server.soft_thinking import load_defaults

    path = tmp_path / "recommended.json"
    path.write_text('{"max_topk": 4, "after_thinking": {"temperature": 0.2, "top_k": 5}}')
    default = load_defaults(path)
    plain = ChatCompletionRequest.model_validate({"messages": HELLO})
    assert parse_soft_thinking(plain, default) == default
    # A request's own object goes on top of the defaults, after_thinking field by field.
    own = ChatCompletionRequest.model_validate(
        {"messages": HELLO, "soft_thinking": {"min_p": 0.05, "after_thinking": {"top_k": 9}}})
    merged = parse_soft_thinking(own, default)
    assert (merged.max_topk, merged.min_p) == (4, 0.05)
    assert (merged.after_thinking.temperature, merged.after_thinking.top_k) == (0.2, 9)
    opt_out = ChatCompletionRequest.model_validate(
        {"messages": HELLO, "soft_thinking": {"enabled": False}, "temperature": 0})
    assert parse_soft_thinking(opt_out, default) is None


def test_server_default_soft_thinking_keeps_the_temperature_rule(tmp_path):
    import pytest

    from server.errors import APIError
    from server.soft_thinking import load_defaults

    path = tmp_path / "soft.yaml"
    path.write_text("max_topk: 3\n")
    greedy = ChatCompletionRequest.model_validate({"messages": HELLO, "temperature": 0})
    with pytest.raises(APIError, match="temperature"):
        parse_soft_thinking(greedy, load_defaults(path))
