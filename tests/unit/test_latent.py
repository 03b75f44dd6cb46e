"""The vector input kind and the ``latent`` method (LaTER), without a server.

Checked against computations written here: the least-squares map against numpy's ridge
solution, each step's vector and switch against the rule written out per row, the decode
inputs' choice of vector or mixture, the sum over two real gloo ranks of their shares of
a vocabulary-parallel embedding (the vector counted once, no collective added), the
records and trace of a vector step, and the refusal to resume such a request.
"""

import os
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from request_settings import CONCEPT, request_settings

from sglang_soft_thinking.geometry import build_geometry
from sglang_soft_thinking.methods import method_id
from sglang_soft_thinking.methods.base import Vocabulary
from sglang_soft_thinking.mixing import ShardMixer, VocabShard, decode_inputs
from sglang_soft_thinking.output import trace_entries
from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.records import RequestRecords, StepRecords
from sglang_soft_thinking.resume import RecordsMismatch, resume
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

LATENT = method_id("latent")
VOCAB, HIDDEN, K_MAX = 40, 8, 6
STOP_TOKEN, NEWLINE_END, NEWLINE_START = 30, 31, 32


def weights(seed=0, tied=False):
    g = torch.Generator().manual_seed(seed)
    w_in = torch.randn(VOCAB, HIDDEN, generator=g)
    w_out = w_in if tied else torch.randn(VOCAB, HIDDEN, generator=g)
    return w_in, w_out


def geometry_of(w_in, w_out, chunk_rows=7):
    return build_geometry(lambda ids: w_in[ids], w_out, w_in, VOCAB, chunk_rows=chunk_rows)


