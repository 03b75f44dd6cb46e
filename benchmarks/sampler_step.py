"""Per-step cost of the soft-thinking sampler's maths against SGLang's own sampler.

    .venv/bin/python -m benchmarks.sampler_step --out runs/sampler_step.json

On random logits over the default model's vocabulary (49152 tokens), at each batch size,
the median time of one sampling step:

* ``sglang_plain``: SGLang's sampler maths for plain rows (temperature, softmax, and
  its pytorch-backend sampling: direct when no row filters, else sort and cut);
* ``sglang_filtered``: the same with every row asking for top-p 0.95 and top-k 30;
* ``soft``: :func:`step.soft_step` on as many thinking rows with the default
  soft-thinking settings (max_topk 10, min_p 0.001, after-thinking top-k 30);
* ``soft_mixed``: the same, but one row has no after-thinking top-k limit and one draws
  Dirichlet noise (both need the whole sorted vocabulary, for themselves only).

Reports each time and soft/sglang_filtered. The soft step does more than sampling (entropy,
the concept token, the state machine), so the figures say what soft thinking adds per
step on this machine. Not run in CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from benchmarks.cli_types import output_file, positive_int
from benchmarks.server_overhead import write_results
from sglang_soft_thinking import concept as C
from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB = 49152  # SmolLM2's vocabulary
K_MAX = 64


def soft_request(seed: int, **overrides) -> RequestSettings:
    values = dict(prompt_len=16, temperature=0.6, top_k=C.TOP_K_ALL, top_p=0.95, min_p=0.001,
                  max_topk=10, entropy_threshold=0.01, length_threshold=256, max_thinking_tokens=-1,
                  noise_kind=C.NOISE_NONE, noise_param=1.0, after_temperature=0.6, after_top_k=30,
                  after_top_p=0.95, after_min_p=0.0, think_end_ids=[49151], seed=seed)
    return RequestSettings(**{**values, **overrides})


def time_it(step, repeats: int) -> float:
    """Median seconds of ``step()`` over ``repeats`` calls, after two warm-up calls."""
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sglang_step(batch: int, filtered: bool):
    from sglang.srt.layers.sampler import (
        sampling_from_probs_torch,
        top_k_top_p_min_p_sampling_from_probs_torch,
    )

    logits = torch.randn(batch, VOCAB)
    temperatures = torch.full((batch, 1), 0.6)
    top_ks = torch.full((batch,), 30 if filtered else C.TOP_K_ALL, dtype=torch.int32)
    top_ps = torch.full((batch,), 0.95 if filtered else 1.0)
    min_ps = torch.zeros(batch)
    positions = torch.zeros(batch, dtype=torch.int64)

    def step():
        probs = torch.softmax(logits / temperatures, dim=-1)
        if not filtered:
            return sampling_from_probs_torch(probs)
        return top_k_top_p_min_p_sampling_from_probs_torch(
            probs, top_ks, top_ps, min_ps, False, None, positions, max_top_k=30)
    return step


def soft_step(batch: int, mixed: bool):
    requests = [soft_request(i) for i in range(batch)]
    if mixed and batch >= 2:
        requests[0] = soft_request(0, after_top_k=C.TOP_K_ALL)
        requests[1] = soft_request(1, noise_kind=C.NOISE_DIRICHLET, noise_param=1.0)
    rows = list(range(batch))
    table = SoftThinkingTable(batch, K_MAX, "cpu")
    soft = group_soft_rows(rows, requests, VOCAB)
    order = torch.tensor(soft.index)
    logits = torch.randn(batch, VOCAB)
    positions = torch.arange(batch)
    table.admit(rows, requests)  # no budget, Cold Stop after 256 steps: every row keeps thinking

    def step():
        return soft_step(table, order, logits, soft, positions)
    return step


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'batch':>5} {'sglang plain ms':>16} {'sglang filtered ms':>19} {'soft ms':>8} "
          f"{'soft mixed ms':>14} {'soft/filtered':>14}")
    for batch in args.batch_sizes:
        figures = {
            "sglang_plain": time_it(sglang_step(batch, filtered=False), args.repeats),
            "sglang_filtered": time_it(sglang_step(batch, filtered=True), args.repeats),
            "soft": time_it(soft_step(batch, mixed=False), args.repeats),
            "soft_mixed": time_it(soft_step(batch, mixed=True), args.repeats),
        }
        ms = {name: 1000 * seconds for name, seconds in figures.items()}
        ratio = ms["soft"] / ms["sglang_filtered"]
        print(f"{batch:>5} {ms['sglang_plain']:>16.2f} {ms['sglang_filtered']:>19.2f} "
              f"{ms['soft']:>8.2f} {ms['soft_mixed']:>14.2f} {ratio:>14.2f}")
        rows.append({"batch": batch, **{f"{name}_ms": value for name, value in ms.items()},
                     "soft_over_sglang_filtered": ratio})
    return {"config": {"vocab": VOCAB, "threads": args.threads, "repeats": args.repeats,
                       "device": "cpu"}, "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeats", type=positive_int, default=20)
    parser.add_argument("--threads", type=positive_int, default=torch.get_num_threads())
    parser.add_argument("--out", type=output_file, help="write the results as JSON here")
    args = parser.parse_args(argv)
    write_results(run(args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
