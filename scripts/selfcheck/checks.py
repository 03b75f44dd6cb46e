"""The other device checks: no waits, batch invariance, a vocabulary split across simulated
ranks, and SGLang's padded decode rows."""

from __future__ import annotations

import contextlib
import traceback
from types import SimpleNamespace

import torch

from sglang_soft_thinking.mixing import ShardMixer, VocabShard
from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.records import StepRecords
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.sync_guard import HostSyncError, no_host_sync
from sglang_soft_thinking.transfer import to_device

from . import reference as R
from .bench import K_MAX, batch_kinds, requests_of


def check_no_waits(bench, batch: int, steps: int = 3) -> dict:
    """Admission, the decode mixing, the logits hook's keeping of the hidden states, every
    method's step (latent's vectors and their trace included) and the records' copy under
    :func:`sync_guard.no_host_sync`. Every input is made before the guarded block (on the
    device, or copied there from pinned memory); a wait found is a failed check."""
    requests = requests_of(batch_kinds(batch))
    soft_rows = [r for r, s in enumerate(requests) if s is not None]
    soft = group_soft_rows(soft_rows, [requests[r] for r in soft_rows], bench.vocab)
    order = to_device(soft.index, torch.int64, bench.device)
    rows = torch.arange(batch, device=bench.device)
    tokens = torch.zeros(batch, dtype=torch.int64, device=bench.device)
    logits = [bench.logits(batch, i)[order] for i in range(steps)]
    hidden = [bench.hidden(batch, i) for i in range(steps)]
    positions = [torch.full((len(soft_rows),), 9 + i, dtype=torch.int64, device=bench.device) for i in range(steps)]
    table = bench.table(batch)
    try:
        with torch.no_grad(), no_host_sync():
            table.admit(list(range(batch)), requests)
            for i in range(steps):
                bench.decode(table, rows, tokens)
                table.store_hidden(rows, hidden[i])
                result = soft_step(table, order, logits[i], soft, positions[i], failed=table.missed_inputs(order),
                                   vocabulary=bench.vocabulary, geometry=bench.geometry)
                StepRecords(result, soft.position_of())
    except (HostSyncError, RuntimeError) as error:  # CUDA's sync debug mode raises RuntimeError
        return {"pass": False, "problem": f"{type(error).__name__}: {error}", "stack": traceback.format_exc()}
    vector_rows = sum(1 for s in requests if s is not None and s.method_object.input_kind == "vector")
    if not vector_rows:
        return {"pass": False, "problem": f"no row of the vector input kind among {batch}", "vector_rows": 0}
    return {"pass": True, "device": str(bench.device), "vector_rows": vector_rows}


def check_batch_invariance(bench, batch: int) -> dict:
    """Each row's step and mixed input alone equal its step and input in the batch, bitwise,
    with the plan of SGLang's deterministic mode (every size a row's own, plan.py)."""
    requests = [s for s in requests_of(batch_kinds(batch)) if s is not None]
    logits = bench.logits(len(requests), 3)
    tokens = torch.arange(len(requests), device=bench.device)

    def run(rows: list[int]):
        table = bench.table(len(requests))
        table.admit(rows, [requests[r] for r in rows])
        soft = group_soft_rows(rows, [requests[r] for r in rows], bench.vocab, invariant_width=K_MAX)
        order = to_device(soft.index, torch.int64, bench.device)
        n = len(rows)
        with torch.no_grad():
            first = soft_step(table, order, logits[order], soft, torch.full((n,), 5, device=bench.device),
                              vocabulary=bench.vocabulary)
            inputs = bench.decode(table, order, tokens[order])
            second = soft_step(table, order, logits[order], soft, torch.full((n,), 6, device=bench.device),
                               vocabulary=bench.vocabulary)
        return {row: (first.weights[i], inputs[i], second.weights[i]) for i, row in enumerate(soft.index)}

    together = run(list(range(len(requests))))
    differing = [row for row in range(len(requests))
                 if not all(torch.equal(a, b) for a, b in zip(run([row])[row], together[row]))]
    return {"rows": len(requests), "differing_rows": differing, "pass": not differing}


