"""Flags come from the settings model and SGLang's own options; request fields map onto
SGLang's sampling parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_sglang_options_given_reach_the_engine_options_and_only_those():
    settings = parse_settings(["--chunked-prefill-size", "64", "--context-length", "1024",
                               "--dp-size", "2", "--enable-mixed-chunk", "--tp", "1",
                               "--attention-backend", "torch_native"])
    assert settings.engine_options == {"chunked_prefill_size": 64, "context_length": 1024,
                                       "dp_size": 2, "enable_mixed_chunk": True, "tp_size": 1,
                                       "attention_backend": "torch_native"}
    assert parse_settings([]).engine_options == {}


def test_sglang_checks_its_own_option_values(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        parse_settings(["--attention-backend", "no-such-backend"])
    assert exit_info.value.code == 2
    assert "--attention-backend: invalid choice: 'no-such-backend'" in capsys.readouterr().err


def test_our_flags_win_where_sglang_has_the_same_name():
    from server.settings import build_parser

    settings = parse_settings(["--model", "/m/x", "--port", "8001", "--max-total-tokens", "512",
                               "--dtype", "float32", "--api-key", "k"])
    assert settings.model_path == Path("/m/x") and settings.port == 8001
    assert (settings.max_total_tokens, settings.dtype, settings.api_key) == (512, "float32", "k")
    assert settings.engine_options == {}
    parser, sglang_dests = build_parser()
    assert "port" not in sglang_dests and "model_path" not in sglang_dests
    assert "--port" in parser.epilog and "--max-total-tokens" in parser.epilog
    help_text = parser.format_help()
    assert "--quantization" in help_text and "--enable-torch-compile" in help_text


def test_think_markers_flag_takes_two_different_markers():
    import pytest
    from pydantic import ValidationError

    from server.settings import build_parser

    assert parse_settings([]).think_markers is None
    settings = parse_settings(["--think-markers", "<reasoning>", "</reasoning>"])
    assert settings.think_markers == ("<reasoning>", "</reasoning>")
    for markers in (["", "</r>"], ["<r>", "<r>"]):
        with pytest.raises(ValidationError, match="two different, non-empty markers"):
            parse_settings(["--think-markers", *markers])
    assert "--think-markers START END" in build_parser()[0].format_help()


def test_a_config_file_gives_sglang_options_and_the_command_line_wins(tmp_path):
    config = tmp_path / "engine.yaml"
    config.write_text("chunked-prefill-size: 128\ncontext-length: 2048\nport: 9001\n")
    settings = parse_settings(["--config", str(config), "--context-length", "512"])
    assert settings.engine_options == {"chunked_prefill_size": 128, "context_length": 512}
    assert settings.port == 9001


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


def test_soft_thinking_requests_to_an_engine_without_it_are_refused_naming_the_field():
    from server.errors import APIError
    from server.soft_thinking import refuse_if_off
    from sglang_soft_thinking.params import SoftThinkingParams

    soft = SoftThinkingParams()
    refuse_if_off(None, "plugin off")  # a plain request is served
    refuse_if_off(soft, None)  # the engine runs soft thinking
    with pytest.raises(APIError) as raised:
        refuse_if_off(soft, "plugin off")
    assert raised.value.status_code == 400 and raised.value.param == "soft_thinking"
    assert raised.value.message.startswith("soft_thinking: ") and "(plugin off)" in raised.value.message


def test_a_defaults_file_that_turns_soft_thinking_on_needs_an_engine_with_it(tmp_path):
    """--soft-thinking FILE on an engine without soft thinking would refuse every request:
    the server does not start."""
    from server.soft_thinking import DefaultsFileError, check_defaults_servable, load_defaults

    path = tmp_path / "soft.json"
    path.write_text('{"max_topk": 5}')
    defaults = load_defaults(path)
    check_defaults_servable(path, defaults, None)
    check_defaults_servable(None, None, "plugin off")
    with pytest.raises(DefaultsFileError, match=r"^--soft-thinking: .*soft.json turns soft "
                                                r"thinking on .*\(plugin off\)"):
        check_defaults_servable(path, defaults, "plugin off")
    path.write_text('{"enabled": false}')  # a file that switches it off is fine
    check_defaults_servable(path, load_defaults(path), "plugin off")
