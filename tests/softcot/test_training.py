"""SoftCoT training on the default model (assistant = base): loss drops, checkpoints round-trip, --resume."""

import json

import pytest
import torch
from safetensors.torch import load_file

from benchmarks.word_problems import generate_problems
from softcot_plugin import train
from softcot_plugin.checkpoint import (CheckpointError, ModelIdentity, SoftCoTConfig, check_fits,
                                       load_checkpoint, marker_ids_of, save_checkpoint)
from softcot_plugin.data import Example, encode_example
from softcot_plugin.projection import SoftCoTProjection
from softcot_plugin.templates import PromptTemplates, choose_markers
from softcot_plugin.training import SoftCoTTrainer

N = 3


def make_config(frozen_pair, num_thoughts=N) -> SoftCoTConfig:
    assistant, assistant_tokenizer, base, base_tokenizer = frozen_pair
    family, markers = choose_markers(base_tokenizer)
    templates = PromptTemplates.for_task("math", markers, num_thoughts)
    return SoftCoTConfig(ModelIdentity.of("a", assistant.config), ModelIdentity.of("b", base.config),
                         templates, family, {"assistant": marker_ids_of(assistant_tokenizer, templates),
                                             "base": marker_ids_of(base_tokenizer, templates)})


def test_training_steps_lower_the_loss(frozen_pair):
    assistant, assistant_tokenizer, base, base_tokenizer = frozen_pair
    config = make_config(frozen_pair)
    batch = [encode_example(Example(**p), config.templates, assistant_tokenizer, base_tokenizer)
             for p in generate_problems(1, seed=9)]
    torch.manual_seed(0)
    projection = SoftCoTProjection(576, 576)
    trainer = SoftCoTTrainer(assistant, base, projection, assistant_pad_id=2, base_pad_id=2,
                             lr=3e-3, seed=0)
    before = trainer.evaluate(batch, batch_size=1)
    frozen_before = base.lm_head.weight.clone()
    for _ in range(3):
        trainer.step(batch)
    after = trainer.evaluate(batch, batch_size=1)
    assert after < before - 0.05, (before, after)
    assert torch.equal(base.lm_head.weight, frozen_before)   # the base model stays frozen


def test_checkpoint_round_trips_exactly(tmp_path, frozen_pair):
    config = make_config(frozen_pair)
    projection = SoftCoTProjection(576, 576)
    torch.nn.init.normal_(projection.linear.weight, std=0.3)
    save_checkpoint(tmp_path, projection, config)
    loaded_config, loaded = load_checkpoint(tmp_path)
    assert loaded_config == config
    assert torch.equal(loaded.linear.weight, projection.linear.weight)
    assert torch.equal(loaded.linear.bias, projection.linear.bias)
    assert loaded.linear.weight.dtype == torch.float32


def test_checkpoint_that_does_not_fit_is_refused(tmp_path, frozen_pair):
    assistant, assistant_tokenizer, base, base_tokenizer = frozen_pair
    config = make_config(frozen_pair)
    wrong = SoftCoTConfig(config.assistant, ModelIdentity("big", "llama", 1024, 49152),
                          config.templates, config.marker_family, config.marker_ids)
    with pytest.raises(CheckpointError, match="hidden size 1024"):
        check_fits(wrong, "base", base.config, base_tokenizer)
    check_fits(config, "base", base.config, base_tokenizer)   # the right one passes
    # Weights whose shape disagrees with the JSON are refused at load.
    save_checkpoint(tmp_path, SoftCoTProjection(576, 100), config)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path)


def run_cli(default_model, data, out, epochs, *extra):
    train.main(["--base", str(default_model), "--assistant", str(default_model), "--data", str(data),
                "--num-thought-tokens", str(N), "--epochs", str(epochs), "--lr", "1e-3",
                "--batch-size", "1", "--dev-fraction", "0", "--out", str(out), *extra])


def test_cli_resume_continues_where_it_stopped(tmp_path, default_model, tiny_data, capsys):
    run_cli(default_model, tiny_data, tmp_path / "straight", 2)
    run_cli(default_model, tiny_data, tmp_path / "resumed", 1)
    first_epoch = load_file(str(tmp_path / "resumed" / "projection.safetensors"))
    run_cli(default_model, tiny_data, tmp_path / "resumed", 2, "--resume")
    straight = load_file(str(tmp_path / "straight" / "projection.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "projection.safetensors"))
    assert not torch.equal(first_epoch["weight"], resumed["weight"])   # the resumed run trained
    for name in ("weight", "bias"):                                    # ... exactly as one run would
        assert torch.equal(straight[name], resumed[name])
    saved = json.loads((tmp_path / "resumed" / "softcot.json").read_text())
    assert saved["training"]["epochs_done"] == 2 and len(saved["training"]["history"]) == 2
    assert saved["num_thought_tokens"] == N and saved["templates"]["markers"]["placeholder"] == "<empty_output>"
    assert (tmp_path / "resumed" / "epoch-1" / "projection.safetensors").is_file()


def test_cli_refuses_bad_arguments(tmp_path, default_model, tiny_data, capsys):
    with pytest.raises(SystemExit):
        run_cli(default_model, tiny_data, tmp_path / "x", 0)
    assert "--epochs must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(default_model, tiny_data, tmp_path / "none", 1, "--resume")
    assert "--resume" in capsys.readouterr().err
