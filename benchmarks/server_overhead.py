"""Output tokens/s of our server against stock ``sglang.launch_server`` on the same model.

    .venv/bin/python -m benchmarks.server_overhead --out runs/server_overhead.json

Starts each server in turn (same model, same KV budget, same scheduler options), sends the
same prompts at each concurrency with the async OpenAI client, every request producing
exactly ``--output-len`` tokens (``ignore_eos``), and reports ours/stock per concurrency
(target: at least 0.95). Each measurement is repeated ``--rounds`` times and the best
round counts, which damps the noise of other work on the machine; ``--interleave`` keeps
both servers up and alternates their rounds, which damps it further. Also reported: the CPU
time the server's main process (HTTP, tokenization, streaming; the engine's scheduler runs
in a subprocess) spent per output token, which other load on the machine disturbs less.
Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import openai
import psutil

from benchmarks.cli_types import existing_dir, non_negative_float, output_file, positive_int
from benchmarks.server_process import ServerProcess, free_port
from evaluation.locations import default_model_dir

logger = logging.getLogger("benchmarks.server_overhead")
TARGET_RATIO = 0.95
TOPICS = ["the sea", "a lighthouse keeper", "mountains in winter", "a robot learning to paint",
          "the history of bread", "a city at night", "bees", "an old library",
          "a long train journey", "volcanoes", "a chess game", "the first day of school",
          "rainforests", "a lost key", "the moon landing", "a quiet village"]


@dataclass
class Measurement:
    concurrency: int
    num_requests: int
    output_tokens: int
    seconds: float
    main_process_cpu_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds

    @property
    def main_cpu_ms_per_token(self) -> float:
        return 1000 * self.main_process_cpu_s / self.output_tokens


def server_command(kind: str, model_path: Path, port: int, max_total_tokens: int) -> list[str]:
    common = ["--model-path", str(model_path), "--port", str(port),
              "--max-total-tokens", str(max_total_tokens), "--log-level", "warning"]
    if kind == "ours":
        return [sys.executable, "-m", "server", *common]
    # Our server runs SGLang's scheduler with sleep_on_idle; give stock the same.
    return [sys.executable, "-m", "sglang.launch_server", *common, "--sleep-on-idle"]


def request_bodies(args) -> list[dict]:
    """The extra body of each request in turn: ``args.extra_bodies`` (request i takes item
    i modulo their number), else ``args.extra_body`` for every request."""
    return getattr(args, "extra_bodies", None) or [getattr(args, "extra_body", {})]


async def one_request(client: openai.AsyncOpenAI, model: str, topic: str, args,
                      extra_body: dict | None = None) -> int:
    """Output tokens of one chat request, as the server's usage reports them."""
    request = dict(model=model, messages=[{"role": "user", "content": f"Write about {topic}."}],
                   max_tokens=args.output_len, temperature=args.temperature,
                   extra_body={"ignore_eos": True, **(extra_body or {})})
    if not args.stream:
        response = await client.chat.completions.create(**request)
        return response.usage.completion_tokens
    usage = None
    stream = await client.chat.completions.create(**request, stream=True,
                                                  stream_options={"include_usage": True})
    async for chunk in stream:
        usage = chunk.usage or usage
    return usage.completion_tokens


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def measure(base_url: str, pid: int, concurrency: int, args) -> Measurement:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=3600)
    model = (await client.models.list()).data[0].id
    limit = asyncio.Semaphore(concurrency)
    num_requests = max(args.num_prompts, concurrency)

    bodies = request_bodies(args)

    async def bounded(i: int) -> int:
        async with limit:
            return await one_request(client, model, TOPICS[i % len(TOPICS)], args, bodies[i % len(bodies)])

    await one_request(client, model, "warming up", args, bodies[0])
    start, start_cpu = time.perf_counter(), cpu_seconds(pid)
    tokens = await asyncio.gather(*(bounded(i) for i in range(num_requests)))
    seconds, cpu = time.perf_counter() - start, cpu_seconds(pid) - start_cpu
    await client.close()
    return Measurement(concurrency, num_requests, sum(tokens), seconds, cpu)


KINDS = ("ours", "stock")
Results = dict[str, dict[int, Measurement]]  # kind -> concurrency -> best measurement


