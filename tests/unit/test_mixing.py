"""Concept-token mixtures from a vocabulary split across tensor-parallel ranks (mixing.py).

Each simulated rank holds a shard laid out as SGLang's VocabParallelEmbedding lays it out:
its part of the original vocabulary, padding up to a multiple, then its part of the added
vocabulary and padding again. Padding rows hold NaN, so a lookup that lands on one poisons
the result. The ranks' partial mixtures, summed (the all-reduce), must equal the formula
``sum_i w_i E[ids_i]`` computed on the whole table in float64.
"""

import math

import pytest
import torch

from sglang_soft_thinking.mixing import ModuleMixer, ShardMixer, VocabShard

ORG, ADDED, HIDDEN = 50, 6, 8


def full_table() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(ORG + ADDED, HIDDEN)


def shards(table: torch.Tensor, ranks: int) -> list[ShardMixer]:
    org_per = math.ceil(ORG / ranks)
    added_per = math.ceil(ADDED / ranks)
    mixers = []
    for r in range(ranks):
        org_ids = list(range(r * org_per, min((r + 1) * org_per, ORG)))
        added_ids = list(range(ORG + r * added_per, min(ORG + (r + 1) * added_per, ORG + ADDED)))
        local = torch.full((org_per + added_per, HIDDEN), float("nan"))
        local[:len(org_ids)] = table[org_ids]
        local[org_per:org_per + len(added_ids)] = table[added_ids]
        shard = VocabShard(org_start=r * org_per, org_end=r * org_per + len(org_ids), org_padded=org_per,
                           added_start=ORG + r * added_per, added_end=ORG + r * added_per + len(added_ids))
        mixers.append(ShardMixer(local, shard))
    return mixers


def by_formula(table, ids, weights) -> torch.Tensor:
    return torch.einsum("nk,nkh->nh", weights.double(), table.double()[ids])


# Ids inside shards, on their first and last ids, on both sides of every edge, in the
# added vocabulary, and a row whose tokens all lie in one shard.
IDS = torch.tensor([[0, 12, 13, 25], [26, 37, 38, 49], [49, 50, 51, 55], [3, 4, 5, 6], [24, 25, 26, 27]])


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_shards_reduced_once_equal_the_whole_vocabulary(ranks):
    table = full_table()
    torch.manual_seed(1)
    weights = torch.softmax(torch.randn(IDS.shape), dim=-1)
    weights[3, 2:] = 0.0  # a concept token narrower than the table's width
    partials = [mixer.partial(IDS, weights) for mixer in shards(table, ranks)]
    mixed = torch.stack(partials).sum(dim=0)
    torch.testing.assert_close(mixed.double(), by_formula(table, IDS, weights), atol=1e-5, rtol=1e-5)
    if ranks > 1:  # each rank sees only its own ids
        assert all(not torch.allclose(p, mixed) for p in partials)


def test_the_reduce_runs_once_on_the_mixtures():
    table, calls = full_table(), []

    def reduce(tensor):
        calls.append(tuple(tensor.shape))
        return tensor

    mixer = ShardMixer(table, VocabShard.whole(ORG + ADDED), reduce=reduce)
    weights = torch.full(IDS.shape, 0.25)
    torch.testing.assert_close(mixer(IDS, weights).double(), by_formula(table, IDS, weights))
    assert calls == [(IDS.shape[0], HIDDEN)], "one all-reduce of [N, H], not of every looked-up row"


def test_a_scaled_embedding_module_mixes_its_own_scaled_rows():
    """Gemma-style: the module multiplies its lookup by a constant, and so must the mixture."""
    table = full_table()
    embedding = torch.nn.Embedding.from_pretrained(table)
    mixer = ModuleMixer(lambda ids: embedding(ids) * 3.0)
    weights = torch.full(IDS.shape, 0.25)
    torch.testing.assert_close(mixer(IDS, weights).double(), 3.0 * by_formula(table, IDS, weights))


def test_weights_are_summed_in_the_embeddings_dtype():
    table = full_table().to(torch.bfloat16)
    mixer = ShardMixer(table, VocabShard.whole(ORG + ADDED))
    weights = torch.full(IDS.shape, 0.25)
    mixed = mixer(IDS, weights)
    assert mixed.dtype == torch.bfloat16
    torch.testing.assert_close(mixed.double(), by_formula(table.float(), IDS, weights), atol=2e-2, rtol=1e-2)
