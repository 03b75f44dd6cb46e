"""See the thought: a soft-thinking trace drawn as entropy per step and a concept-token heat map.

    .venv/bin/python -m benchmarks.trace_plot RESPONSE.json|RUN.jsonl --out DIR

Reads a chat or text completion response saved as JSON (a request with
``soft_thinking.return_trace``), or a harness run file (JSONL, one sample per line, each
with the server's response; run it with ``return_trace`` in its soft-thinking settings).
For each choice with a trace it writes, named after the sample and choice:

* ``NAME_entropy.png``: the entropy (nats) of each thinking step, the Cold Stop threshold
  as a line, and where thinking ended and why;
* ``NAME_concepts_PAGE.png``: the concept tokens, steps across and the top-k tokens down,
  weight as colour, each cell labelled with its token's text; ``--steps-per-page`` steps
  per image, so the text stays legible however long the thought.

``DIR/plots.json`` lists every image with the steps it shows. The token texts come from
the model's tokenizer (``--tokenizer``, the default model's by default). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cli_types import existing_dir, non_negative_float, positive_int
from evaluation.locations import default_model_dir
from sglang_soft_thinking.params import SoftThinkingParams

DEFAULT_THRESHOLD = SoftThinkingParams.model_fields["early_stopping_entropy_threshold"].default


class TraceError(ValueError):
    """An input with nothing to draw or that cannot be read; the message names the file."""


@dataclass
class Thought:
    """One choice's trace and what is known of how its thinking went."""

    name: str
    trace: list[dict]
    end_reason: str | None
    threshold: float


def _choices(response: dict) -> list[dict]:
    return response.get("choices") or []


def read_thoughts(path: Path, threshold: float | None) -> list[Thought]:
    """Every choice with a trace in a response file or a run file.

    The Cold Stop threshold is ``threshold`` if given, else the run record's request's,
    else the default's.
    """
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = [{"response": json.loads(text)}]
    except json.JSONDecodeError as error:
        raise TraceError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    thoughts = []
    for number, record in enumerate(records):
        response = record.get("response") or {}
        request_soft = ((record.get("request") or {}).get("soft_thinking") or {})
        own_threshold = request_soft.get("early_stopping_entropy_threshold", DEFAULT_THRESHOLD)
        stem = (f"{record['prompt_id']}-{record.get('sample_index', 0)}"
                if "prompt_id" in record else path.stem if len(records) == 1 else f"record{number}")
        for choice in _choices(response):
            soft = choice.get("soft_thinking") or {}
            if soft.get("trace"):
                thoughts.append(Thought(
                    name=_safe(f"{stem}-choice{choice.get('index', 0)}"), trace=soft["trace"],
                    end_reason=soft.get("end_reason"),
                    threshold=own_threshold if threshold is None else threshold))
    return thoughts


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def token_labels(tokenizer, ids: set[int]) -> dict[int, str]:
    """A short legible text per token id: spaces and line breaks made visible."""
    labels = {}
    for token_id in ids:
        text = tokenizer.decode([token_id]) if tokenizer is not None else str(token_id)
        text = text.replace("\n", "\\n").replace("\t", "\\t").replace(" ", "\u2423")
        labels[token_id] = text if len(text) <= 10 else text[:9] + "\u2026"
    return labels


