"""Output tokens/s with soft thinking on versus off, and what the plugin costs plain requests.

    .venv/bin/python -m benchmarks.soft_throughput --out runs/soft_throughput.json

Starts our server twice, with the plugin (as served) and without it
(``SOFTTHINK_DISABLE=1``, stock SGLang decoding), both up for the whole run. At each
concurrency it sends the same prompts with the same output length (``ignore_eos``):
plain to the server without the plugin, plain to the server with it, and with soft
thinking for the whole generation (Cold Stop off, no budget, so every step is a
concept-token step). Reports per concurrency plain-with/plain-without (the plugin's cost
on plain batches) and soft/plain (target: at least 0.97 each). Rounds alternate the three
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
TARGET_RATIO = 0.97
SERIES = ("plain_without_plugin", "plain", "soft")


def soft_settings(max_topk: int) -> dict:
    return {"soft_thinking": {"max_topk": max_topk, "early_stopping_entropy_threshold": 0}}


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
                    server = servers["without" if series == "plain_without_plugin" else "with"]
                    args.extra_body = soft_settings(args.max_topk) if series == "soft" else {}
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
          f"{'plain ratio':>12} {'soft/plain':>11}")
    for concurrency in args.concurrency:
        base, plain, soft = (best[series][concurrency] for series in SERIES)
        plain_ratio = plain.tokens_per_s / base.tokens_per_s
        ratio = soft.tokens_per_s / plain.tokens_per_s
        print(f"{concurrency:>11} {base.tokens_per_s:>17.2f} {plain.tokens_per_s:>12.2f} "
              f"{soft.tokens_per_s:>11.2f} {plain_ratio:>12.3f} {ratio:>11.3f}")
        rows.append({"concurrency": concurrency, "ratio": ratio, "plain_ratio": plain_ratio,
                     "plain_without_plugin_tokens_per_s": base.tokens_per_s,
                     "plain_tokens_per_s": plain.tokens_per_s, "soft_tokens_per_s": soft.tokens_per_s,
                     "output_tokens": soft.output_tokens, "num_requests": soft.num_requests})
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k != "extra_body"}
    return {"config": config, "target_ratio": TARGET_RATIO, "results": rows,
            "meets_target": all(min(r["ratio"], r["plain_ratio"]) >= TARGET_RATIO for r in rows)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser, rounds=2)
    parser.add_argument("--max-topk", type=int, default=10, help="soft_thinking.max_topk")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_cli()
    write_results(report(run(args), args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
