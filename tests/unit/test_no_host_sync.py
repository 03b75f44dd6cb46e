"""The plugin's device code never makes the host wait for the device (sync_guard.py), and
the host side of planning a batch never reads a device value.

On CUDA a read of a device value (``.item()``, ``bool()``, ``.tolist()``), an op whose
output size depends on values, or a copy from pageable memory waits for the GPU to drain,
cancelling the overlap scheduler's overlap. The guard refuses those ops even on CPU
tensors, so these tests show on this machine what the code would do on a GPU. Planning is
checked with every device tensor on PyTorch's ``meta`` device, which holds no values:
reading one fails.
"""

from types import SimpleNamespace

import pytest
import torch
from request_settings import CONCEPT, MIXTURE_OF_INPUTS, SWITCH, request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.hooks import batch as batch_hook
from sglang_soft_thinking.methods import method_id
from sglang_soft_thinking.mixing import ModuleMixer, ShardMixer, VocabShard, decode_inputs, extend_inputs
from sglang_soft_thinking.phases import PHASE_ANSWER
from sglang_soft_thinking.plan import ExtendInputs, group_soft_rows
from sglang_soft_thinking.output import META_INFO_KEY
from sglang_soft_thinking.records import RequestRecords, StepRecords
from sglang_soft_thinking.runtime import SETTINGS_ATTR
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.sync_guard import HostSyncError, no_host_sync
from sglang_soft_thinking.table import RowState, SoftThinkingTable
from sglang_soft_thinking.transfer import to_device

VOCAB, K_MAX, HIDDEN = 300, 9, 16


def every_kind_of_row():
    """Every method, both kinds of noise (Dirichlet over the whole vocabulary too), top-k,
    top-p and no cut, after-thinking with and without a top-k, a row known to be answering."""
    rows = [dict(method=CONCEPT, max_topk=8, noise_kind=C.NOISE_GUMBEL, noise_param=0.5, after_top_k=20),
            dict(method=CONCEPT, max_topk=4, noise_kind=C.NOISE_DIRICHLET, noise_param=1.0),
            dict(method=MIXTURE_OF_INPUTS, max_topk=5, beta=0.5, top_p=0.9, after_top_k=20),
            dict(method=SWITCH, max_topk=6, window_size=2, max_switch_count=2, after_top_k=30),
            dict(method=method_id("think_router"), tau=0.4, max_topk=5, top_k=40, after_top_k=20),
            dict(method=method_id("multiplex"), width=3, after_top_k=C.TOP_K_ALL),
            dict(method=method_id("discrete"), top_k=12, after_top_k=20),
            dict(method=method_id("selar"), selar_threshold=0.3, top_k=40, after_top_k=20),
            dict(method=method_id("think_router"), tau=0.5, router_statistic=1, router_polarity=1, max_topk=4),
            dict(method=CONCEPT, max_topk=3, after_top_k=10)]  # answering: last
    return [request_settings(seed=7 + i, think_end_ids=[VOCAB - 1], temperature=0.8, **row)
            for i, row in enumerate(rows)]


def test_the_guard_catches_what_waits_for_the_device():
    x = torch.randn(6)
    for syncing in (lambda: x.sum().item(), lambda: bool(x[0] > 0), lambda: x.tolist(), lambda: x[x > 0],
                    lambda: torch.nonzero(x), lambda: int(x.argmax())):
        with pytest.raises(HostSyncError), no_host_sync():
            syncing()
    with no_host_sync():
        torch.where(x > 0, x, torch.zeros_like(x)).topk(2)


def test_the_guard_refuses_copies_from_pageable_host_memory():
    """On CUDA a blocking copy, or one from pageable memory, waits for the stream to drain
    (the sync debug mode raises on the first): with the device tensors on ``meta`` the guard
    refuses both, and the implicit copies of host tensors that meet a device tensor, and
    passes transfer.to_device's pinned, non-blocking path."""
    device = torch.empty(3, device="meta")
    host = torch.arange(3.0)
    for copying in (lambda: host.to("meta"), lambda: host.to("meta", non_blocking=True),
                    lambda: device.copy_(host), lambda: device.copy_(host, non_blocking=True),
                    lambda: torch.tensor([1, 2], device="meta"), lambda: torch.as_tensor([1.0], device="meta"),
                    lambda: device + host, lambda: device[torch.tensor([0, 2])],
                    lambda: device.index_put_((torch.tensor([1]),), torch.ones(1, device="meta"))):
        with pytest.raises(HostSyncError), no_host_sync():
            copying()
    with no_host_sync():
        moved = to_device([[1, 2], [3, 4]], torch.int64, "meta")
        device.copy_(moved[0, :1].float().expand(3))
        device * torch.tensor(2.0)  # a 0-d host tensor is a scalar argument, not a copy
        torch.full((2,), 7, device="meta") + device[:2]
    assert moved.device.type == "meta" and torch.tensor([1]).device.type == "cpu"


