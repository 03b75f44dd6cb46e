#!/usr/bin/env python
"""QwQ-32B on AIME 2024 without Soft Thinking (the paper's baseline), on 8 GPUs.

    .venv/bin/python scripts/recipes/qwq32b_aime2024_baseline.py --model-path models/QwQ-32B
    # with the paper's LLM judge for answers math-verify rejects:
    .venv/bin/python scripts/recipes/qwq32b_aime2024_baseline.py --model-path models/QwQ-32B \\
        --judge-base-url https://api.openai.com/v1 --judge-model gpt-4.1-2025-04-14

The settings are those of the Soft Thinking reference implementation's QwQ-32B baseline
script: tensor parallel over 8 GPUs, 80% of GPU memory for weights and KV cache; 16
samples per problem (pass@1 is their mean; pass@k and the majority vote come with them),
up to 32768 tokens, temperature 0.6, top-p 0.95, top-k 30. Compare with
``qwq32b_aime2024_soft_thinking.py``:
``.venv/bin/python -m benchmarks.report runs/recipes/qwq32b_aime2024_*.jsonl``.
"""

import sys

from benchmarks.recipe import Recipe, main

RECIPE = Recipe(
    name="qwq32b_aime2024_baseline",
    description=__doc__.split("\n\n")[0],
    model_hint="Qwen/QwQ-32B, e.g. huggingface-cli download Qwen/QwQ-32B --local-dir models/QwQ-32B",
    server_args=("--tp-size", "8", "--mem-fraction-static", "0.8", "--log-level", "warning"),
    harness_args=("--dataset", "aime2024", "--num-samples", "16", "--max-tokens", "32768",
                  "--temperature", "0.6", "--top-p", "0.95", "--top-k", "30",
                  "--concurrency", "128", "--timeout", "7200"),
)

if __name__ == "__main__":
    sys.exit(main(RECIPE))
