"""Train a SoftCoT projection on GSM8K-format data; both models stay frozen.

    .venv/bin/python -m softcot_plugin.train --base PATH --assistant PATH \\
        --data FILE.jsonl --num-thought-tokens 4 --epochs 2 --lr 1e-4 --batch-size 2 --out DIR

After each epoch the checkpoint is written to ``DIR/epoch-K/`` and to ``DIR`` itself
(the latest, what ``--softcot-projection DIR`` serves). ``--resume`` continues from
``DIR``'s latest epoch up to ``--epochs``. Runs on CUDA when present, else on the CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from softcot_plugin.checkpoint import (CONFIG_FILE, CheckpointError, ModelIdentity, SoftCoTConfig,
                                       load_checkpoint, marker_ids_of)
from softcot_plugin.data import DataError, encode_example, read_examples, split_dev
from softcot_plugin.projection import SoftCoTProjection
from softcot_plugin.templates import TASK_INSTRUCTIONS, PromptTemplates, TemplateError, choose_markers
from softcot_plugin.thoughts import load_frozen, pick_device
from softcot_plugin.training import STATE_FILE, SoftCoTTrainer

logger = logging.getLogger("softcot_plugin.train")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m softcot_plugin.train", description=__doc__.split("\n")[0])
    p.add_argument("--base", type=Path, required=True, help="the frozen base model folder")
    p.add_argument("--assistant", type=Path, required=True, help="the frozen assistant model folder")
    p.add_argument("--data", type=Path, required=True, help="GSM8K-format .jsonl training data")
    p.add_argument("--num-thought-tokens", type=int, default=4, help="N soft thoughts (default 4)")
    p.add_argument("--epochs", type=int, default=1, help="epochs in all, resumed ones included")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue from --out's latest epoch")
    p.add_argument("--dev-fraction", type=float, default=0.1, help="share held out as dev split")
    p.add_argument("--max-examples", type=int, default=None, help="use only the first N examples")
    p.add_argument("--task", choices=sorted(TASK_INSTRUCTIONS), default="math")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if present)")
    p.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                   help="the frozen models' dtype (auto: float32 on CPU, bfloat16 on CUDA); "
                        "the projection is always float32")
    args = p.parse_args(argv)
    for name, minimum in (("num_thought_tokens", 1), ("epochs", 1), ("batch_size", 1)):
        if getattr(args, name) < minimum:
            p.error(f"--{name.replace('_', '-')} must be at least {minimum}")
    if args.lr <= 0:
        p.error("--lr must be positive")
    if not 0 <= args.dev_fraction < 1:
        p.error("--dev-fraction must be in [0, 1)")
    for flag in ("base", "assistant"):
        if not (getattr(args, flag) / "config.json").is_file():
            p.error(f"--{flag}: {getattr(args, flag)} is not a model folder (no config.json)")
    if args.resume and not (args.out / STATE_FILE).is_file():
        p.error(f"--resume: {args.out} holds no training state ({STATE_FILE})")
    if not args.resume and (args.out / CONFIG_FILE).exists():
        p.error(f"--out: {args.out} already holds a checkpoint; pass --resume or pick another folder")
    return args


def build_config(args, assistant, assistant_tokenizer, base, base_tokenizer) -> SoftCoTConfig:
    family, markers = choose_markers(base_tokenizer)
    templates = PromptTemplates.for_task(args.task, markers, args.num_thought_tokens)
    ids = {"assistant": marker_ids_of(assistant_tokenizer, templates),
           "base": marker_ids_of(base_tokenizer, templates)}
    if -1 in ids["assistant"].values():
        raise TemplateError(f"the assistant's tokenizer lacks the base model's {family} marker "
                            f"tokens {markers}; pick models of one tokenizer family")
    return SoftCoTConfig(ModelIdentity.of(args.assistant, assistant.config),
                         ModelIdentity.of(args.base, base.config), templates, family, ids,
                         {"data": str(args.data), "lr": args.lr, "batch_size": args.batch_size,
                          "seed": args.seed, "task": args.task})


def run(args) -> dict:
    device = pick_device(args.device)
    dtype = DTYPES.get(args.dtype) or (torch.float32 if device.type == "cpu" else torch.bfloat16)
    assistant, assistant_tokenizer = load_frozen(args.assistant, hidden_only=True, device=device, dtype=dtype)
    base, base_tokenizer = load_frozen(args.base, hidden_only=False, device=device, dtype=dtype)
    config = build_config(args, assistant, assistant_tokenizer, base, base_tokenizer)
    torch.manual_seed(args.seed)
    projection = SoftCoTProjection(assistant.config.hidden_size, base.config.hidden_size)
    trainer = SoftCoTTrainer(assistant, base, projection, assistant_pad_id=assistant_tokenizer.eos_token_id,
                             base_pad_id=base_tokenizer.eos_token_id, lr=args.lr, seed=args.seed)
    history: list[dict] = []
    if args.resume:
        saved, saved_projection = load_checkpoint(args.out)
        if saved.templates != config.templates:
            raise CheckpointError(f"--resume: {args.out} was trained with other templates or N "
                                  f"({saved.num_thought_tokens} thoughts)")
        trainer.restore(args.out, saved_projection)
        history = saved.training.get("history", [])
    examples = read_examples(args.data)[:args.max_examples]
    train_set, dev_set = split_dev(examples, args.dev_fraction, args.seed)
    encode = lambda items: [encode_example(e, config.templates, assistant_tokenizer, base_tokenizer)
                            for e in items]
    train_encoded, dev_encoded = encode(train_set), encode(dev_set)
    logger.info("%d training and %d dev examples on %s (%s)", len(train_encoded),
                len(dev_encoded), device, dtype)
    if not args.resume and dev_encoded:
        config.training["initial_dev_loss"] = trainer.evaluate(dev_encoded, args.batch_size)
        logger.info("dev loss before training: %.4f", config.training["initial_dev_loss"])
    while trainer.epochs_done < args.epochs:
        history.append(run_epoch(trainer, train_encoded, dev_encoded, args.batch_size, args.epochs))
        config.training["history"] = history
        config.training["epochs_done"] = trainer.epochs_done
        trainer.save(args.out / f"epoch-{trainer.epochs_done}", config)
        trainer.save(args.out, config)
    return {"epochs_done": trainer.epochs_done, "history": history, "out": str(args.out),
            "initial_dev_loss": config.training.get("initial_dev_loss")}


def run_epoch(trainer: SoftCoTTrainer, train_encoded, dev_encoded, batch_size: int,
              num_epochs: int) -> dict:
    """One epoch with a progress bar; the epoch's mean loss, dev loss and step time."""
    losses, step_ms = [], []
    batches = list(trainer.epoch_batches(train_encoded, batch_size))
    bar = tqdm(batches, desc=f"epoch {trainer.epochs_done + 1}/{num_epochs}", unit="step")
    for batch in bar:
        started = time.perf_counter()
        losses.append(trainer.step(batch))
        step_ms.append(1000 * (time.perf_counter() - started))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    trainer.epochs_done += 1
    dev_loss = trainer.evaluate(dev_encoded, batch_size) if dev_encoded else None
    record = {"epoch": trainer.epochs_done, "train_loss": sum(losses) / len(losses),
              "dev_loss": dev_loss, "ms_per_step": sum(step_ms) / len(step_ms),
              "median_ms_per_step": statistics.median(step_ms), "steps": len(batches)}
    logger.info("epoch %d: %s", trainer.epochs_done, record)
    return record


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        summary = run(args)
    except (CheckpointError, DataError, TemplateError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
