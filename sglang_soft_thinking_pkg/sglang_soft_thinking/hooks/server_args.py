"""Seam: server options. Engine modes soft thinking cannot be right in are refused at start-up.

Two hooks, SGLang 0.5.23, on ``ServerArgs.resolve_once``, which every launcher
(``launch_server``, ``Engine``) runs before it starts the scheduler processes: BEFORE (the
options as given) and AFTER (as SGLang resolved them, read through its ``resolved_view``). An option that is switched on and
listed in :data:`REFUSED` stops the start with a ``ValueError`` naming the option and the
reason. AFTER also checks that every hook of the plugin is in place (registration.verify_hooks). A plain request would be served fine in
those modes, but a soft-thinking one would silently get discrete decoding or another
request's state, and the engine cannot tell in advance which requests will think.
To run SGLang with such an option, start it without this plugin's hooks:
``SOFTTHINK_DISABLE=1``.

Every other option is classified in ``option_classes.py`` (no effect, or verified by a
named test), and a unit test fails on an option of SGLang's that is in no class.

Deletable option by option, as each mode is made right and tested.
"""

from __future__ import annotations

from sglang_soft_thinking.registration import verify_hooks


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
    "--attn-dp-size": (
        lambda a: (getattr(a, "attn_dp_size", 1) or 1) > 1,
        "data-parallel attention pads and splits batches across ranks, which soft thinking "
        "is not verified with (--dp-size alone is supported)"),
    "--enable-attn-tp-input-scattered": (
        lambda a: getattr(a, "enable_attn_tp_input_scattered", False),
        "under tensor parallelism the embedding output stays a per-rank partial sum, while the "
        "concept-token mixtures written into it are fully reduced"),
    "--enable-layernorm-sp": (
        lambda a: getattr(a, "enable_layernorm_sp", False),
        "sequence parallelism shards each prefill's tokens across ranks, which soft thinking's "
        "concept positions are not verified with"),
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
    "--decoupled-spec-role": (
        lambda a: str(getattr(a, "decoupled_spec_role", "null")) not in ("null", "None"),
        "speculative decoding verifies several drafted tokens per step; soft thinking "
        "feeds one concept token per step"),
    "--enable-strict-thinking": (
        lambda a: getattr(a, "enable_strict_thinking", False),
        "its token filter during thinking masks SGLang's sampler after the soft step has read "
        "the logits"),
    "--enable-watermark": (
        lambda a: getattr(a, "enable_watermark", False),
        "the watermark biases SGLang's sampler after the soft step has read the logits"),
    "--radix-cache-backend": (
        lambda a: getattr(a, "radix_cache_backend", None) is not None,
        "a plugin's radix cache is not known to keep concept-token KV out of the cache"),
    "--enable-lmcache": (
        lambda a: getattr(a, "enable_lmcache", False),
        "an external KV store is not known to keep concept-token KV out of the cache"),
    "--enable-flexkv": (
        lambda a: getattr(a, "enable_flexkv", False),
        "an external KV store is not known to keep concept-token KV out of the cache"),
    "--enable-unified-cache-external-linker": (
        lambda a: getattr(a, "enable_unified_cache_external_linker", False),
        "an external KV store is not known to keep concept-token KV out of the cache"),
    "--sampling-backend": (
        lambda a: _is_custom_sampler(getattr(a, "sampling_backend", None)),
        "a sampler registered by a plugin may replace Sampler.forward, where soft-thinking "
        "rows are sampled"),
    "--device": (
        lambda a: getattr(a, "device", None) not in (None, "cpu", "cuda"),
        "soft thinking's device code is written and tested for CPU and CUDA only"),
    "--mlx-enable-sampling": (
        lambda a: getattr(a, "mlx_enable_sampling", False),
        "MLX samples inside its own graph, outside the sampler soft thinking hooks"),
    "--enable-lora": (
        lambda a: bool(getattr(a, "enable_lora", None)) or bool(getattr(a, "lora_paths", None)),
        "a LoRA adapter on the embedding would not be mixed into the concept tokens, and "
        "soft thinking is not verified with LoRA adapters"),
}


def _is_custom_sampler(backend: str | None) -> bool:
    """Whether ``backend`` names a sampler a plugin registered with SGLang's
    ``register_sampler_backend`` (SGLang's own backends share its ``Sampler``)."""
    if backend is None:
        return False
    from sglang.srt.layers import sampler

    return backend in getattr(sampler, "_CUSTOM_SAMPLER_FACTORIES", {})


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


def refuse_resolved(server_args) -> None:
    """:func:`refuse` on the options as SGLang resolved them. Resolution leaves the record's
    fields as given and keeps its decisions beside them (``_resolved_overrides``); SGLang's
    ``resolved_view`` reads the two together. It may switch an option on for a model, or
    rewrite one spelling as another (``--dp-size N --enable-dp-attention`` becomes
    ``--attn-dp-size N`` with the flag off, ``--dwdp-size N`` also sets ``--attn-dp-size``)."""
    from sglang.srt.arg_groups.model_override_base import resolved_view

    refuse(resolved_view(server_args))


def _after_resolve(result, server_args, *args, **kwargs):
    verify_hooks()
    refuse_resolved(server_args)  # as resolved: SGLang may switch an option on for a model
    return result


def register(registry, hook_type) -> None:
    registry.register(TARGET, _before_resolve, hook_type.BEFORE)
    registry.register(TARGET, _after_resolve, hook_type.AFTER)
