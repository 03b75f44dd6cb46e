"""The options the plugin picks for SGLang on a machine without CUDA, and what it keeps."""

import logging

from sglang.srt.server_args import ServerArgs

from sglang_soft_thinking.cpu.server_defaults import CPU_DEFAULT_MAX_TOTAL_TOKENS, apply_cpu_defaults


def test_unset_options_get_the_cpu_defaults_and_the_log_says_so(caplog):
    args = ServerArgs(model_path="x")
    with caplog.at_level(logging.INFO):
        apply_cpu_defaults(args)
    assert (args.device, args.attention_backend) == ("cpu", "torch_native")
    assert args.max_total_tokens == CPU_DEFAULT_MAX_TOTAL_TOKENS
    assert args.sleep_on_idle and not args.disable_overlap_schedule
    assert f"KV pool of {CPU_DEFAULT_MAX_TOTAL_TOKENS} tokens" in caplog.text


def test_options_the_user_set_are_kept():
    args = ServerArgs(model_path="x", max_total_tokens=4096, attention_backend="sdpa",
                      disable_overlap_schedule=True)
    apply_cpu_defaults(args)
    assert (args.max_total_tokens, args.attention_backend) == (4096, "sdpa")
    assert args.disable_overlap_schedule