@pytest.mark.parametrize("tied", [False, True])
def test_the_realignment_map_is_the_ridge_least_squares_solution(tied):
    w_in, w_out = weights(1, tied)
    geometry = geometry_of(w_in, w_out)
    a, b = w_out.double().numpy(), w_in.double().numpy()
    # The ridge solution as the stacked least-squares problem [W_out; sqrt(l) I] X = [W_in; 0].
    stacked = np.vstack([a, np.sqrt(1e-5) * np.eye(HIDDEN)])
    expected = np.linalg.lstsq(stacked, np.vstack([b, np.zeros((HIDDEN, HIDDEN))]), rcond=None)[0]
    np.testing.assert_allclose(geometry.realign.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert abs(float(geometry.target_norm) - np.linalg.norm(b, axis=1).mean()) < 1e-4
    v = torch.randn(3, HIDDEN)
    ids, sims = geometry.nearest(v, 4)
    cos = torch.nn.functional.cosine_similarity(v[:, None, :], w_in[None], dim=2)
    want = cos.topk(4, dim=1)
    assert torch.equal(ids, want.indices) and torch.allclose(sims, want.values, atol=1e-5)


def vocabulary():
    masks = {name: torch.zeros(VOCAB, dtype=torch.bool) for name in ("latent_stop", "newline_start", "newline_end")}
    masks["latent_stop"][STOP_TOKEN] = True
    masks["newline_end"][NEWLINE_END] = True
    masks["newline_start"][NEWLINE_START] = True
    return Vocabulary(masks=masks)


def latent_table(requests):
    table = SoftThinkingTable(len(requests), K_MAX, "cpu")
    table.ensure_vectors(HIDDEN)
    table.admit(list(range(len(requests))), requests)
    return table


def one_step(table, requests, logits, hidden, geometry, positions=None):
    rows = torch.arange(len(requests))
    table.store_hidden(rows, hidden)
    soft = group_soft_rows(list(range(len(requests))), requests, VOCAB)
    order = torch.tensor(soft.index)
    return soft_step(table, order, logits[order], soft, positions, vocabulary=vocabulary(), geometry=geometry), order


def peaked(token, height=30.0):
    logits = torch.zeros(VOCAB)
    logits[token] = height
    return logits


def test_a_latent_step_feeds_the_realigned_hidden_state_and_the_rule_switches_to_explicit():
    w_in, w_out = weights(2)
    geometry = geometry_of(w_in, w_out)
    requests = [request_settings(method=LATENT, max_topk=3, think_end_ids=[39], max_latent_steps=2, seed=1,
                                 return_trace=True),
                request_settings(method=LATENT, max_topk=4, think_end_ids=[39], projection="none", seed=2),
                request_settings(method=CONCEPT, max_topk=3, think_end_ids=[39], seed=3)]
    table = latent_table(requests)
    flat = torch.zeros(VOCAB)  # the most uncertain step there is: entropy ln(40) = 3.7 nats
    kinds = []
    for step in range(4):
        hidden = torch.randn(3, HIDDEN)
        # Step 1: row 0 writes a token ending in a newline, then one starting with one (step 2).
        logits = torch.stack([peaked([5, NEWLINE_END, NEWLINE_START, 6][step]), peaked(7 + step), flat + 0.01 * step])
        result, order = one_step(table, requests, logits, hidden, geometry)
        position = {int(r): p for p, r in enumerate(order)}
        kinds.append([bool(result.vector[position[r]]) for r in range(3)])
        p0, p1 = position[0], position[1]
        if step == 0:  # the first step is latent, whatever it writes
            v = hidden[0] @ geometry.realign
            v = v * geometry.target_norm / v.norm()
            assert torch.allclose(table.vectors[0], v, atol=1e-5)
            assert torch.allclose(table.vectors[1], hidden[1])  # projection none: h as it is
            cos = torch.nn.functional.cosine_similarity(v[None], w_in, dim=1).topk(3)
            assert result.ids[p0, :3].tolist() == cos.indices.tolist()
            assert torch.allclose(result.weights[p0, :3], cos.values, atol=1e-5)
            assert result.ids[p0, 3:].eq(0).all() and result.weights[p0, 3:].eq(0).all()  # its own max_topk
        assert result.tokens[p0] == [5, NEWLINE_END, NEWLINE_START, 6][step] or step == 3
    # Row 0: latent at 0 and 1, the newline pair ends the segment at step 2, explicit after.
    assert [k[0] for k in kinds] == [True, True, False, False]
    assert [k[1] for k in kinds] == [True, True, True, True]  # no rule fired (50 vectors allowed)
    assert not any(k[2] for k in kinds)  # a concept row never feeds a vector
    assert table.feeds_vector.tolist() == [0, 1, 0]


def test_without_a_trace_a_vector_step_makes_no_pass_over_the_vocabulary_and_feeds_the_same(monkeypatch):
    """No row returns its trace: the nearest tokens are never computed, each vector step
    records the token it wrote, and every fed vector, token and switch is as with a trace."""
    w_in, w_out = weights(5)
    geometry = geometry_of(w_in, w_out)
    runs = {}
    for traced in (True, False):
        requests = [request_settings(method=LATENT, max_topk=3, think_end_ids=[39], max_latent_steps=2, seed=1,
                                     return_trace=traced),
                    request_settings(method=LATENT, max_topk=4, think_end_ids=[39], projection="none", seed=2,
                                     return_trace=traced)]
        table = latent_table(requests)
        calls = []
        monkeypatch.setattr(type(geometry), "nearest", lambda self, v, count, real=type(geometry).nearest:
                            calls.append(count) or real(self, v, count))
        steps = []
        g = torch.Generator().manual_seed(9)
        for step in range(3):
            hidden, logits = torch.randn(2, HIDDEN, generator=g), torch.randn(2, VOCAB, generator=g)
            result, order = one_step(table, requests, logits, hidden, geometry)
            steps.append((result, table.vectors.clone()))
        monkeypatch.undo()
        runs[traced] = steps, calls
    (with_trace, traced_calls), (without, untraced_calls) = runs[True], runs[False]
    assert traced_calls and not untraced_calls
    for (a, vectors_a), (b, vectors_b) in zip(with_trace, without):
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.vector, b.vector)
        assert torch.equal(vectors_a, vectors_b)
        assert b.ids[:, 0].tolist() == b.tokens.tolist() and b.weights[:, 0].eq(1).all()
        assert b.weights[:, 1:].eq(0).all()
    assert with_trace[0][0].vector.all()  # the first steps were vector steps


