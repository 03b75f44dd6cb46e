"""Latency percentiles of our server: time to first token, time per output token, end to end.

    .venv/bin/python -m benchmarks.latency --out benchmarks/results/latency_cpu.json

Starts our server once (default dtype) and, at each concurrency, sends streamed chat
requests that each produce exactly ``--output-len`` tokens (``ignore_eos``), twice: plain,
and with soft thinking for the whole generation (Cold Stop off, no budget, ``max_topk``
10: every step a concept-token step). Each level sends ``max(--requests-factor x
concurrency, --min-requests)`` requests, at most ``concurrency`` at a time.

Per request: TTFT is the time to the first streamed chunk (the server sends it with the
first token, also while a soft-thinking reply's text is still held back); end-to-end is
the time to the last chunk; TPOT is ``(e2e - TTFT) / (tokens - 1)``. Reported per level:
p50, p99 and mean of each. The load average of the machine is recorded before and after
each level (the CPU may be shared). Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from benchmarks.cli_types import max_topk, positive_int
from benchmarks.server_overhead import TOPICS, add_load_args, server_command, start_cli, write_results
from benchmarks.server_process import ServerProcess, free_port

logger = logging.getLogger("benchmarks.latency")
MODES = ("plain", "soft")


@dataclass
class RequestTiming:
    ttft_s: float
    e2e_s: float
    output_tokens: int

    @property
    def tpot_s(self) -> float:
        return (self.e2e_s - self.ttft_s) / max(self.output_tokens - 1, 1)


def request_body(mode: str, topic: str, args) -> dict:
    """A streamed chat request; ``topic`` makes its prompt unique (no prefix-cache hits
    beyond the shared chat-template head, whichever level or mode ran before)."""
    body = {"messages": [{"role": "user", "content": f"Write about {topic}."}],
            "max_tokens": args.output_len, "temperature": args.temperature,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    if mode == "soft":
        body["soft_thinking"] = {"max_topk": args.max_topk,
                                 "early_stopping_entropy_threshold": 0}
    return body


async def timed_request(client: httpx.AsyncClient, url: str, body: dict) -> RequestTiming:
    """One streamed request; only the usage chunk is parsed, to keep the client light."""
    start = time.perf_counter()
    ttft, usage = None, None
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            if ttft is None:
                ttft = time.perf_counter() - start
            if '"usage"' in line:
                usage = json.loads(line[len("data:"):])["usage"]
    e2e = time.perf_counter() - start
    if ttft is None or usage is None:
        raise RuntimeError("the stream ended without chunks or without usage")
    return RequestTiming(ttft, e2e, usage["completion_tokens"])


async def measure_level(base_url: str, mode: str, concurrency: int, args) -> list[RequestTiming]:
    num_requests = max(args.requests_factor * concurrency, args.min_requests)
    limit = asyncio.Semaphore(concurrency)
    url = f"{base_url}/chat/completions"
    limits = httpx.Limits(max_connections=concurrency + 1)
    async with httpx.AsyncClient(timeout=3600, limits=limits) as client:
        await timed_request(client, url, request_body(mode, f"warming up ({mode} {concurrency})",
                                                      args))

        async def bounded(i: int) -> RequestTiming:
            topic = f"{TOPICS[i % len(TOPICS)]} (request {i} of {mode} {concurrency})"
            async with limit:
                return await timed_request(client, url, request_body(mode, topic, args))

        return list(await asyncio.gather(*(bounded(i) for i in range(num_requests))))


def stats(values: list[float]) -> dict:
    array = np.asarray(values)
    return {"p50": float(np.percentile(array, 50)), "p99": float(np.percentile(array, 99)),
            "mean": float(array.mean())}


def summarize(timings: list[RequestTiming]) -> dict:
    return {"num_requests": len(timings),
            "output_tokens": sum(t.output_tokens for t in timings),
            "ttft_s": stats([t.ttft_s for t in timings]),
            "tpot_s": stats([t.tpot_s for t in timings]),
            "e2e_s": stats([t.e2e_s for t in timings])}


def run(args) -> list[dict]:
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="softthink-bench-"))
    server = ServerProcess(server_command("ours", args.model_path, port, args.max_total_tokens),
                           port, log_dir / "server.log")
    rows = []
    try:
        server.wait_healthy()
        for concurrency in args.concurrency:
            for mode in MODES:
                load_before = os.getloadavg()[0]
                timings = asyncio.run(measure_level(f"http://127.0.0.1:{port}/v1", mode,
                                                    concurrency, args))
                row = {"concurrency": concurrency, "mode": mode, **summarize(timings),
                       "load_average_before": load_before,
                       "load_average_after": os.getloadavg()[0]}
                logger.info("%s c=%d: TTFT p50 %.3f s, TPOT p50 %.4f s, e2e p50 %.2f s", mode,
                            concurrency, row["ttft_s"]["p50"], row["tpot_s"]["p50"],
                            row["e2e_s"]["p50"])
                rows.append(row)
    finally:
        server.stop()
    return rows


def report(rows: list[dict], args) -> dict:
    metrics = ("ttft_s", "tpot_s", "e2e_s")
    header = " | ".join(f"{name[:-2].upper() + ' p50/p99/mean':>24}" for name in metrics)
    print(f"{'conc':>4} {'mode':>5} {'reqs':>4} | {header} | load avg")
    for row in rows:
        cells = " | ".join(f"{row[m]['p50']:>8.3f}{row[m]['p99']:>8.3f}{row[m]['mean']:>8.3f}"
                           for m in metrics)
        print(f"{row['concurrency']:>4} {row['mode']:>5} {row['num_requests']:>4} | {cells} | "
              f"{row['load_average_before']:.1f} -> {row['load_average_after']:.1f}")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {"config": config, "cpu_count": os.cpu_count(), "units": "seconds",
            "results": rows}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser, rounds=1)
    parser.set_defaults(concurrency=[1, 16, 64])
    parser.add_argument("--max-topk", type=max_topk, default=10, help="soft_thinking.max_topk")
    parser.add_argument("--requests-factor", type=positive_int, default=2,
                        help="requests per level, as a multiple of the concurrency")
    parser.add_argument("--min-requests", type=positive_int, default=16,
                        help="fewest requests per level")
    args = parser.parse_args(argv)
    if args.temperature <= 0:
        parser.error("--temperature must be > 0: the soft requests sample while thinking")
    for unused in ("num_prompts", "rounds", "stream"):
        delattr(args, unused)  # shared load options this benchmark does not use
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_cli()
    write_results(report(run(args), args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
