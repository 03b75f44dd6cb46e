"""The embedding seam: concept tokens join the embedding's own per-rank output, before its one all-reduce
(hooks/embedding.py), for SGLang's VocabParallelEmbedding quantized or not.

Tensor parallelism cannot run on this machine, so ranks are simulated in one process:
each is a real ``VocabParallelEmbedding`` built for its rank (SGLang's own shard layout and
weight loader), run through SGLang's real ``forward``; only the collective is stood in for,
by a function that records each call and hands back the rank's tensor, and the ranks'
results are then summed (what the all-reduce computes). The embedding is quantized by a
stand-in quantization method that stores int8 rows with a scale per row and dequantizes on
lookup, as SGLang's GGUF and ModelOpt NVFP4 methods do through ``quant_method.embedding``;
the float weight is poisoned with NaN, so a lookup that bypasses the quantization shows.
Expected values: ``sum_i w_i * dequantized(E)[ids_i]`` in float64.
"""

import pytest
import torch
from request_settings import request_settings

from sglang_soft_thinking import runtime
from sglang_soft_thinking.hooks import embedding as hook
from sglang_soft_thinking.hooks.model_check import embedding_problem, folds_into_shard
from sglang_soft_thinking.mixing import ModuleMixer, ShardMixer
from sglang_soft_thinking.plan import BatchPlan, SoftRows
from sglang_soft_thinking.runtime import PLAN_ATTR
from sglang_soft_thinking.table import SoftThinkingTable

ORG, ADDED, HIDDEN, K_MAX = 40, 4, 8, 5
VOCAB = ORG + ADDED


class Int8RowsMethod:
    """Stand-in quantized embedding: int8 rows, one float scale per row."""

    def embedding(self, layer, ids):
        return layer.qweight[ids].float() * layer.row_scales[ids]


def quantized_table() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    q = torch.randint(-127, 128, (VOCAB, HIDDEN), dtype=torch.int8)
    scales = torch.rand(VOCAB, 1) * 0.02 + 0.001
    return q, scales


def dequantized() -> torch.Tensor:
    q, scales = quantized_table()
    return q.double() * scales.double()


def rank_embedding(rank: int, ranks: int, module_class=None):
    """Rank ``rank`` of ``ranks``: SGLang's module, layout and loader; int8 rows."""
    from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding
    from sglang.srt.runtime_context import get_parallel

    with get_parallel().override(tp_rank=rank, tp_size=ranks, tp_group=None):
        module = (module_class or VocabParallelEmbedding)(VOCAB, HIDDEN, org_num_embeddings=ORG,
                                                          padding_size=8, enable_tp=ranks > 1)
    # The rank's rows where SGLang's layout puts them: its original-vocabulary ids from row
    # 0, its added ids after the original part's padding; padding rows stay unused.
    s = module.shard_indices
    org = torch.arange(s.org_vocab_start_index, s.org_vocab_end_index)
    added = torch.arange(s.added_vocab_start_index, s.added_vocab_end_index)
    local = torch.cat([org - s.org_vocab_start_index,
                       added - s.added_vocab_start_index + s.num_org_elements_padded])
    q, scales = quantized_table()
    rows = module.weight.shape[0]
    module.qweight = torch.zeros(rows, HIDDEN, dtype=torch.int8)
    module.row_scales = torch.full((rows, 1), float("nan"))
    module.qweight[local] = q[torch.cat([org, added])]
    module.row_scales[local] = scales[torch.cat([org, added])]
    with torch.no_grad():
        module.weight.fill_(float("nan"))
    module.quant_method = Int8RowsMethod()
    return module


@pytest.fixture
def rt(monkeypatch):
    """A fresh plugin runtime, SGLang's shard-local lookup wrapped by the plugin's hook (as
    its hook registry does), and a recording stand-in for the all-reduce."""
    import sglang.srt.layers.vocab_parallel_embedding as vpe
    from sglang.srt.runtime_context import get_parallel

    fresh = runtime.Runtime()
    monkeypatch.setattr(runtime, "_RUNTIME", fresh)
    original = vpe.VocabParallelEmbedding._embed_local_shard
    monkeypatch.setattr(vpe.VocabParallelEmbedding, "_embed_local_shard",
                        lambda self, input_: hook._around_local_shard(original, self, input_))
    fresh.reduces = []
    monkeypatch.setattr(vpe, "tensor_model_parallel_all_reduce",
                        lambda tensor: (fresh.reduces.append(tuple(tensor.shape)), tensor)[1])
    with get_parallel().override(tp_group=None), torch.no_grad():
        yield fresh


