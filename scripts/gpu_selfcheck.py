"""The plugin's device code on a GPU, without SGLang: capture, no waits, batch invariance, speed.

    python scripts/gpu_selfcheck.py [--device cuda|cpu] [--quick] [--out FILE.json]

Needs PyTorch and pydantic (the plugin's parameter models) but not SGLang; run it from the
repository root (it puts ``sglang_soft_thinking_pkg`` on the path). Where pydantic is
missing, bring its wheels (``pip download --no-deps pydantic pydantic-core annotated-types
typing-inspection``) and install them first. Checks, each PASS or FAIL:

* capture: a decode step's inputs (the table, :func:`mixing.decode_inputs`, the mixing over an
  ``nn.Embedding`` of a real model's size) and the soft rows' sampling step (every method's
  rows) are captured in a ``torch.cuda.CUDAGraph`` while no row thinks; then rows start and
  stop thinking and change width, and each replay must equal the same step run eagerly on a
  twin table, token for token and weight for weight. On a CPU the decode inputs are traced
  with ``torch.jit.trace`` instead (no CUDA graphs there);
* no waits: the eager steps, admission and the records' copy run under
  :func:`sync_guard.no_host_sync` (on CUDA, PyTorch's sync debug mode set to error);
* batch invariance: a row's step and its mixed input are bitwise the same alone and in a
  batch of other rows (so SGLang's deterministic mode can make a seeded request repeat);
* speed: the soft step at batch 1, 64 and 256 over a 152k vocabulary against a plain
  softmax + top-p sample of the same batch, and the decode mixing against a plain lookup.

Exits 0 when every check passes; ``--out`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sglang_soft_thinking_pkg"))

import torch  # noqa: E402

from sglang_soft_thinking import concept as C  # noqa: E402
from sglang_soft_thinking.methods import REGISTRY  # noqa: E402
from sglang_soft_thinking.mixing import ShardMixer, VocabShard, decode_inputs  # noqa: E402
from sglang_soft_thinking.plan import group_soft_rows  # noqa: E402
from sglang_soft_thinking.records import StepRecords  # noqa: E402
from sglang_soft_thinking.settings import RequestSettings  # noqa: E402
from sglang_soft_thinking.step import soft_step  # noqa: E402
from sglang_soft_thinking.sync_guard import no_host_sync  # noqa: E402
from sglang_soft_thinking.table import SoftThinkingTable  # noqa: E402

K_MAX = 33  # the default --max-topk-limit (32) and a mixture-of-inputs row's extra column


def request(seed: int, method: int, **overrides) -> RequestSettings:
    values = dict(prompt_len=16, temperature=0.7, top_k=C.TOP_K_ALL, top_p=0.95, min_p=0.001, max_topk=10,
                  entropy_threshold=0.01, length_threshold=256, after_temperature=0.6, after_top_k=30,
                  after_top_p=0.95, seed=seed, method=method, think_end_ids=(5, 6, 7))
    return RequestSettings.build(**{**values, **overrides})


def mixed_requests(batch: int, widths=(10, 4, 16)) -> list[RequestSettings]:
    """Every method in turn, widths varying; some rows with a top-k, some with noise."""
    out = []
    for i in range(batch):
        method = i % len(REGISTRY)
        extra = {"max_topk": widths[i % len(widths)]}
        if REGISTRY[method].accepts_noise and i % 4 == 0:
            extra.update(noise_kind=C.NOISE_GUMBEL, noise_param=0.5)
        if i % 3 == 0:
            extra["top_k"] = 40
        out.append(request(100 + i, method, **extra))
    return out


class Bench:
    def __init__(self, device: torch.device, vocab: int, hidden: int, dtype: torch.dtype):
        self.device, self.vocab = device, vocab
        torch.manual_seed(0)
        weight = (torch.randn(vocab, hidden) * 0.02).to(device=device, dtype=dtype)
        self.embedding = torch.nn.Embedding.from_pretrained(weight)
        self.mixer = ShardMixer(weight, VocabShard.whole(vocab))

    def table(self, rows: int) -> SoftThinkingTable:
        return SoftThinkingTable(rows, K_MAX, self.device)

    def logits(self, batch: int, step: int) -> torch.Tensor:
        generator = torch.Generator(device="cpu").manual_seed(1000 + step)
        return (3 * torch.randn(batch, self.vocab, generator=generator)).to(self.device)


def decode_step(bench: Bench, table, rows, token_ids):
    return decode_inputs(bench.mixer, bench.embedding(token_ids), table, rows, table.k_max)


def check_capture(bench: Bench, batch: int, steps: int) -> dict:
    """Captured with no thinking row, replayed while rows think: equal to eager."""
    requests = mixed_requests(batch)
    soft = group_soft_rows(list(range(batch)), requests, bench.vocab)
    order = torch.tensor(soft.index, device=bench.device)
    captured, eager = bench.table(batch), bench.table(batch)
    for table in (captured, eager):
        table.admit(list(range(batch)), [None] * batch)  # no soft row at capture
    tokens = torch.zeros(batch, dtype=torch.int64, device=bench.device)
    positions = torch.full((batch,), 40, dtype=torch.int64, device=bench.device)
    logits = bench.logits(batch, 0)
    cuda = bench.device.type == "cuda"
    with torch.no_grad():
        def step(table):
            inputs = decode_step(bench, table, order, tokens)
            # The check that every concept token was mixed reads the marks the captured
            # mixing writes (a traced function on a CPU does not write into the table).
            failed = table.missed_inputs(order) if cuda else None
            return inputs, soft_step(table, order, logits[order], soft, positions, failed=failed)

        if cuda:
            replay, mode = _cuda_graph(lambda: step(captured)), "CUDA graph"
        else:
            replay, mode = _traced(bench, captured, order, tokens, soft, logits, positions), "torch.jit.trace"
        problems = []
        for table in (captured, eager):  # rows start thinking, widths change
            table.admit(list(range(batch)), requests)
        for i in range(steps):
            if i == steps // 2:  # some rows stop, some get new widths
                changed = [r if k % 2 else request(7 + k, 0, max_topk=2 + k % 5)
                           for k, r in enumerate(requests)]
                for table in (captured, eager):
                    table.admit(list(range(0, batch, 2)), changed[0::2])
            logits.copy_(bench.logits(batch, i + 1))
            positions.add_(1)
            got_inputs, got = replay()
            want_inputs, want = step(eager)
            tokens.copy_(want.tokens[torch.argsort(order)])
            differing = [name for name, a, b in (("inputs", got_inputs, want_inputs), ("tokens", got.tokens, want.tokens),
                                                 ("kinds", got.kinds, want.kinds), ("weights", got.weights, want.weights))
                         if not torch.equal(a, b)]
            if differing:
                problems.append(f"step {i}: the replay's {', '.join(differing)} differ from eager")
    return {"mode": mode, "batch": batch, "steps": steps, "problems": problems, "pass": not problems}


def _traced(bench: Bench, table, order, tokens, soft, logits, positions):
    """On a CPU: the decode inputs recorded by ``torch.jit.trace`` (ops on tensors, Python
    frozen, as in a capture) while no row thinks; the sampling step runs eagerly. The
    recording runs without TorchScript's optimisations, which would fold the table's
    current values into constants (a CUDA graph reads its buffers at every replay)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = torch.jit.trace(lambda ids: decode_step(bench, table, order, ids), (tokens,), check_trace=False)

    def replay():
        with torch.jit.optimized_execution(False):
            mixed = inputs(tokens)
        return mixed, soft_step(table, order, logits[order], soft, positions)
    return replay