def test_a_step_of_every_method_never_waits_for_the_device():
    requests = every_kind_of_row()
    rows = list(range(len(requests)))
    table = SoftThinkingTable(len(rows), K_MAX, "cpu")
    thinking = len(rows) - 1
    table.admit(rows, requests, [None] * thinking + [RowState(phase=PHASE_ANSWER)])
    soft = group_soft_rows(rows, requests, VOCAB, answering=[False] * thinking + [True])
    order = torch.tensor(soft.index)
    with torch.no_grad():
        for step in range(4):
            logits = 3 * torch.randn(len(rows), VOCAB)
            with no_host_sync():
                missed = table.missed_inputs(order)
                result = soft_step(table, order, logits[order], soft, torch.full((len(rows),), 20 + step),
                                   failed=missed)
                StepRecords(result, soft.position_of())  # the copy to the host starts, nothing waits


def test_mixing_never_waits_for_the_device():
    torch.manual_seed(0)
    weight = torch.randn(VOCAB, HIDDEN)
    requests = every_kind_of_row()[:7]
    table = SoftThinkingTable(len(requests), K_MAX, "cpu")
    table.admit(list(range(len(requests))), requests)
    rows = torch.arange(len(requests))
    soft_step(table, rows, torch.randn(len(requests), VOCAB), group_soft_rows(list(range(7)), requests, VOCAB))
    mixers = [ShardMixer(weight, VocabShard.whole(VOCAB)), ModuleMixer(torch.nn.Embedding.from_pretrained(weight))]
    extend = ExtendInputs(positions=torch.tensor([1, 3]), ids=torch.tensor([[4, 5], [6, 7]]),
                          weights=torch.tensor([[0.5, 0.5], [1.0, 0.0]]), use=torch.tensor([True, False]))
    with torch.no_grad(), no_host_sync():
        for mix in mixers:
            decode_inputs(mix, torch.randn(len(requests), HIDDEN), table, rows, K_MAX)
            extend_inputs(mix, torch.randn(5, HIDDEN), extend)


def test_the_vector_input_kind_never_waits_for_the_device():
    """The latent method's rows beside a concept row: the logits hook keeping the hidden
    states (hooks/hidden.py, as in a decode batch), the step, its records, the next inputs."""
    from sglang_soft_thinking import runtime
    from sglang_soft_thinking.geometry import build_geometry
    from sglang_soft_thinking.hooks.hidden import _after_pruned_states
    from sglang_soft_thinking.methods.base import Vocabulary

    torch.manual_seed(0)
    weight = torch.randn(VOCAB, HIDDEN)
    geometry = build_geometry(lambda ids: weight[ids], torch.randn(VOCAB, HIDDEN), weight, VOCAB)
    vocabulary = Vocabulary(masks={name: torch.rand(VOCAB) < 0.1
                                   for name in ("latent_stop", "newline_start", "newline_end")})
    latent = method_id("latent")
    requests = [request_settings(method=latent, max_topk=3, seed=1, think_end_ids=[VOCAB - 1], max_latent_steps=2),
                request_settings(method=latent, max_topk=4, seed=2, think_end_ids=[VOCAB - 1], projection="none"),
                request_settings(method=CONCEPT, max_topk=3, seed=3, think_end_ids=[VOCAB - 1])]
    table = SoftThinkingTable(len(requests), K_MAX, "cpu")
    table.ensure_vectors(HIDDEN)
    table.admit([0, 1, 2], requests)
    soft = group_soft_rows([0, 1, 2], requests, VOCAB)
    order, rows = torch.tensor(soft.index), torch.arange(3)
    mixer = ShardMixer(weight, VocabShard.whole(VOCAB))
    rt = runtime.get()
    saved = (rt.table, rt.forward_batch)
    rt.table = table
    rt.forward_batch = SimpleNamespace(req_pool_indices=rows)  # a batch SGLang built itself: no plan
    try:
        with torch.no_grad():
            for step in range(4):
                hidden, plain = torch.randn(3, HIDDEN), torch.randn(3, HIDDEN)
                with no_host_sync():
                    _after_pruned_states((hidden, None, None, torch.tensor([0, 1, 2]), None, []), None, hidden)
                    result = soft_step(table, order, torch.randn(3, VOCAB)[order], soft,
                                       torch.full((3,), 20 + step), vocabulary=vocabulary, geometry=geometry)
                    StepRecords(result, soft.position_of())
                    decode_inputs(mixer, plain, table, rows, K_MAX)
    finally:
        rt.table, rt.forward_batch = saved