def plot_entropy(thought: Thought, out: Path) -> Path:
    import matplotlib.pyplot as plt

    steps = range(1, len(thought.trace) + 1)
    entropy = [step["entropy"] for step in thought.trace]
    fig, ax = plt.subplots(figsize=(min(24, 4 + 0.08 * len(entropy)), 4))
    ax.plot(steps, entropy, marker="o", markersize=2.5, linewidth=1, label="entropy")
    if thought.threshold > 0:
        ax.axhline(thought.threshold, color="tab:red", linestyle="--", linewidth=1,
                   label=f"Cold Stop threshold ({thought.threshold:g})")
    ax.axvline(len(entropy) + 0.5, color="tab:gray", linewidth=1,
               label=f"thinking ended ({thought.end_reason or 'unknown'})")
    ax.set_xlabel("thinking step")
    ax.set_ylabel("entropy (nats)")
    ax.set_title(f"{thought.name}: {len(entropy)} thinking steps")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = out / f"{thought.name}_entropy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_concepts(thought: Thought, labels: dict[int, str], out: Path,
                  steps_per_page: int) -> list[tuple[Path, int, int]]:
    """Heat maps of the concept tokens; (image, first step, last step) per page, 1-based."""
    import matplotlib.pyplot as plt
    import numpy as np

    depth = max(len(step["ids"]) for step in thought.trace)
    pages = []
    for page in range(math.ceil(len(thought.trace) / steps_per_page)):
        first = page * steps_per_page
        steps = thought.trace[first:first + steps_per_page]
        weights = np.full((depth, len(steps)), np.nan)
        for column, step in enumerate(steps):
            weights[:len(step["weights"]), column] = step["weights"]
        fig, ax = plt.subplots(figsize=(2 + 0.62 * len(steps), 1.2 + 0.36 * depth))
        image = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        for column, step in enumerate(steps):
            for row, (token_id, weight) in enumerate(zip(step["ids"], step["weights"])):
                ax.text(column, row, labels.get(token_id, str(token_id)), ha="center",
                        va="center", fontsize=6.5, color="white" if weight < 0.6 else "black")
        ax.set_xticks(range(len(steps)), [str(first + i + 1) for i in range(len(steps))],
                      fontsize=7)
        ax.set_yticks(range(depth), [str(i + 1) for i in range(depth)], fontsize=7)
        ax.set_xlabel("thinking step")
        ax.set_ylabel("rank in the concept token")
        ax.set_title(f"{thought.name}: steps {first + 1}-{first + len(steps)}", fontsize=9)
        fig.colorbar(image, ax=ax, label="weight", fraction=0.025, pad=0.01)
        fig.tight_layout()
        path = out / f"{thought.name}_concepts_{page:03d}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        pages.append((path, first + 1, first + len(steps)))
    return pages


def load_tokenizer(path: Path | None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path or default_model_dir())


def run(args) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    thoughts = read_thoughts(args.input, args.entropy_threshold)
    if not thoughts:
        raise TraceError(f"{args.input}: no choice with a trace (ask for it with "
                         f"soft_thinking.return_trace: true)")
    tokenizer = load_tokenizer(args.tokenizer)
    args.out.mkdir(parents=True, exist_ok=True)
    listing = []
    for thought in thoughts:
        labels = token_labels(tokenizer, {i for step in thought.trace for i in step["ids"]})
        entropy = plot_entropy(thought, args.out)
        concepts = plot_concepts(thought, labels, args.out, args.steps_per_page)
        listing.append({
            "name": thought.name, "steps": len(thought.trace), "end_reason": thought.end_reason,
            "threshold": thought.threshold, "entropy_image": entropy.name,
            "concept_images": [{"image": p.name, "first_step": a, "last_step": b}
                               for p, a, b in concepts]})
        print(f"{thought.name}: {len(thought.trace)} steps -> {entropy.name}, "
              f"{len(concepts)} heat map(s)")
    summary = {"input": str(args.input), "plots": listing}
    (args.out / "plots.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="a response (.json) or a harness run file (.jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the images")
    parser.add_argument("--tokenizer", type=existing_dir,
                        help="the model's folder (default: the default model)")
    parser.add_argument("--entropy-threshold", type=non_negative_float,
                        help="the Cold Stop threshold to draw (default: the request's, else "
                             f"{DEFAULT_THRESHOLD})")
    parser.add_argument("--steps-per-page", type=positive_int, default=32,
                        help="thinking steps per heat map image")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f"{args.input}: no such file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except TraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
