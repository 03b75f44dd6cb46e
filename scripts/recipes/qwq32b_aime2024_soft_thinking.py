#!/usr/bin/env python
"""QwQ-32B on AIME 2024 with Soft Thinking, the paper's settings, on 8 GPUs.

    .venv/bin/python scripts/recipes/qwq32b_aime2024_soft_thinking.py --model-path models/QwQ-32B
    # with the paper's LLM judge for answers math-verify rejects:
    .venv/bin/python scripts/recipes/qwq32b_aime2024_soft_thinking.py --model-path models/QwQ-32B \\
        --judge-base-url https://api.openai.com/v1 --judge-model gpt-4.1-2025-04-14

The settings are those of the Soft Thinking reference implementation's QwQ-32B script:
tensor parallel over 8 GPUs, 80% of GPU memory for weights and KV cache; one sample per
problem, up to 32768 tokens; thinking at temperature 0.6, top-p 0.95, top-k 30, concept
tokens of the 10 most likely tokens above min-p 0.001; Cold Stop after 256 steps of
entropy below 0.01; the answer sampled at temperature 0.6, top-p 0.95, top-k 30.
Compare with ``qwq32b_aime2024_baseline.py``.
"""

import json
import sys

from benchmarks.recipe import Recipe, main

SOFT_THINKING = {
    "max_topk": 10, "min_p": 0.001, "think_end_str": "</think>",
    "early_stopping_entropy_threshold": 0.01, "early_stopping_length_threshold": 256,
    "after_thinking": {"temperature": 0.6, "top_p": 0.95, "top_k": 30, "min_p": 0.0},
}
RECIPE = Recipe(
    name="qwq32b_aime2024_soft_thinking",
    description=__doc__.split("\n\n")[0],
    model_hint="Qwen/QwQ-32B, e.g. huggingface-cli download Qwen/QwQ-32B --local-dir models/QwQ-32B",
    server_args=("--tp-size", "8", "--mem-fraction-static", "0.8", "--log-level", "warning"),
    harness_args=("--dataset", "aime2024", "--num-samples", "1", "--max-tokens", "32768",
                  "--temperature", "0.6", "--top-p", "0.95", "--top-k", "30",
                  "--soft-thinking", json.dumps(SOFT_THINKING, separators=(",", ":")),
                  "--concurrency", "64", "--timeout", "7200"),
)

if __name__ == "__main__":
    sys.exit(main(RECIPE))