def fake_request(i: int, settings, output_ids=(), seed=None):
    sampling = SimpleNamespace(sampling_seed=seed, top_k=C.TOP_K_ALL, top_p=1.0, min_p=0.0, custom_params=None)
    req = SimpleNamespace(rid=f"r{i}", output_ids=list(output_ids), origin_input_ids=[1, 2, 3, 4],
                          sampling_params=sampling, return_logprob=False, customized_info=None,
                          retraction_count=0, kv=SimpleNamespace(req_pool_idx=i))
    setattr(req, SETTINGS_ATTR, settings)
    return req


def meta_batches(n: int):
    reqs = [fake_request(i, s if i % 3 else None, seed=11 if i == 3 else None)
            for i, s in enumerate(every_kind_of_row()[:n])]
    batch = SimpleNamespace(reqs=reqs, req_pool_indices_cpu=torch.arange(n), decoding_reqs=None)
    decode = SimpleNamespace(req_pool_indices=torch.empty(n, dtype=torch.int64, device="meta"),
                             seq_lens=torch.empty(n, dtype=torch.int64, device="meta"),
                             forward_mode=SimpleNamespace(is_decode=lambda: True))
    mixed = SimpleNamespace(**{**vars(decode), "forward_mode": SimpleNamespace(is_decode=lambda: False),
                               "extend_prefix_lens_cpu": [4] * n, "extend_seq_lens_cpu": [1] * n})
    return batch, decode, mixed


def give_thought(req, steps: int = 3) -> None:
    """Make ``req`` a soft request retracted after ``steps`` thinking steps (computed on the
    CPU), with its records as the rank that sends outputs keeps them."""
    settings = getattr(req, SETTINGS_ATTR)
    table = SoftThinkingTable(1, K_MAX, "cpu")
    table.admit([0], [settings])
    soft = group_soft_rows([0], [settings], VOCAB)
    records = RequestRecords()
    for step in range(steps):
        result = soft_step(table, torch.tensor([0]), 3 * torch.randn(1, VOCAB), soft, torch.tensor([4 + step]))
        records.append(StepRecords(result, {0: 0})[0])
        req.output_ids.append(int(result.tokens[0]))
    req.customized_info = {META_INFO_KEY: records}
    req.retraction_count = 1


@pytest.mark.parametrize("mode", ["decode", "mixed", "reprefill"])
def test_admitting_and_planning_a_batch_read_nothing_from_the_device(mode):
    n = 6
    table = SoftThinkingTable(n, K_MAX, "meta")
    batch, decode, mixed = meta_batches(n)
    if mode == "mixed":  # the batch's requests are decode rows of a mixed prefill+decode batch
        batch.decoding_reqs = list(batch.reqs)
    if mode == "reprefill":  # retracted soft requests re-prefilled from their records
        for req in batch.reqs:
            if getattr(req, SETTINGS_ATTR) is not None:
                give_thought(req)
        mixed.extend_prefix_lens_cpu = [0] * n
        mixed.extend_seq_lens_cpu = [len(req.origin_input_ids) + len(req.output_ids) for req in batch.reqs]
    forward_batch = decode if mode == "decode" else mixed
    rows = batch_hook._rows_of(batch)
    shared = batch_hook.share_reprefills(batch, forward_batch, rows)
    assert bool(shared) == (mode == "reprefill") and all(s.error is None for s in shared.values())
    batch_hook.admit(table, batch.reqs, rows, shared)
    plan = batch_hook.plan(table, batch, forward_batch, VOCAB, shared)
    assert plan.soft is not None and plan.soft.index_tensor.device.type == "meta"
    assert plan.seeded_plain is not None and plan.sglang is not None
    if mode != "decode":
        assert plan.extend_inputs is not None and plan.extend_inputs.positions.device.type == "meta"