def test_the_logits_hook_keeps_hidden_states_only_in_batches_with_a_row_feeding_vectors():
    """An eager batch: its plan names its thinking rows' methods; with no latent row the hook
    copies nothing, with one it keeps the hidden state of that row (and no other's)."""
    from types import SimpleNamespace

    from sglang_soft_thinking import runtime
    from sglang_soft_thinking.hooks.hidden import _after_pruned_states
    from sglang_soft_thinking.plan import BatchPlan
    from sglang_soft_thinking.runtime import PLAN_ATTR

    requests = [request_settings(method=CONCEPT, max_topk=2, think_end_ids=[39], seed=1),
                request_settings(method=LATENT, max_topk=2, think_end_ids=[39], seed=2)]
    table = latent_table(requests)
    copies = []
    store = table.store_hidden
    table.store_hidden = lambda rows, hidden: copies.append(rows.tolist()) or store(rows, hidden)
    rt = runtime.get()
    saved = (rt.table, rt.forward_batch)
    try:
        rt.table = table
        for rows_in_batch, kept in (([0], False), ([0, 1], True)):
            soft = group_soft_rows(rows_in_batch, [requests[r] for r in rows_in_batch], VOCAB)
            soft.index_tensor = torch.tensor(soft.index)
            batch = SimpleNamespace(req_pool_indices=torch.tensor(rows_in_batch))
            setattr(batch, PLAN_ATTR, BatchPlan(soft=soft))
            rt.forward_batch = batch
            hidden = torch.randn(len(rows_in_batch), HIDDEN)
            before = table.hidden.clone()
            with torch.no_grad():
                _after_pruned_states((hidden, None, None, None, None, []), None, hidden)
            assert torch.equal(table.hidden[0], before[0])  # a concept row's is never kept
            assert torch.equal(table.hidden[1], hidden[1] if kept else before[1])
            assert len(copies) == int(kept), copies  # a batch of concept rows makes no copy at all
    finally:
        rt.table, rt.forward_batch = saved


def test_the_entropy_and_the_step_limit_end_the_latent_segment():
    w_in, w_out = weights(3)
    geometry = geometry_of(w_in, w_out)
    requests = [request_settings(method=LATENT, think_end_ids=[39], latent_entropy_threshold=2.0, seed=1),
                request_settings(method=LATENT, think_end_ids=[39], max_latent_steps=3, seed=2),
                request_settings(method=LATENT, think_end_ids=[39], stop_on_delimiter=False, seed=3)]
    table = latent_table(requests)
    vectors = []
    for step in range(5):
        flat_from_1 = torch.zeros(VOCAB) if step >= 1 else peaked(4)  # entropy ln 40 > 2 from step 1
        logits = torch.stack([flat_from_1, peaked(4), peaked(STOP_TOKEN)])
        result, order = one_step(table, requests, logits, torch.randn(3, HIDDEN), geometry)
        vectors.append([bool(result.vector[list(order).index(r)]) for r in range(3)])
    assert [v[0] for v in vectors] == [True, False, False, False, False]
    assert [v[1] for v in vectors] == [True, True, True, False, False]  # three vectors, then explicit
    assert [v[2] for v in vectors] == [True] * 5  # its stop token does not count without stop_on_delimiter


