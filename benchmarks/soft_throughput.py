"""Output tokens/s with soft thinking on versus off, and what the plugin costs plain requests.

    .venv/bin/python -m benchmarks.soft_throughput --out runs/soft_throughput.json

Starts our server twice, with the plugin (as served) and without it
(``SOFTTHINK_DISABLE=1``, stock SGLang decoding), both up for the whole run. At each
concurrency it sends the same prompts with the same output length (``ignore_eos``):
plain to the server without the plugin, plain to the server with it, and with soft
thinking for the whole generation (Cold Stop off, no budget, so every step is a
concept-token step). At the ``--mixed-concurrency`` levels it also sends a mixed load:
half the requests plain, half soft, one soft request with no after-thinking top-k limit
and one with Dirichlet noise over an unbounded support (both need the whole sorted
vocabulary each step), so one request's settings show in the others' throughput.

Reports per concurrency plain-with/plain-without (the plugin's cost on plain batches),
soft/plain (target: at least 0.98 each; ``--method`` picks the soft series' method) and
mixed/plain (target: at least 0.95 of both plain figures). Rounds alternate the series
and the best round of each counts, which damps the noise of other work on the machine.
Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from sglang_soft_thinking.methods import NAMES as METHODS

from benchmarks.cli_types import max_topk, positive_int
from benchmarks.server_overhead import (
    Measurement,
    add_load_args,
    measure,
    server_command,
    start_cli,
    write_results,
)
from benchmarks.server_process import ServerProcess as RunningServer
from benchmarks.server_process import free_port

logger = logging.getLogger("benchmarks.soft_throughput")
TARGET_RATIO = 0.98
MIXED_TARGET_RATIO = 0.95
SERIES = ("plain_without_plugin", "plain", "soft", "mixed")


def soft_settings(max_topk: int, **extra) -> dict:
    return {"soft_thinking": {"max_topk": max_topk, "early_stopping_entropy_threshold": 0, **extra}}


def mixed_bodies(max_topk: int) -> list[dict]:
    """Sixteen request bodies: even ones plain, odd ones soft; request 1 has no
    after-thinking top-k limit, request 3 draws Dirichlet noise (no thinking top-k)."""
    bodies = [{} if i % 2 == 0 else soft_settings(max_topk) for i in range(16)]
    bodies[1] = soft_settings(max_topk, after_thinking={"top_k": -1})
    bodies[3] = soft_settings(max_topk, noise={"type": "dirichlet", "alpha": 1.0})
    return bodies


def series_bodies(series: str, args) -> list[dict]:
    if series == "soft":
        return [soft_settings(args.max_topk, method=args.method)]
    if series == "mixed":
        return mixed_bodies(args.max_topk)
    return [{}]


def run(args) -> dict[str, dict[int, Measurement]]:
    log_dir = Path(tempfile.mkdtemp(prefix="softthink-bench-"))
    servers = {}
    for name, env in (("with", {}), ("without", {"SOFTTHINK_DISABLE": "1"})):
        port = free_port()
        servers[name] = RunningServer(server_command("ours", args.model_path, port, args.max_total_tokens),
                                      port, log_dir / f"server-{name}.log", env)
    best: dict[str, dict[int, Measurement]] = {series: {} for series in SERIES}
    try:
        for server in servers.values():
            server.wait_healthy()
        for concurrency in args.concurrency:
            for round_index in range(args.rounds):
                for series in SERIES:
                    if series == "mixed" and concurrency not in args.mixed_concurrency:
                        continue
                    server = servers["without" if series == "plain_without_plugin" else "with"]
                    args.extra_bodies = series_bodies(series, args)
                    result = asyncio.run(measure(f"http://127.0.0.1:{server.port}/v1", server.process.pid,
                                                 concurrency, args))
                    logger.info("%s c=%d round %d: %.2f tok/s", series, concurrency,
                                round_index + 1, result.tokens_per_s)
                    if concurrency not in best[series] or result.tokens_per_s > best[series][concurrency].tokens_per_s:
                        best[series][concurrency] = result
    finally:
        for server in servers.values():
            server.stop()
    return best


def report(best: dict[str, dict[int, Measurement]], args) -> dict:
    rows = []
    print(f"{'concurrency':>11} {'plain w/o plugin':>17} {'plain tok/s':>12} {'soft tok/s':>11} "
          f"{'mixed tok/s':>12} {'plain ratio':>12} {'soft/plain':>11} {'mixed/plain':>12}")
    for concurrency in args.concurrency:
        base, plain, soft = (best[series][concurrency] for series in SERIES[:3])
        mixed = best["mixed"].get(concurrency)
        row = {"concurrency": concurrency,
               "plain_ratio": plain.tokens_per_s / base.tokens_per_s,
               "ratio": soft.tokens_per_s / plain.tokens_per_s,
               "plain_without_plugin_tokens_per_s": base.tokens_per_s,
               "plain_tokens_per_s": plain.tokens_per_s, "soft_tokens_per_s": soft.tokens_per_s,
               "output_tokens": soft.output_tokens, "num_requests": soft.num_requests}
        if mixed is not None:
            # Against the faster of the two plain figures (with and without the plugin).
            row["mixed_tokens_per_s"] = mixed.tokens_per_s
            row["mixed_ratio"] = mixed.tokens_per_s / max(plain.tokens_per_s, base.tokens_per_s)
        print(f"{concurrency:>11} {base.tokens_per_s:>17.2f} {plain.tokens_per_s:>12.2f} "
              f"{soft.tokens_per_s:>11.2f} {row.get('mixed_tokens_per_s', float('nan')):>12.2f} "
              f"{row['plain_ratio']:>12.3f} {row['ratio']:>11.3f} {row.get('mixed_ratio', float('nan')):>12.3f}")
        rows.append(row)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k not in ("extra_body", "extra_bodies")}
    meets = all(min(r["ratio"], r["plain_ratio"]) >= TARGET_RATIO
                and r.get("mixed_ratio", 1.0) >= MIXED_TARGET_RATIO for r in rows)
    return {"config": config, "target_ratio": TARGET_RATIO, "mixed_target_ratio": MIXED_TARGET_RATIO,
            "mixed_bodies": mixed_bodies(args.max_topk), "results": rows, "meets_target": meets}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser, rounds=2)
    parser.add_argument("--max-topk", type=max_topk, default=10, help="soft_thinking.max_topk")
    parser.add_argument("--method", choices=METHODS, default="concept",
                        help="soft_thinking.method of the soft series")
    parser.add_argument("--mixed-concurrency", type=positive_int, nargs="*", default=[16],
                        help="concurrency levels that also run the mixed load (none: no level)")
    args = parser.parse_args(argv)
    if args.temperature <= 0:
        parser.error("--temperature must be > 0: the soft series samples while thinking")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_cli()
    write_results(report(run(args), args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
