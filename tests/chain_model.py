"""A tiny random-weight model that writes a fixed chain of tokens, and a server for it.

The model is a one-layer Llama whose attention and MLP outputs are zero, so each next token
depends on the current token alone. Its output layer is set so that the most likely
successor of each token of the chain is the next one, by a margin of tens of nats: greedy
decoding and soft thinking (whose concept token is then almost one token) both follow it.
"""

from __future__ import annotations

from pathlib import Path

from server_process import serving


def words(tokenizer, text: str) -> list[int]:
    """The tokens of ``text``, checked to be one per word."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) == len(text.split()), f"each word of {text!r} is one token"
    return ids


def save_chain_model(path: Path, tokenizer, chain: list[int]) -> None:
    """Save, with ``tokenizer``, a model whose most likely successor of ``chain[i]`` is
    ``chain[i + 1]`` (the tokens must be distinct)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    assert len(set(chain)) == len(chain), "a token of the chain has one successor"
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, rms_norm_eps=1e-6,
                         tie_word_embeddings=False, architectures=["LlamaForCausalLM"],
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        normed = embeddings * torch.rsqrt(embeddings.pow(2).mean(-1, keepdim=True) + 1e-6)
        model.lm_head.weight.normal_(0.0, 0.01)
        for token, successor in zip(chain, chain[1:]):
            model.lm_head.weight[successor] += normed[token]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def served(path: Path, name: str, *flags: str):
    """``python -m server`` for the model at ``path``, in float32; stopped on exit."""
    return serving("--max-total-tokens", "4096", "--dtype", "float32", *flags, name=name, model=path)