def shards(vocab: int, ranks: int) -> list[VocabShard]:
    """SGLang's layout of a vocabulary split ``ranks`` ways: equal padded shards of the
    original ids, no added ids."""
    per = -(-vocab // ranks)
    return [VocabShard(r * per, min(vocab, (r + 1) * per), per, vocab, vocab) for r in range(ranks)]


def check_vocab_split(bench, rows: int = 16, ranks=(2, 4)) -> dict:
    """The mixture over a vocabulary split 2 and 4 ways (one shard per simulated rank, their
    partial sums added as the all-reduce would) equals float64 ``sum_i w_i E[ids_i]``."""
    generator = torch.Generator(device=bench.device).manual_seed(7)
    ids = torch.randint(0, bench.vocab, (rows, K_MAX), generator=generator, device=bench.device)
    weights = torch.softmax(torch.randn(rows, K_MAX, generator=generator, device=bench.device), dim=1)
    ids[:, 0] = bench.vocab - 1  # the last id, in the last shard past its padding
    want = R.mixture(bench.weight, ids, weights)
    tolerance = 2.0 ** -7 if bench.dtype == torch.bfloat16 else 1e-5  # the embedding dtype's rounding
    bound = tolerance * R.mixture(bench.weight.abs(), ids, weights) + 1e-7
    out = {}
    for n in ranks:
        partials = []
        for shard in shards(bench.vocab, n):
            local = bench.weight[shard.org_start:shard.org_end]
            padded = torch.nn.functional.pad(local, (0, 0, 0, shard.org_padded - local.shape[0]))
            partials.append(ShardMixer(padded, shard).partial(ids, weights).float())
        error = (sum(partials).double() - want).abs()
        out[f"{n}_way_max_error"] = float(error.max())
        out[f"{n}_way_pass"] = bool((error <= bound).all())
    out["pass"] = all(out[f"{n}_way_pass"] for n in ranks)
    return out


def check_padded_rows(bench, batch: int = 6, padding: int = 4) -> dict:
    """SGLang pads a captured decode batch to a captured size with rows pointing at request
    row 0 (its static buffers). Through the plugin's own embedding hook (hooks/embedding.py,
    the capture path: a forward batch without a plan, published as SGLang's forward context
    does) the real rows' inputs and marks are those of the unpadded batch, and no real row
    is reported unmixed."""
    from sglang_soft_thinking import runtime
    from sglang_soft_thinking.hooks import embedding as hook

    requests = requests_of(batch_kinds(batch))
    tables = [bench.table(batch), bench.table(batch)]
    soft_rows = [r for r, s in enumerate(requests) if s is not None]
    soft = group_soft_rows(soft_rows, [requests[r] for r in soft_rows], bench.vocab)
    order = to_device(soft.index, torch.int64, bench.device)
    logits = bench.logits(batch, 1)[order]
    rows = torch.arange(batch, device=bench.device)
    padded_rows = torch.cat([rows, torch.zeros(padding, dtype=torch.int64, device=bench.device)])
    tokens = torch.arange(batch + padding, device=bench.device) % bench.vocab
    rt = runtime.get()
    saved = (rt.table, rt.mixer, rt.forward_batch)
    with torch.no_grad():
        for table in tables:
            table.admit(list(range(batch)), requests)
            soft_step(table, order, logits, soft, torch.full((len(soft_rows),), 3, device=bench.device),
                      vocabulary=bench.vocabulary)
        plain = bench.decode(tables[0], rows, tokens[:batch])
        forward_batch = SimpleNamespace(forward_mode=SimpleNamespace(is_decode=lambda: True),
                                        req_pool_indices=padded_rows)
        handle = bench.embedding.register_forward_hook(hook._after_embedding)
        try:
            rt.table, rt.mixer = tables[1], bench.mixer
            with hook._publishing(contextlib.nullcontext(), forward_batch):
                padded = bench.embedding(tokens)
        finally:
            handle.remove()
            rt.table, rt.mixer, rt.forward_batch = saved
        mixed_rows = int(tables[0].input_mixed.sum())
        same_inputs = torch.equal(plain, padded[:batch])
        same_marks = torch.equal(tables[0].input_mixed, tables[1].input_mixed)
        missed = bool(tables[1].missed_inputs(order).any())
    return {"mixed_rows": mixed_rows, "same_inputs": same_inputs, "same_marks": same_marks, "missed": missed,
            "pass": same_inputs and same_marks and not missed and mixed_rows > 0}
