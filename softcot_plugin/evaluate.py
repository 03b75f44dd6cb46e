"""Accuracy with and without SoftCoT on a GSM8K-format file, with self-consistency.

Against a running server (``--base-url``; the OpenAI client, ``extra_body={"softcot": ...}``)::

    .venv/bin/python -m softcot_plugin.evaluate --data datasets/word_problems_test.jsonl \\
        --base-url http://127.0.0.1:30000/v1 --limit 50 --num-samples 3 --temperature 0.6

or in this process with transformers (``--in-process --base PATH --assistant PATH
--projection DIR``). Both modes send the same instruction; ``softcot`` adds the thought
block and the thoughts. With ``--num-samples k`` each problem gets k answers and the
majority vote counts (:func:`evaluation.scoring.majority_vote`); answers are scored as
GSM8K numbers (:func:`evaluation.scoring.score`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evaluation.problems import gsm8k_final_answer
from evaluation.scoring import majority_vote, score
from softcot_plugin.data import DataError, Example, read_examples
from softcot_plugin.templates import TASK_INSTRUCTIONS, without_thoughts

logger = logging.getLogger("softcot_plugin.evaluate")
MODES = ("plain", "softcot")


class ServerSampler:
    """k answers per question from a running server; SoftCoT through the request's ``softcot``."""

    def __init__(self, base_url: str, api_key: str, model: str | None, task: str):
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=900)
        self.model = model or self.client.models.list().data[0].id
        self.plain_instruction = without_thoughts(TASK_INSTRUCTIONS[task][1])

    def sample(self, question: str, use_softcot: bool, k: int, temperature: float,
               max_tokens: int) -> list[str]:
        # The server rewrites the question into the SoftCoT template itself.
        content = question if use_softcot else self.plain_instruction.format(question=question)
        extra = {"softcot": {"enabled": True}} if use_softcot else {}
        response = self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": content}], n=k,
            temperature=temperature, max_tokens=max_tokens, extra_body=extra)
        return [choice.message.content or "" for choice in response.choices]


def evaluate_problem(sampler, example: Example, mode: str, args) -> dict:
    started = time.perf_counter()
    texts = sampler.sample(example.question, mode == "softcot", args.num_samples,
                           args.temperature, args.max_tokens)
    latency = time.perf_counter() - started
    gold = gsm8k_final_answer(example.answer)
    verdicts = [score("gsm8k", gold, text, text) for text in texts]
    vote, correct = majority_vote([v.extracted for v in verdicts], [v.correct for v in verdicts])
    return {"mode": mode, "gold": gold, "vote": vote, "correct": correct, "latency_s": latency,
            "samples_correct": sum(v.correct for v in verdicts)}


def evaluate(sampler, examples: list[Example], args) -> dict:
    """Per mode: majority-vote accuracy, mean per-sample accuracy and mean latency."""
    summary = {}
    for mode in args.modes:
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            records = list(pool.map(lambda e: evaluate_problem(sampler, e, mode, args), examples))
        summary[mode] = {
            "accuracy": sum(r["correct"] for r in records) / len(records),
            "sample_accuracy": sum(r["samples_correct"] for r in records) / (len(records) * args.num_samples),
            "mean_latency_s": sum(r["latency_s"] for r in records) / len(records),
            "num_problems": len(records), "num_samples": args.num_samples,
        }
        logger.info("%s: %s", mode, summary[mode])
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m softcot_plugin.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="GSM8K-format .jsonl file")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--num-samples", type=int, default=1, help="k answers per problem, majority vote")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--modes", default="plain,softcot", help="comma-separated: plain, softcot")
    p.add_argument("--task", choices=sorted(TASK_INSTRUCTIONS), default="math")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (server mode)")
    p.add_argument("--base-url", default="http://127.0.0.1:30000/v1")
    p.add_argument("--api-key", default="none")
    p.add_argument("--model", default=None, help="served model name (default: the server's)")
    p.add_argument("--in-process", action="store_true", help="run transformers here, no server")
    p.add_argument("--base", type=Path, help="base model folder (--in-process)")
    p.add_argument("--assistant", type=Path, help="assistant model folder (--in-process)")
    p.add_argument("--projection", type=Path, help="SoftCoT checkpoint folder (--in-process)")
    p.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or any(m not in MODES for m in args.modes):
        p.error(f"--modes: choose from {', '.join(MODES)}")
    if args.num_samples < 1 or args.concurrency < 1 or args.max_tokens < 1:
        p.error("--num-samples, --concurrency and --max-tokens must be at least 1")
    if args.num_samples > 1 and args.temperature == 0:
        p.error("--num-samples > 1 needs --temperature > 0 (greedy samples are all equal)")
    if args.in_process:
        missing = [f"--{n}" for n in ("base", "assistant", "projection") if getattr(args, n) is None]
        if missing and (missing != ["--projection"] or "softcot" in args.modes):
            p.error(f"--in-process needs {', '.join(missing)}")
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        examples = read_examples(args.data)[:args.limit]
    except DataError as error:
        sys.exit(f"error: {error}")
    if args.in_process:
        from softcot_plugin.local import LocalSampler

        args.concurrency = 1
        sampler = LocalSampler(args.base, args.assistant, args.projection, args.task)
    else:
        sampler = ServerSampler(args.base_url, args.api_key, args.model, args.task)
    summary = {"data": str(args.data), "temperature": args.temperature,
               "max_tokens": args.max_tokens, "results": evaluate(sampler, examples, args)}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
