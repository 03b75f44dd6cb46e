"""Fixtures of the SoftCoT tests: the default model (as assistant and base) and a tiny data file."""

import json

import pytest
import torch

from benchmarks.word_problems import generate_problems
from server_process import model_path
from softcot_plugin.thoughts import load_frozen


@pytest.fixture(scope="session")
def default_model():
    return model_path()


@pytest.fixture(scope="session")
def frozen_pair(default_model):
    """(assistant, assistant tokenizer, base, base tokenizer): the default model twice, float32 CPU."""
    device = torch.device("cpu")
    assistant, assistant_tokenizer = load_frozen(default_model, hidden_only=True, device=device)
    base, base_tokenizer = load_frozen(default_model, hidden_only=False, device=device)
    return assistant, assistant_tokenizer, base, base_tokenizer


@pytest.fixture
def tiny_data(tmp_path):
    """One short generated problem in GSM8K format."""
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in generate_problems(1, seed=5)))
    return path
