"""Seam: server options. Engine modes soft thinking cannot be right in are refused at start-up.

Two hooks, SGLang 0.5.23, on ``ServerArgs.resolve_once``, which every launcher
(``launch_server``, ``Engine``) runs before it starts the scheduler processes: BEFORE (the
options as given) and AFTER (as SGLang resolved them). An option that is switched on and
listed in :data:`REFUSED` stops the start with a ``ValueError`` naming the option and the
reason. AFTER also checks that every hook of the plugin is in place (plugin.verify_hooks). A plain request would be served fine in
those modes, but a soft-thinking one would silently get discrete decoding or another
request's state, and the engine cannot tell in advance which requests will think.
To run SGLang with such an option, start it without this plugin's hooks:
``SOFTTHINK_DISABLE=1``.

Deletable option by option, as each mode is made right and tested.
"""

from __future__ import annotations

import os

from sglang_soft_thinking import checks

TARGET = "sglang.srt.server_args.ServerArgs.resolve_once"

# option (as typed) -> (is it switched on?, why soft thinking cannot run with it)
REFUSED = {
    "--speculative-algorithm": (
        lambda a: a.speculative_algorithm is not None,
        "speculative decoding verifies several drafted tokens per step; soft thinking "
        "feeds one concept token per step"),
    "--disaggregation-mode": (
        lambda a: str(a.disaggregation_mode) not in ("null", "None"),
        "with prefill and decode on different servers the decode server receives requests "
        "whose soft-thinking state and KV it did not compute"),
    "--pp-size": (
        lambda a: a.pp_size > 1,
        "pipeline stages before the last never sample, so their concept inputs would not advance"),
    "--enable-dp-attention": (
        lambda a: a.enable_dp_attention,
        "data-parallel attention pads and splits batches across ranks, which soft thinking "
        "is not verified with (--dp-size alone is supported)"),
    "--enable-two-batch-overlap": (
        lambda a: a.enable_two_batch_overlap,
        "it runs each batch as two micro-batches the soft-thinking inputs are not split for"),
    "--enable-pdmux": (
        lambda a: a.enable_pdmux,
        "it splits prefill from decode across streams outside the batches soft thinking plans"),
    "--dllm-algorithm": (
        lambda a: a.dllm_algorithm is not None,
        "diffusion decoding has no per-token step to feed a concept token into"),
    "--num-continuous-decode-steps": (
        lambda a: a.num_continuous_decode_steps > 1,
        "several decode steps per scheduling round are not verified with soft thinking"),
    "--enable-torch-compile": (
        lambda a: a.enable_torch_compile,
        "on a CPU SGLang's CPU graph runner needs the AMX attention backend and sgl-kernel's "
        "CPU operators (it stops at start-up with torch_native); on a GPU the compiled decode "
        "step is not verified to keep the concept-token inputs"),
    "--skip-tokenizer-init": (
        lambda a: a.skip_tokenizer_init,
        "the engine needs the tokenizer to find think_end_str in what a request writes"),
    "--attn-cp-size": (
        lambda a: (getattr(a, "attn_cp_size", 1) or 1) > 1,
        "context-parallel attention shards a prefill's tokens across ranks, while the positions "
        "of a re-prefill's concept tokens are the whole batch's"),
    "--enable-prefill-cp": (
        lambda a: getattr(a, "enable_prefill_cp", False),
        "context-parallel prefill shards a prefill's tokens across ranks, while the positions "
        "of a re-prefill's concept tokens are the whole batch's"),
    "--dcp-size": (
        lambda a: (getattr(a, "dcp_size", 1) or 1) > 1,
        "decode context parallelism is not verified with soft thinking"),
    "--enable-symm-mem": (
        lambda a: getattr(a, "enable_symm_mem", False) or getattr(a, "enable_torch_symm_mem", False),
        "the all-reduce of the concept-token mixtures is not allocated in symmetric memory"),
    "--enable-lora": (
        lambda a: bool(getattr(a, "enable_lora", None)) or bool(getattr(a, "lora_paths", None)),
        "a LoRA adapter on the embedding would not be mixed into the concept tokens, and "
        "soft thinking is not verified with LoRA adapters"),
}


def refused_options(server_args) -> list[str]:
    """One line per option that is on and refused."""
    return [f"{option}: {reason}" for option, (is_on, reason) in REFUSED.items()
            if is_on(server_args)]


def refuse(server_args) -> None:
    problems = refused_options(server_args)
    if problems:
        raise ValueError("soft thinking cannot run with these SGLang options (start with "
                         "SOFTTHINK_DISABLE=1 to run SGLang without soft thinking):\n  "
                         + "\n  ".join(problems))


def _before_resolve(server_args, *args, **kwargs):
    # As given, before SGLang's own checks of the same options can stop the start with
    # another message (it asserts, for one, that --tp-size is divisible by --attn-cp-size).
    refuse(server_args)


def _after_resolve(result, server_args, *args, **kwargs):
    from sglang_soft_thinking.plugin import verify_hooks

    verify_hooks()
    refuse(server_args)  # as resolved: SGLang may switch an option on for a model
    if str(getattr(server_args, "log_level", "")).lower() == "debug":
        # The cross-rank check of the soft state is on by default in debug (checks.py); the
        # scheduler processes started after this inherit it.
        os.environ.setdefault(checks.INTERVAL_ENV, str(checks.DEBUG_INTERVAL))
    return result


def register(registry, hook_type) -> None:
    registry.register(TARGET, _before_resolve, hook_type.BEFORE)
    registry.register(TARGET, _after_resolve, hook_type.AFTER)