def test_decode_inputs_pick_vector_or_mixture_per_row():
    w_in, w_out = weights(4)
    geometry = geometry_of(w_in, w_out)
    requests = [request_settings(method=LATENT, think_end_ids=[39], seed=1),
                request_settings(method=CONCEPT, max_topk=3, think_end_ids=[39], seed=2)]
    table = latent_table(requests)
    one_step(table, requests, torch.randn(2, VOCAB), torch.randn(2, HIDDEN), geometry)
    rows = torch.arange(2)
    plain = torch.randn(2, HIDDEN)
    got = decode_inputs(ShardMixer(w_in, VocabShard.whole(VOCAB)), plain, table, rows, K_MAX)
    assert torch.equal(got[0], table.vectors[0])
    mixture = table.concept_weights[1] @ w_in[table.concept_ids[1]]
    assert torch.allclose(got[1], mixture, atol=1e-6)
    not_owner = decode_inputs(ShardMixer(w_in, VocabShard.whole(VOCAB)), plain, table, rows, K_MAX,
                              owns_vectors=False)
    assert torch.equal(not_owner[0], torch.zeros(HIDDEN)) and torch.allclose(not_owner[1], mixture, atol=1e-6)


def _rank(rank, init_file, w_in, table_state, results):
    """One tensor-parallel rank: its shard's share of a batch's inputs, then the embedding's
    one all-reduce (the module's own, which the vectors must not add to)."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        half = VOCAB // 2
        shard = VocabShard(rank * half, (rank + 1) * half, half, VOCAB, VOCAB)
        table, ids = table_state
        local, inside = shard.local(ids)
        plain = torch.where(inside.unsqueeze(1), w_in[rank * half:(rank + 1) * half][local], torch.zeros(1))
        share = decode_inputs(ShardMixer(w_in[rank * half:(rank + 1) * half], shard), plain, table,
                              torch.arange(ids.shape[0]), K_MAX, owns_vectors=rank == 0)
        dist.all_reduce(share)
        results[rank] = share
    finally:
        dist.destroy_process_group()


def test_two_tensor_parallel_ranks_count_the_vector_once():
    w_in, w_out = weights(5)
    geometry = geometry_of(w_in, w_out)
    requests = [request_settings(method=LATENT, think_end_ids=[39], seed=1),
                request_settings(method=CONCEPT, max_topk=3, think_end_ids=[39], seed=2), None]
    table = SoftThinkingTable(3, K_MAX, "cpu")
    table.ensure_vectors(HIDDEN)
    table.admit([0, 1, 2], requests)
    one_step(table, requests[:2], torch.randn(2, VOCAB), torch.randn(2, HIDDEN), geometry)
    ids = torch.tensor([3, 25, 33])  # the rows' written tokens, one in each shard and a plain row's
    whole = decode_inputs(ShardMixer(w_in, VocabShard.whole(VOCAB)), w_in[ids], table, torch.arange(3), K_MAX)
    init_file = os.path.join(tempfile.mkdtemp(), "init")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(init_file, w_in, (table, ids), results), nprocs=2, join=True)
        found = dict(results)
    for rank in (0, 1):
        assert torch.allclose(found[rank], whole, atol=1e-6)
    assert torch.equal(whole[0], table.vectors[0]) and torch.equal(whole[2], w_in[33])


def test_a_vector_step_is_recorded_and_traced_as_such_and_never_resumed():
    w_in, w_out = weights(6)
    geometry = geometry_of(w_in, w_out)
    requests = [request_settings(method=LATENT, max_topk=2, think_end_ids=[39], seed=1, return_trace=True),
                request_settings(method=CONCEPT, max_topk=2, think_end_ids=[39], seed=2, return_trace=True)]
    table = latent_table(requests)
    result, order = one_step(table, requests, torch.randn(2, VOCAB), torch.randn(2, HIDDEN), geometry)
    step = StepRecords(result, {int(r): p for p, r in enumerate(order)})
    records = [RequestRecords(traced=True), RequestRecords(traced=True)]
    for row in (0, 1):
        records[row].append(step[row])
    latent_entry, concept_entry = trace_entries(records[0][:]), trace_entries(records[1][:])
    p0 = list(order).index(0)
    assert latent_entry[0]["kind"] == "vector" and latent_entry[0]["ids"] == result.ids[p0, :2].tolist()
    assert "kind" not in concept_entry[0]
    with pytest.raises(RecordsMismatch, match="hidden-state vectors"):
        resume(requests[0], records[0], [int(result.tokens[p0])])
