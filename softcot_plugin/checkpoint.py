"""The SoftCoT checkpoint: ``projection.safetensors`` (float32 weights) and ``softcot.json``.

``softcot.json`` holds everything needed to use the projection: the two models'
identities and sizes, N, the prompt templates and the marker tokens with their ids in
each tokenizer. :func:`check_fits` refuses a checkpoint that does not fit the models at
hand, with a message saying what differs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from softcot_plugin.projection import SoftCoTProjection
from softcot_plugin.templates import PromptTemplates, single_token_id

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "projection.safetensors"
CONFIG_FILE = "softcot.json"
FORMAT = "softcot-projection/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, malformed or does not fit the models; the message says which."""


@dataclass(frozen=True)
class ModelIdentity:
    """What the checkpoint knows of a model: where it came from and the sizes that matter."""

    name_or_path: str
    model_type: str
    hidden_size: int
    vocab_size: int

    @classmethod
    def of(cls, name_or_path: str, hf_config) -> "ModelIdentity":
        return cls(str(name_or_path), hf_config.model_type, hf_config.hidden_size,
                   hf_config.vocab_size)


@dataclass(frozen=True)
class SoftCoTConfig:
    assistant: ModelIdentity
    base: ModelIdentity
    templates: PromptTemplates
    marker_family: str
    marker_ids: dict[str, dict[str, int]]   # {"assistant"|"base": {"placeholder": id, ...}}
    training: dict = field(default_factory=dict)

    @property
    def num_thought_tokens(self) -> int:
        return self.templates.num_thought_tokens

    def to_json(self) -> dict:
        return {"format": FORMAT, "assistant": asdict(self.assistant), "base": asdict(self.base),
                "num_thought_tokens": self.num_thought_tokens,
                "templates": self.templates.to_dict(), "marker_family": self.marker_family,
                "marker_ids": self.marker_ids, "training": self.training}

    @classmethod
    def from_json(cls, data: dict) -> "SoftCoTConfig":
        if data.get("format") != FORMAT:
            raise CheckpointError(f"not a SoftCoT checkpoint (format {data.get('format')!r}, "
                                  f"expected {FORMAT!r})")
        return cls(ModelIdentity(**data["assistant"]), ModelIdentity(**data["base"]),
                   PromptTemplates.from_dict(data["templates"]), data["marker_family"],
                   data["marker_ids"], data.get("training", {}))


def marker_ids_of(tokenizer, templates: PromptTemplates) -> dict[str, int]:
    """Each marker's single-token id in ``tokenizer`` (-1 where it is not one token)."""
    found = {name: single_token_id(tokenizer, text) for name, text in asdict(templates.markers).items()}
    return {name: -1 if token is None else token for name, token in found.items()}


def save_checkpoint(directory: Path, projection: SoftCoTProjection, config: SoftCoTConfig) -> None:
    """Write both files; the JSON last, so a directory with a JSON has its weights."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().to("cpu", torch.float32).contiguous()
               for name, tensor in projection.linear.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(json.dumps(config.to_json(), indent=2) + "\n")


def load_checkpoint(directory: Path) -> tuple[SoftCoTConfig, SoftCoTProjection]:
    """Read a checkpoint; the weights' shapes must match the sizes its JSON declares."""
    directory = Path(directory)
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{directory}: not a SoftCoT checkpoint (needs {CONFIG_FILE} "
                              f"and {WEIGHTS_FILE})")
    try:
        config = SoftCoTConfig.from_json(json.loads((directory / CONFIG_FILE).read_text()))
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: malformed ({error})") from None
    tensors = load_file(str(directory / WEIGHTS_FILE))
    expected = {"weight": (config.base.hidden_size, config.assistant.hidden_size),
                "bias": (config.base.hidden_size,)}
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if shapes != expected:
        raise CheckpointError(f"{directory / WEIGHTS_FILE}: tensors {shapes} do not match "
                              f"the declared sizes {expected}")
    projection = SoftCoTProjection(config.assistant.hidden_size, config.base.hidden_size)
    projection.linear.load_state_dict(tensors)
    return config, projection


def check_fits(config: SoftCoTConfig, role: str, hf_config, tokenizer) -> None:
    """Refuse ``config`` for a model (``role`` "assistant" or "base") whose sizes or markers differ."""
    declared: ModelIdentity = getattr(config, role)
    if hf_config.hidden_size != declared.hidden_size:
        raise CheckpointError(
            f"the SoftCoT checkpoint was trained for a {role} model with hidden size "
            f"{declared.hidden_size} ({declared.name_or_path}); this {role} model has "
            f"{hf_config.hidden_size}")
    ids = marker_ids_of(tokenizer, config.templates)
    if ids != config.marker_ids[role]:
        raise CheckpointError(
            f"the {role} model's tokenizer gives the SoftCoT marker tokens ids {ids}; the "
            f"checkpoint expects {config.marker_ids[role]} ({declared.name_or_path})")
    if hf_config.model_type != declared.model_type or hf_config.vocab_size != declared.vocab_size:
        logger.warning("SoftCoT checkpoint's %s was %s (%s, vocab %d); using a %s (vocab %d)",
                       role, declared.name_or_path, declared.model_type, declared.vocab_size,
                       hf_config.model_type, hf_config.vocab_size)