class DecodeBatch:
    """What the embedding hook reads of SGLang's ForwardBatch: the mode and the request rows."""

    def __init__(self, rows: list[int], soft: list[int] | None):
        from sglang.srt.model_executor.forward_batch_info import ForwardMode

        self.forward_mode = ForwardMode.DECODE
        self.req_pool_indices = torch.tensor(rows)
        if soft is not None:  # None: a batch SGLang built itself (graph capture), no plan
            plan = BatchPlan(soft=SoftRows(index=soft, groups=[], k_used=K_MAX,
                                           index_tensor=torch.tensor(soft)) if soft else None)
            setattr(self, PLAN_ATTR, plan)


def thinking_table(table: SoftThinkingTable | None = None) -> tuple[SoftThinkingTable, torch.Tensor, torch.Tensor]:
    """Rows 1 and 3 think with concept tokens on both sides of shard edges and in the added
    vocabulary (one narrower than the table); rows 0 and 2 are plain. Written into
    ``table`` when given (a captured graph reads that table's buffers)."""
    table = table or SoftThinkingTable(4, k_max=K_MAX, device="cpu")
    s = request_settings(think_end_ids=[3])
    table.admit([0, 1, 2, 3], [None, s, None, s])
    ids = torch.tensor([[9, 10, 11, 40, 43], [19, 20, 21, 0, 0]])
    weights = torch.tensor([[0.4, 0.3, 0.15, 0.1, 0.05], [0.5, 0.3, 0.2, 0.0, 0.0]])
    table.concept_ids[[1, 3]] = ids
    table.concept_weights[[1, 3]] = weights
    table.has_concept[[1, 3]] = 1
    return table, ids, weights


def expected(token_ids, ids, weights) -> torch.Tensor:
    """Rows 1 and 3 their mixtures, rows 0 and 2 their tokens' rows, dequantized, float64."""
    table = dequantized()
    out = table[token_ids].clone()
    out[[1, 3]] = torch.einsum("nk,nkh->nh", weights.double(), table[ids])
    return out


@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("with_plan", [True, False], ids=["eager", "graph_capture"])
def test_quantized_shards_fold_their_mixtures_into_the_one_all_reduce(rt, ranks, with_plan):
    rt.table, ids, weights = thinking_table()
    token_ids = torch.tensor([5, 12, 41, 30])
    rt.forward_batch = DecodeBatch([0, 1, 2, 3], [1, 3] if with_plan else None)
    outputs = []
    for rank in range(ranks):
        module = rank_embedding(rank, ranks)
        assert folds_into_shard(module) and embedding_problem(_Model(module), is_multimodal=False) is None
        rt.mixer = None
        hook.install(module)
        outputs.append(module(token_ids))
        assert len(rt.reduces) == rank + 1, "the rank's forward reduces once"
    assert rt.reduces == [(4, HIDDEN)] * ranks, "one all-reduce of [batch, hidden] per rank, no other"
    got = torch.stack(outputs).sum(0)  # the all-reduce
    torch.testing.assert_close(got.double(), expected(token_ids, ids, weights), atol=1e-6, rtol=1e-5)
    assert rt.table.input_mixed[[1, 3]].tolist() == [1, 1] and rt.table.input_mixed[[0, 2]].tolist() == [0, 0]


def test_a_quantized_lookup_is_mixed_on_its_shard_through_the_quantization(rt):
    """TP 1: the mixer looks the ids up through the quantization method, not the (NaN)
    weight and not the module's forward."""
    module = rank_embedding(0, 1)
    mixer = hook.mixer_for(module)
    assert isinstance(mixer, ShardMixer)
    _, ids, weights = thinking_table()
    got = mixer(ids, weights)
    torch.testing.assert_close(got.double(), expected(torch.zeros(4, dtype=torch.long), ids, weights)[[1, 3]],
                               atol=1e-6, rtol=1e-5)


class _Model(torch.nn.Module):
    def __init__(self, embedding):
        super().__init__()
        self.embed_tokens = embedding

    def get_input_embeddings(self):
        return self.embed_tokens


