"""SoftCoT on this machine: training step time, assistant overhead per request, accuracy.

    .venv/bin/python -m benchmarks.softcot_bench --out benchmarks/results/softcot_cpu.json

1. Trains a projection briefly (the default model as assistant and base) on the start
   of ``datasets/word_problems_train.jsonl``: milliseconds per training step.
2. Serves it (``--softcot-assistant`` / ``--softcot-projection``) and times one-token
   chat requests with and without SoftCoT, alternating, one at a time: the difference of
   the medians is the assistant's overhead per request (its forward pass, the projection
   and the thought block's extra prompt tokens).
3. Scores the held-out ``datasets/word_problems_test.jsonl`` with and without SoftCoT
   through :mod:`softcot_plugin.evaluate`.

Not run in CI; minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cli_types import (existing_dir, existing_file, output_file, positive_float,
                                  positive_int)
from benchmarks.server_overhead import start_cli, write_results
from benchmarks.server_process import ServerProcess, free_port
from evaluation.locations import default_model_dir
from softcot_plugin import evaluate, train
from softcot_plugin.checkpoint import load_checkpoint
from softcot_plugin.data import read_examples

logger = logging.getLogger("benchmarks.softcot_bench")
REPO = Path(__file__).resolve().parents[1]


def train_projection(args, out: Path) -> dict:
    train_args = train.parse_args([
        "--base", str(args.model_path), "--assistant", str(args.model_path),
        "--data", str(args.train_data), "--max-examples", str(args.train_examples),
        "--num-thought-tokens", str(args.num_thought_tokens), "--epochs", str(args.epochs),
        "--lr", str(args.lr), "--batch-size", str(args.batch_size), "--out", str(out)])
    return train.run(train_args)


def overhead(client, model: str, templates, tokenizer, questions: list[str]) -> dict:
    """Median latency of one-token requests, plain and with SoftCoT, alternated per question.

    The plain request sends the SoftCoT request's own base prompt as token ids, so the
    difference is the assistant's forward pass, the projection, the overrides' transport,
    and the prefix cache that SGLang turns off for a prompt with overrides (a fresh
    question per round keeps plain requests from a whole-prompt cache hit).
    """
    latencies: dict[str, list[float]] = {"plain": [], "softcot": []}
    for question in questions:
        for mode in latencies:
            started = time.perf_counter()
            if mode == "softcot":
                client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": question}],
                    max_tokens=1, temperature=0, extra_body={"softcot": {"enabled": True}})
            else:
                client.completions.create(model=model, max_tokens=1, temperature=0,
                                          prompt=templates.base_ids(tokenizer, question))
            latencies[mode].append(1000 * (time.perf_counter() - started))
    plain, softcot = (statistics.median(latencies[m]) for m in ("plain", "softcot"))
    return {"plain_median_ms": plain, "softcot_median_ms": softcot,
            "served_overhead_ms": softcot - plain, "rounds": len(questions)}


def assistant_forward_ms(model_path: Path, templates, tokenizer, projection,
                         questions: list[str]) -> float:
    """Median time of the assistant's forward pass and the projection for one request, here."""
    import torch

    from softcot_plugin.thoughts import assistant_hidden, load_frozen

    assistant, _ = load_frozen(model_path, hidden_only=True, device=torch.device("cpu"))
    times = []
    for question in questions:
        ids = templates.assistant_ids(tokenizer, question)
        started = time.perf_counter()
        with torch.no_grad():
            projection(assistant_hidden(assistant, [ids], [templates.placeholder_positions(
                tokenizer, ids)], tokenizer.eos_token_id))
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def run(args) -> dict:
    import openai
    from transformers import AutoTokenizer

    load_before = os.getloadavg()[0]   # the machine may be shared: record how busy it was
    work = Path(tempfile.mkdtemp(prefix="softcot-bench-"))
    training = train_projection(args, work / "projection")
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-m", "server", "--port", str(port),
         "--model-path", str(args.model_path), "--max-total-tokens", "32768", "--dtype", args.dtype,
         "--log-level", "warning", "--softcot-assistant", str(args.model_path),
         "--softcot-projection", str(work / "projection")], port, work / "server.log")
    try:
        server.wait_healthy()
        base_url = f"http://127.0.0.1:{port}/v1"
        client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=600)
        model = client.models.list().data[0].id
        config, projection = load_checkpoint(work / "projection")
        tokenizer = AutoTokenizer.from_pretrained(str(args.model_path))
        questions = [e.question for e in read_examples(args.train_data)[-args.rounds:]]
        latency = overhead(client, model, config.templates, tokenizer, questions)
        eval_args = evaluate.parse_args([
            "--data", str(args.test_data), "--limit", str(args.test_problems),
            "--max-tokens", str(args.max_tokens), "--base-url", base_url,
            "--concurrency", str(args.concurrency)])
        accuracy = evaluate.evaluate(evaluate.ServerSampler(base_url, "none", model, "math"),
                                     read_examples(args.test_data)[:args.test_problems], eval_args)
    finally:
        server.stop()
    latency["assistant_forward_ms"] = assistant_forward_ms(args.model_path, config.templates,
                                                           tokenizer, projection, questions)
    history = training["history"]
    return {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "training": {"initial_dev_loss": training["initial_dev_loss"],
                         "ms_per_step": statistics.mean(h["ms_per_step"] for h in history),
                         "median_ms_per_step": statistics.median(
                             h.get("median_ms_per_step", h["ms_per_step"]) for h in history),
                         "history": history},
            "overhead": latency, "accuracy": accuracy,
            "load_average_1min": {"start": load_before, "end": os.getloadavg()[0]}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SoftCoT benchmark on this machine.")
    p.add_argument("--model-path", type=existing_dir, default=default_model_dir())
    p.add_argument("--train-data", type=existing_file,
                   default=REPO / "datasets" / "word_problems_train.jsonl")
    p.add_argument("--test-data", type=existing_file,
                   default=REPO / "datasets" / "word_problems_test.jsonl")
    p.add_argument("--train-examples", type=positive_int, default=64)
    p.add_argument("--num-thought-tokens", type=positive_int, default=4)
    p.add_argument("--epochs", type=positive_int, default=1)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--dtype", default="float32", choices=["auto", "float32", "float16", "bfloat16"])
    p.add_argument("--rounds", type=positive_int, default=10, help="overhead requests per mode")
    p.add_argument("--test-problems", type=positive_int, default=30)
    p.add_argument("--max-tokens", type=positive_int, default=128)
    p.add_argument("--concurrency", type=positive_int, default=4)
    p.add_argument("--out", type=output_file, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    start_cli()
    args = parse_args(argv)
    results = run(args)
    logger.info("training %.0f ms/step (median); assistant %.1f ms, served overhead %.1f ms; "
                "accuracy %s", results["training"]["median_ms_per_step"],
                results["overhead"]["assistant_forward_ms"], results["overhead"]["served_overhead_ms"],
                {mode: r["accuracy"] for mode, r in results["accuracy"].items()})
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
