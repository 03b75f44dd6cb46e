"""Tiny random-weight checkpoints, one per model family, built from transformers configs.

Every checkpoint has two layers, a hidden size of 64 and the default model's tokenizer
(so its vocabulary), and is written in float32 with its tokenizer beside it. The weights
are drawn with a fixed seed, so a family's checkpoint is the same on every run.

The weights are drawn ten times wider than transformers' default (``INITIALIZER_RANGE``).
At the default 0.02 a random model's next-token distribution is close to uniform over the
vocabulary (measured: entropy 10.78 nats of ln 49152 = 10.80, the five largest
probabilities within 0.03 of each other), so every concept token is about the same even
mixture whatever was fed. At 0.2 the distribution is peaked (entropy 8.7 to 8.9 nats; the
concept token's largest weight between 0.2 and 0.97) and moves with the input, so a wrong
input shows in the trace.

The settings a family needs beyond the common ones are those of its real checkpoints:
Gemma 2's ``hidden_act`` (SGLang reads it; transformers 5 names it ``hidden_activation``),
DeepSeek-V2's ``moe_layer_freq`` and YaRN rope (SGLang's CPU rope supports only DeepSeek's
YaRN; a factor of 1 makes it plain rope in both SGLang and transformers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

HIDDEN = 64
COMMON = dict(hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
MOE = dict(moe_intermediate_size=32, num_experts_per_tok=2)
INITIALIZER_RANGE = 0.2


@dataclass(frozen=True)
class Family:
    """One architecture: its transformers config class and the settings that make it tiny."""

    name: str
    config_class: str  # a class of the ``transformers`` package
    architecture: str  # the ``architectures`` entry SGLang picks its model class by
    tied: bool
    settings: dict = field(default_factory=dict)


FAMILIES = {family.name: family for family in [
    Family("llama", "LlamaConfig", "LlamaForCausalLM", tied=False),
    Family("llama-tied", "LlamaConfig", "LlamaForCausalLM", tied=True),
    Family("qwen2", "Qwen2Config", "Qwen2ForCausalLM", tied=False),
    Family("qwen3", "Qwen3Config", "Qwen3ForCausalLM", tied=True, settings=dict(head_dim=16)),
    Family("qwen3-moe", "Qwen3MoeConfig", "Qwen3MoeForCausalLM", tied=False,
           settings=dict(head_dim=16, num_experts=4, decoder_sparse_step=1, **MOE)),
    Family("mistral", "MistralConfig", "MistralForCausalLM", tied=False,
           settings=dict(head_dim=16, sliding_window=None)),
    Family("gemma2", "Gemma2Config", "Gemma2ForCausalLM", tied=True,
           settings=dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=256,
                         hidden_act="gelu_pytorch_tanh")),
    Family("gemma3", "Gemma3TextConfig", "Gemma3ForCausalLM", tied=True,
           settings=dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=256)),
    Family("phi3", "Phi3Config", "Phi3ForCausalLM", tied=False),
    # Refused at start-up: SGLang's Phi (Phi-1/2) get_input_embeddings() embeds ids rather
    # than returning its embedding module.
    Family("phi", "PhiConfig", "PhiForCausalLM", tied=False,
           settings=dict(partial_rotary_factor=0.5, num_key_value_heads=4)),  # SGLang's Phi: no GQA
    Family("olmo2", "Olmo2Config", "Olmo2ForCausalLM", tied=False),
    # Built but not served by the tests: SGLang 0.5.23 does not run these two on this CPU
    # (README, "Model families", has the errors).
    Family("deepseek-v2", "DeepseekV2Config", "DeepseekV2ForCausalLM", tied=False,
           settings=dict(q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16,
                         qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=4,
                         n_shared_experts=1, first_k_dense_replace=1, topk_method="greedy",
                         n_group=1, topk_group=1, moe_layer_freq=1, scoring_func="softmax", **MOE,
                         rope_parameters=dict(rope_type="yarn", factor=1.0, rope_theta=10000.0,
                                              original_max_position_embeddings=512))),
    Family("gpt-oss", "GptOssConfig", "GptOssForCausalLM", tied=False,
           settings=dict(head_dim=16, num_local_experts=4, num_experts_per_tok=2,
                         sliding_window=128)),
]}


def build_checkpoint(family: Family, path: Path, tokenizer) -> Path:
    """Write ``family``'s tiny checkpoint and ``tokenizer`` to ``path``; returns ``path``."""
    import transformers

    config_class = getattr(transformers, family.config_class)
    config = config_class(
        vocab_size=len(tokenizer), initializer_range=INITIALIZER_RANGE,
        tie_word_embeddings=family.tied, architectures=[family.architecture],
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.eos_token_id, **{**COMMON, **family.settings})
    model_class = getattr(transformers, family.architecture)
    torch.manual_seed(0)
    model = model_class(config).to(torch.float32)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