def _cuda_graph(fn):
    """Capture ``fn`` (after warm-up on a side stream); returns a replay returning its outputs."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = fn()

    def replay():
        graph.replay()
        return outputs
    return replay


def check_no_waits(bench: Bench, batch: int) -> dict:
    requests = mixed_requests(batch)
    soft = group_soft_rows(list(range(batch)), requests, bench.vocab)
    order = torch.tensor(soft.index, device=bench.device)
    table = bench.table(batch)
    tokens = torch.zeros(batch, dtype=torch.int64, device=bench.device)
    try:
        with torch.no_grad(), no_host_sync():
            table.admit(list(range(batch)), requests)
            for i in range(3):
                decode_step(bench, table, order, tokens)
                result = soft_step(table, order, bench.logits(batch, i)[order], soft,
                                   torch.full((batch,), 9 + i, device=bench.device))
                StepRecords(result, soft.position_of())
    except AssertionError as error:
        return {"pass": False, "problem": str(error)}
    return {"pass": True}


def check_batch_invariance(bench: Bench, batch: int) -> dict:
    """Each row's step and mixed input alone equal its step and input in the batch, bitwise,
    with the plan of SGLang's deterministic mode (every size a row's own, plan.py)."""
    requests = mixed_requests(batch)
    logits = bench.logits(batch, 3)
    tokens = torch.arange(batch, device=bench.device)

    def run(rows: list[int]):
        table = bench.table(batch)
        table.admit(rows, [requests[r] for r in rows])
        soft = group_soft_rows(rows, [requests[r] for r in rows], bench.vocab, invariant_width=K_MAX)
        order = torch.tensor(soft.index, device=bench.device)
        with torch.no_grad():
            first = soft_step(table, order, logits[order], soft, torch.full((len(rows),), 5, device=bench.device))
            inputs = decode_step(bench, table, order, tokens[order])
            second = soft_step(table, order, logits[order], soft, torch.full((len(rows),), 6, device=bench.device))
        return {row: (first.weights[i], inputs[i], second.weights[i]) for i, row in enumerate(soft.index)}

    together = run(list(range(batch)))
    differing = [row for row in range(batch)
                 if not all(torch.equal(a, b) for a, b in zip(run([row])[row], together[row]))]
    return {"batch": batch, "differing_rows": differing, "pass": not differing}


def plain_top_p(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The plain sampler to compare with: softmax, top-p over the sorted vocabulary, a draw."""
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    keep = (sorted_probs.cumsum(dim=-1) - sorted_probs) <= top_p
    weights = sorted_probs * keep
    gumbel = -torch.log(-torch.log(torch.rand_like(weights).clamp_min(1e-20)))
    return order.gather(1, (torch.log(weights) + gumbel).argmax(dim=-1, keepdim=True)).squeeze(1)


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


