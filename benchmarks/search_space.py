"""The tuning search space: soft-thinking parameters and the values to try.

A space is a mapping ``name → list of values`` (JSON or YAML). Names are the fields of
:class:`SoftThinkingParams`, nested ones dotted (``after_thinking.temperature``), or the
reference fork's flat names (``after_thinking_temperature``, ``dirichlet_alpha``...).
``noise`` takes ``null`` or noise objects. The whole space is checked before any request:
an unknown name, an empty list, or a value the model rejects is a :class:`SpaceError`.
Combinations the model rejects as a whole (``noise`` with ``method: mixture_of_inputs``)
are left out of the trials, so one space can search across methods.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sglang_soft_thinking.params import FLAT_NAMES, SoftThinkingParams, describe_validation_error

from benchmarks.settings import SettingsError, load_json_or_file

DEFAULT_SPACE: dict[str, list] = {
    "max_topk": [5, 10, 15, 20],
    "min_p": [0.001, 0.005, 0.01],
    "early_stopping_entropy_threshold": [0.01, 0.05, 0.1],
    "early_stopping_length_threshold": [128, 256, 512],
    "noise": [None, {"type": "gumbel", "temperature": 0.5}],
}


class SpaceError(ValueError):
    """An invalid search space; the message names the parameter."""


@dataclass(frozen=True)
class Trial:
    """One configuration: the values chosen from the space and the full parameters."""

    choice: dict[str, Any]
    params: SoftThinkingParams

    @property
    def trial_id(self) -> str:
        """Stable across runs, so a restarted search finds the trial's folder again."""
        canonical = json.dumps(self.params.model_dump(mode="json"), sort_keys=True)
        return "soft-" + hashlib.sha1(canonical.encode()).hexdigest()[:10]

    def label(self) -> str:
        return ", ".join(f"{name}={_short(value)}" for name, value in self.choice.items())


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(str(v) for v in value.values())
    return str(value)


def _field_names() -> set[str]:
    names = set(SoftThinkingParams.model_fields) - {"enabled", "return_trace"}
    after = SoftThinkingParams.model_fields["after_thinking"].annotation
    names |= {f"after_thinking.{field}" for field in after.model_fields}
    return names


def _apply(base: dict, name: str, value: Any) -> dict:
    """``base`` (nested form) with one parameter set; flat names are mapped to nested ones."""
    result = json.loads(json.dumps(base))
    if name.startswith("after_thinking_"):
        name = "after_thinking." + name.removeprefix("after_thinking_")
    if name == "dirichlet_alpha":
        name, value = "noise", {"type": "dirichlet", "alpha": value}
    if name == "gumbel_softmax_temperature":
        name, value = "noise", {"type": "gumbel", "temperature": value}
    if "." in name:
        outer, inner = name.split(".", 1)
        result.setdefault(outer, {})[inner] = value
    else:
        result[name] = value
    return result


def load_space(value: str | None) -> dict[str, list]:
    """The space from inline JSON or a JSON/YAML file; the default space when None."""
    if value is None:
        return dict(DEFAULT_SPACE)
    try:
        space = load_json_or_file(value, "--space")
    except SettingsError as error:
        raise SpaceError(str(error)) from None
    if not isinstance(space, dict) or not space:
        raise SpaceError("--space: expected a non-empty mapping of parameter name to a list of values")
    return space


def validate_space(space: dict[str, list], base: SoftThinkingParams) -> None:
    """Every name known, every list non-empty, every value accepted on top of ``base``."""
    known = _field_names() | (set(FLAT_NAMES) - {"enable_soft_thinking", "return_trace",
                                                  "add_noise_gumbel_softmax",
                                                  "add_noise_dirichlet", "dirichlet_temperature"})
    base_json = base.model_dump(mode="json")
    for name, values in space.items():
        if name not in known:
            raise SpaceError(f"space: unknown parameter {name!r}; known: {', '.join(sorted(known))}")
        if not isinstance(values, list) or not values:
            raise SpaceError(f"space: {name} needs a non-empty list of values")
        for value in values:
            _params(_apply(base_json, name, value), name)


def _params(nested: dict, name: str) -> SoftThinkingParams:
    try:
        return SoftThinkingParams.model_validate(nested)
    except ValidationError as error:
        raise SpaceError(f"space: {name}: {describe_validation_error(error)}") from None


def expand(space: dict[str, list], base: SoftThinkingParams, strategy: str,
           num_trials: int | None, seed: int = 0) -> list[Trial]:
    """The trials to run: the whole grid in order, or ``num_trials`` distinct random points."""
    names = list(space)
    combos = list(itertools.product(*(space[name] for name in names)))
    if strategy == "random":
        rng = random.Random(seed)
        combos = rng.sample(combos, min(num_trials or len(combos), len(combos)))
    elif num_trials is not None:
        combos = combos[:num_trials]
    base_json = base.model_dump(mode="json")
    trials, seen, refused = [], set(), None
    for combo in combos:
        nested = base_json
        for name, value in zip(names, combo):
            nested = _apply(nested, name, value)
        try:
            params = _params(nested, "space")
        except SpaceError as error:
            # Each value passed on its own (validate_space); this combination does not
            # (noise with the mixture_of_inputs method, say): it is no configuration.
            refused = error
            continue
        trial = Trial(dict(zip(names, combo)), params)
        if trial.trial_id not in seen:  # two spellings of the same configuration run once
            seen.add(trial.trial_id)
            trials.append(trial)
    if not trials and refused is not None:
        raise refused
    return trials


def write_params_file(params: SoftThinkingParams, path: Path) -> None:
    """A file ``--soft-thinking FILE`` accepts (harness and server)."""
    path.write_text(json.dumps(params.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
