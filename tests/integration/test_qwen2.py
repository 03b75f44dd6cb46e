"""Soft Thinking on the Qwen2 architecture, with a tiny random-weight Qwen2 model.

The model is built here from a config (two layers, the default model's tokenizer and
vocabulary). Served in float32, its trace must match the transformers reference within the
same tolerances as the default (Llama) model's. A random model is far more sensitive than
a trained one to the order of floating-point sums (measured: the traces part by 0.012 in a
weight at step 11), so the comparison covers the first 8 steps, enough to exercise the
concept-token input through Qwen2's embedding at every one of them.
"""

from __future__ import annotations

import shutil
import sys

import openai
import pytest
import torch

from server_process import free_port, model_path, start_process
from tests.integration.test_soft_thinking import compare_traces
from tests.reference.soft_thinking_reference import load_reference_model, run_reference_soft_thinking

PROMPT = "The quick brown fox"
NUM_STEPS = 8


@pytest.fixture(scope="module")
def qwen2_path(tmp_path_factory):
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    path = tmp_path_factory.mktemp("tiny-qwen2")
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, initializer_range=0.2,
                         tie_word_embeddings=False, architectures=["Qwen2ForCausalLM"],
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def qwen2_server(qwen2_path):
    port = free_port()
    args = [sys.executable, "-m", "server", "--port", str(port), "--model-path", str(qwen2_path),
            "--max-total-tokens", "4096", "--dtype", "float32"]
    proc = start_process(args, port, "qwen2")
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.stop()


def test_qwen2_trace_matches_the_reference(qwen2_server, qwen2_path):
    client = openai.OpenAI(base_url=qwen2_server.base_url, api_key="none", max_retries=0, timeout=300)
    model = client.models.list().data[0].id
    response = client.completions.create(
        model=model, prompt=PROMPT, temperature=0.8, max_tokens=16,
        extra_body={"ignore_eos": True, "soft_thinking": {
            "max_topk": 5, "early_stopping_entropy_threshold": 0, "max_thinking_tokens": NUM_STEPS,
            "return_trace": True}})
    trace = response.model_dump()["choices"][0]["soft_thinking"]["trace"]
    reference, tokenizer = load_reference_model(qwen2_path)
    ref = run_reference_soft_thinking(
        reference, tokenizer, tokenizer(PROMPT)["input_ids"], num_steps=NUM_STEPS, temperature=0.8,
        max_topk=5, min_p=0.001, entropy_threshold=0.0, eos_ids=())
    assert len(trace) == len(ref.steps) == NUM_STEPS
    assert any(len(step["ids"]) > 1 for step in trace), "the concept tokens are real mixtures"
    compare_traces(trace, ref.steps)