def test_a_subclass_with_a_forward_of_its_own_is_refused_under_tp_naming_it(rt):
    from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding

    class ShiftedEmbedding(VocabParallelEmbedding):
        def forward(self, input_ids):
            return super().forward(input_ids + 1)

    problem = embedding_problem(_Model(rank_embedding(0, 2, ShiftedEmbedding)), is_multimodal=False)
    assert problem is not None and "ShiftedEmbedding" in problem and "--tp-size 1" in problem
    # At TP 1 there is no all-reduce to multiply: mixed through its own forward.
    alone = rank_embedding(0, 1, ShiftedEmbedding)
    assert embedding_problem(_Model(alone), is_multimodal=False) is None
    assert isinstance(hook.mixer_for(alone), ModuleMixer)


# Decode CUDA graphs (hooks/decode_graphs.py). torch.jit.trace records ops the way a CUDA
# graph capture does (Python state frozen, no Python at replay) and stands in for it here.

class _Runner:
    """What the graph hooks read of SGLang's DecodeCudaGraphRunner."""

    class model_runner:  # noqa: N801 (an attribute holder)
        is_draft_worker = False


def capture_both(rt, module, token_ids, rows):
    """The plugin's capture hook around a stand-in for SGLang's capture of one batch size:
    it records the embedding step under the label SGLang is asked to capture."""
    from sglang_soft_thinking.hooks import decode_graphs

    graphs, flags = {}, {}

    def capture_one_shape(runner, size, forward, stream_idx=None, variant_label=None, *args):
        rt.forward_batch = DecodeBatch(rows.tolist(), None)  # SGLang's capture batch: no plan
        flags[variant_label] = rt.capturing_plain
        graphs[variant_label] = torch.jit.trace(module, (token_ids,), check_trace=False)
        rt.forward_batch = None

    decode_graphs._around_capture_one_shape(capture_one_shape, _Runner(), len(rows), module.forward, None, None)
    return graphs, flags


def test_plain_steps_replay_a_graph_without_mixing_and_soft_steps_the_mixing_one(rt):
    import warnings

    from sglang_soft_thinking.hooks.decode_graphs import PLAIN, SOFT, _around_resolve_variant

    module = rank_embedding(0, 1)
    hook.install(module)
    token_ids, rows = torch.tensor([5, 12, 41, 30]), torch.tensor([0, 1, 2, 3])
    rt.table = SoftThinkingTable(4, k_max=K_MAX, device="cpu")
    rt.table.admit([0, 1, 2, 3], [None] * 4)  # no request thinks while the graphs are captured
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graphs, flags = capture_both(rt, module, token_ids, rows)
    assert flags == {SOFT: False, PLAIN: True}, "each batch size captured twice, the plain one without mixing"
    assert "aten::bmm" in str(graphs[SOFT].inlined_graph)
    assert "aten::bmm" not in str(graphs[PLAIN].inlined_graph), "no mixing op in the plain graph"

    _, ids, weights = thinking_table(rt.table)  # later, rows 1 and 3 think
    soft_batch, plain_batch = DecodeBatch([0, 1, 2, 3], [1, 3]), DecodeBatch([0, 1, 2, 3], [])
    resolve = lambda batch: _around_resolve_variant(lambda runner, fb: None, _Runner(), batch)  # noqa: E731
    assert resolve(soft_batch) == SOFT and resolve(plain_batch) == PLAIN
    assert resolve(DecodeBatch([0, 1, 2, 3], None)) == SOFT, "a batch without a plan replays the mixing graph"
    torch.testing.assert_close(graphs[SOFT](token_ids).double(), expected(token_ids, ids, weights),
                               atol=1e-6, rtol=1e-5)
    rt.table.input_mixed.zero_()
    plain = graphs[PLAIN](token_ids)
    torch.testing.assert_close(plain.double(), dequantized()[token_ids], atol=1e-6, rtol=1e-5)
    assert rt.table.input_mixed.sum() == 0, "the plain graph touches no table row"


def test_an_eager_batch_without_a_thinking_row_is_left_as_looked_up(rt):
    """The eager path decides on the host from the plan, as the graph choice does: a plan
    with no soft row gets the lookup back untouched, even while other rows of the table think."""
    module = rank_embedding(0, 1)
    hook.install(module)
    rt.table, _, _ = thinking_table()
    token_ids = torch.tensor([5, 12, 41, 30])
    rt.forward_batch = DecodeBatch([0, 1, 2, 3], [])
    torch.testing.assert_close(module(token_ids).double(), dequantized()[token_ids], atol=1e-6, rtol=1e-5)
    assert rt.table.input_mixed.sum() == 0