def start_server(kind: str, args, log_dir: Path) -> ServerProcess:
    port = free_port()
    server = ServerProcess(server_command(kind, args.model_path, port, args.max_total_tokens),
                           port, log_dir / f"{kind}.log")
    logger.info("starting %s server (log: %s)", kind, server.log_path)
    try:
        server.wait_healthy()
    except BaseException:
        server.stop()
        raise
    return server


def measure_round(kind: str, server: ServerProcess, concurrency: int, args,
                  best: Results) -> None:
    url = f"http://127.0.0.1:{server.port}/v1"
    result = asyncio.run(measure(url, server.process.pid, concurrency, args))
    logger.info("%s c=%d: %.2f tok/s, main process %.2f CPU ms/token", kind, concurrency,
                result.tokens_per_s, result.main_cpu_ms_per_token)
    previous = best[kind].get(concurrency)
    if previous is None or result.tokens_per_s > previous.tokens_per_s:
        best[kind][concurrency] = result


def run_benchmark(args, log_dir: Path) -> Results:
    """One server at a time; with --interleave both stay up (idle one asleep) and rounds alternate."""
    best: Results = {kind: {} for kind in KINDS}
    if not args.interleave:
        for kind in KINDS:
            server = start_server(kind, args, log_dir)
            try:
                for concurrency in args.concurrency:
                    for _ in range(args.rounds):
                        measure_round(kind, server, concurrency, args, best)
            finally:
                server.stop()
        return best
    servers: dict[str, ServerProcess] = {}
    try:
        for kind in KINDS:
            servers[kind] = start_server(kind, args, log_dir)
        for concurrency in args.concurrency:
            for _ in range(args.rounds):
                for kind in KINDS:
                    measure_round(kind, servers[kind], concurrency, args, best)
    finally:
        for server in servers.values():
            server.stop()
    return best


def report(ours: dict[int, Measurement], stock: dict[int, Measurement], args) -> dict:
    rows = []
    print(f"{'concurrency':>11} {'ours tok/s':>11} {'stock tok/s':>12} {'ours/stock':>11}"
          f" {'ours cpu ms/tok':>16} {'stock cpu ms/tok':>17}")
    for concurrency in args.concurrency:
        a, b = ours[concurrency], stock[concurrency]
        ratio = a.tokens_per_s / b.tokens_per_s
        print(f"{concurrency:>11} {a.tokens_per_s:>11.2f} {b.tokens_per_s:>12.2f} {ratio:>11.3f}"
              f" {a.main_cpu_ms_per_token:>16.2f} {b.main_cpu_ms_per_token:>17.2f}")
        rows.append({"concurrency": concurrency, "ratio": ratio,
                     "ours": _row(a), "stock": _row(b)})
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {"config": config, "target_ratio": TARGET_RATIO, "results": rows,
            "meets_target": all(r["ratio"] >= TARGET_RATIO for r in rows)}


def _row(measurement: Measurement) -> dict:
    return {**asdict(measurement), "tokens_per_s": measurement.tokens_per_s,
            "main_cpu_ms_per_token": measurement.main_cpu_ms_per_token}


def add_load_args(parser: argparse.ArgumentParser, rounds: int) -> None:
    """The load options every throughput benchmark here shares."""
    parser.add_argument("--model-path", type=existing_dir, default=default_model_dir())
    parser.add_argument("--concurrency", type=positive_int, nargs="+", default=[1, 16])
    parser.add_argument("--num-prompts", type=positive_int, default=16,
                        help="requests per measurement (at least the concurrency)")
    parser.add_argument("--output-len", type=positive_int, default=64, help="tokens per request")
    parser.add_argument("--temperature", type=non_negative_float, default=0.7)
    parser.add_argument("--max-total-tokens", type=positive_int, default=32768)
    parser.add_argument("--rounds", type=positive_int, default=rounds,
                        help="repeats; the best counts")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=output_file, help="write the results as JSON here")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser, rounds=1)
    parser.add_argument("--interleave", action="store_true",
                        help="keep both servers up and alternate their rounds (fairer when "
                             "other work on the machine varies)")
    return parser.parse_args(argv)


def start_cli() -> None:
    """Logging for a benchmark run; SIGTERM becomes an exception, so the servers started
    here are stopped on the way out."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def write_results(results: dict, out: Path | None) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        logger.info("results written to %s", out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_cli()
    log_dir = Path(tempfile.mkdtemp(prefix="softthink-bench-"))
    best = run_benchmark(args, log_dir)
    write_results(report(best["ours"], best["stock"], args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
