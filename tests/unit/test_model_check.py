"""Which models soft thinking refuses at start-up (``hooks/model_check.py``), on small module trees.

The trees are built from SGLang's own embedding classes (without tensor parallelism), shaped
like the models they stand for. The real engine's refusal is tested on Gemma 3 in
``tests/integration/test_model_families.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sglang_soft_thinking.hooks.model_check import embedding_problem, find_input_embedding

VOCAB, HIDDEN = 100, 8


def vocab_embedding(vocab: int = VOCAB):
    from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding

    return VocabParallelEmbedding(vocab, HIDDEN, enable_tp=False)


def lm_head():
    from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead

    return ParallelLMHead(VOCAB, HIDDEN, enable_tp=False)


class Inner(nn.Module):
    def __init__(self, embed_tokens: nn.Module, **extra: nn.Module):
        super().__init__()
        self.embed_tokens = embed_tokens
        for name, module in extra.items():
            setattr(self, name, module)


class CausalLM(nn.Module):
    """``model.embed_tokens`` and an ``lm_head``, tied (the same module) or not."""

    def __init__(self, embed_tokens: nn.Module, tied: bool = False, **extra: nn.Module):
        super().__init__()
        self.model = Inner(embed_tokens, **extra)
        self.lm_head = embed_tokens if tied else lm_head()


class WithGetter(CausalLM):
    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens


class EmbedsIds(CausalLM):
    """Like SGLang's Phi: ``get_input_embeddings`` embeds ids instead of returning the module."""

    def get_input_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_tokens(input_ids)


class ScaledEmbedding(nn.Embedding):
    """Like SGLang's Gemma 3 embedding: a plain nn.Embedding that scales its rows."""

    def forward(self, input_ids):
        return super().forward(input_ids) * HIDDEN**0.5


@pytest.mark.parametrize("model", [
    pytest.param(lambda: CausalLM(vocab_embedding()), id="untied"),
    pytest.param(lambda: CausalLM(vocab_embedding(), tied=True), id="tied"),
    pytest.param(lambda: WithGetter(vocab_embedding()), id="get_input_embeddings"),
    pytest.param(lambda: CausalLM(vocab_embedding(), embed_positions=nn.Embedding(32, HIDDEN)),
                 id="a small position table"),
])
def test_a_plain_vocab_parallel_lookup_is_accepted(model):
    assert embedding_problem(model(), is_multimodal=False) is None


def test_the_module_found_is_the_one_get_input_embeddings_returns():
    model = WithGetter(vocab_embedding())
    assert find_input_embedding(model) is model.model.embed_tokens


def test_a_multimodal_model_is_refused():
    problem = embedding_problem(CausalLM(vocab_embedding()), is_multimodal=True)
    assert "multimodal" in problem


def test_a_lookup_of_another_class_is_mixed_through_its_own_forward():
    """Gemma 3's scaled nn.Embedding, a lookup subclass with a forward of its own: accepted,
    and their rows are taken through that forward (so a scaled row is mixed scaled); SGLang's
    own lookup is mixed from its shard."""
    from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding

    from sglang_soft_thinking.hooks.embedding import mixer_for
    from sglang_soft_thinking.mixing import ModuleMixer, ShardMixer

    class Offset(VocabParallelEmbedding):
        def forward(self, input_ids):
            return super().forward(input_ids + 1)

    scaled, offset = ScaledEmbedding(VOCAB, HIDDEN), Offset(VOCAB, HIDDEN, enable_tp=False)
    for module in (scaled, offset):
        assert embedding_problem(CausalLM(module), is_multimodal=False) is None
        assert isinstance(mixer_for(module), ModuleMixer)
    assert isinstance(mixer_for(vocab_embedding()), ShardMixer)
    ids, weights = torch.tensor([[3, 7]]), torch.tensor([[0.25, 0.75]])
    with torch.no_grad():
        expected = 0.25 * scaled(torch.tensor([3])) + 0.75 * scaled(torch.tensor([7]))
        torch.testing.assert_close(mixer_for(scaled)(ids, weights), expected)


def test_an_input_module_that_is_not_a_token_lookup_is_refused():
    problem = embedding_problem(CausalLM(nn.Linear(HIDDEN, HIDDEN)), is_multimodal=False)
    assert "Linear, not a token lookup" in problem


def test_a_get_input_embeddings_that_wants_the_ids_is_refused():
    problem = embedding_problem(EmbedsIds(vocab_embedding()), is_multimodal=False)
    assert "get_input_embeddings() takes input_ids" in problem


def test_a_model_without_an_input_embedding_is_refused():
    model = nn.Module()
    model.model = nn.Module()
    assert "no input embedding module" in embedding_problem(model, is_multimodal=False)


@pytest.mark.parametrize("table", [
    pytest.param(lambda: vocab_embedding(), id="VocabParallelEmbedding"),
    pytest.param(lambda: nn.Embedding(VOCAB - 10, 4 * HIDDEN), id="nn.Embedding"),
])
def test_a_second_table_read_by_token_id_is_refused(table):
    """Per-layer embeddings (Gemma 3n's, for instance) look the ids up again."""
    model = CausalLM(vocab_embedding(), embed_tokens_per_layer=table())
    problem = embedding_problem(model, is_multimodal=False)
    assert "second embedding table (model.embed_tokens_per_layer" in problem