def speed(bench: Bench, batches: list[int], repeats: int) -> list[dict]:
    rows_out = []
    for batch in batches:
        requests = [request(i, 0) for i in range(batch)]  # the default concept request
        soft = group_soft_rows(list(range(batch)), requests, bench.vocab)
        table = bench.table(batch)
        table.admit(list(range(batch)), requests)
        order = torch.tensor(soft.index, device=bench.device)
        logits = bench.logits(batch, 0)
        positions = torch.full((batch,), 8, device=bench.device)
        tokens = torch.zeros(batch, dtype=torch.int64, device=bench.device)
        with torch.no_grad():
            soft_ms = timed(lambda: soft_step(table, order, logits, soft, positions), repeats, bench.device)
            plain_ms = timed(lambda: plain_top_p(logits, 0.7, 0.95), repeats, bench.device)
            mix_ms = timed(lambda: decode_step(bench, table, order, tokens), repeats, bench.device)
            lookup_ms = timed(lambda: bench.embedding(tokens), repeats, bench.device)
        rows_out.append({"batch": batch, "soft_step_ms": soft_ms, "plain_top_p_ms": plain_ms,
                         "soft_over_plain": soft_ms / plain_ms, "decode_mix_ms": mix_ms,
                         "plain_lookup_ms": lookup_ms})
    return rows_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes (the CPU form the test suite runs)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.quick:
        bench, batches, capture_batch, repeats = Bench(device, 2048, 64, torch.float32), [1, 8], 12, 3
    else:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        bench, batches, capture_batch, repeats = Bench(device, 152064, 4096, dtype), [1, 64, 256], 48, 20
    report = {"device": str(device), "torch": torch.__version__, "vocab": bench.vocab,
              "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None}
    report["capture"] = check_capture(bench, capture_batch, steps=8)
    report["no_waits"] = check_no_waits(bench, capture_batch)
    report["batch_invariance"] = check_batch_invariance(bench, min(capture_batch, 12))
    report["speed"] = speed(bench, batches, repeats)
    checks = ("capture", "no_waits", "batch_invariance")
    for name in checks:
        print(f"{'PASS' if report[name]['pass'] else 'FAIL'}  {name}: {json.dumps(report[name])}")
    for row in report["speed"]:
        print(f"speed  batch {row['batch']}: soft step {row['soft_step_ms']:.3f} ms, plain top-p "
              f"{row['plain_top_p_ms']:.3f} ms (x{row['soft_over_plain']:.2f}); decode mixing "
              f"{row['decode_mix_ms']:.3f} ms, plain lookup {row['plain_lookup_ms']:.3f} ms")
    ok = all(report[name]["pass"] for name in checks)
    report["verdict"] = "pass" if ok else "fail"
    print("verdict:", report["verdict"])
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
