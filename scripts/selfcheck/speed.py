"""Timings: the plugin's soft step against plain sampling with the same cuts, in torch.

The baseline is what a sampler does without soft thinking: ``softmax(z / T)``, its top-k
(sorted), top-p, min-p and a draw. The soft step does that work once for the
after-thinking sample and once more for the concept token, so on a GPU it passes when it
takes at most :data:`MAX_SOFT_OVER_PLAIN` times the baseline at batch 64 and 256 (batch 1
is launch-bound and reported only). On a CPU the figures are reported, never judged."""

from __future__ import annotations

import time

import torch

from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.transfer import to_device

from .bench import request

MAX_SOFT_OVER_PLAIN = 3.0
JUDGED_BATCHES = (64, 256)
CUTS = dict(temperature=0.7, top_k=40, top_p=0.95, min_p=0.001)  # the timed requests' and the baseline's


def plain_sample(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, min_p: float) -> torch.Tensor:
    """The sample of a plain request in plain torch: the top-k of ``softmax(z / T)`` (sorted),
    top-p on their renormalised mass, min-p, a draw."""
    probs = torch.softmax(logits / temperature, dim=-1)
    top, order = probs.topk(min(top_k, probs.shape[1]), dim=-1)
    keep = (top.cumsum(dim=-1) - top) <= top_p * top.sum(dim=-1, keepdim=True)
    keep &= top >= min_p * top[:, :1]
    choice = torch.multinomial(top * keep, 1)
    return order.gather(1, choice).squeeze(1)


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` runs, after warm-up."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            began = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - began))
    return sorted(times)[len(times) // 2]


def speed(bench, batches: list[int], repeats: int) -> dict:
    judged = bench.device.type == "cuda"
    rows_out = []
    for batch in batches:
        requests = [request(i, **CUTS, max_topk=10, after_top_k=40) for i in range(batch)]
        soft = group_soft_rows(list(range(batch)), requests, bench.vocab)
        table = bench.table(batch)
        table.admit(list(range(batch)), requests)
        order = to_device(soft.index, torch.int64, bench.device)
        logits = bench.logits(batch, 0)
        positions = torch.full((batch,), 8, device=bench.device)
        tokens = torch.zeros(batch, dtype=torch.int64, device=bench.device)
        with torch.no_grad():
            soft_ms = timed(lambda: soft_step(table, order, logits, soft, positions), repeats, bench.device)
            plain_ms = timed(lambda: plain_sample(logits, **CUTS), repeats, bench.device)
            mix_ms = timed(lambda: bench.decode(table, order, tokens), repeats, bench.device)
            lookup_ms = timed(lambda: bench.embedding(tokens), repeats, bench.device)
        ratio = soft_ms / plain_ms
        row = {"batch": batch, "soft_step_ms": soft_ms, "plain_sample_ms": plain_ms, "soft_over_plain": ratio,
               "decode_mix_ms": mix_ms, "plain_lookup_ms": lookup_ms}
        if judged and batch in JUDGED_BATCHES:
            row["pass"] = ratio <= MAX_SOFT_OVER_PLAIN
        rows_out.append(row)
    return {"threshold": f"soft step <= {MAX_SOFT_OVER_PLAIN} x plain sampling at batch "
                         f"{', '.join(map(str, JUDGED_BATCHES))} on a GPU", "judged": judged,
            "batches": rows_out, "pass": all(r.get("pass", True) for r in rows_out)}
