"""The soft-thinking request parameters (DESIGN §5): one validated model.

Shared by the OpenAI server (request body ``soft_thinking``), the SGLang plugin
(``sampling_params.custom_params["soft_thinking"]``) and the benchmark harness.
The reference fork's flat names are accepted through :meth:`SoftThinkingParams.from_flat`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from sglang_soft_thinking.limits import TopkWidth
from sglang_soft_thinking.methods import BY_NAME, NAMES, REGISTRY

CUSTOM_PARAMS_KEY = "soft_thinking"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GumbelNoise(_Strict):
    type: Literal["gumbel"]
    temperature: float = Field(0.5, gt=0)


class DirichletNoise(_Strict):
    type: Literal["dirichlet"]
    alpha: float = Field(1.0, gt=0)


Noise = Annotated[Union[GumbelNoise, DirichletNoise], Field(discriminator="type")]


class AfterThinking(_Strict):
    """Ordinary sampling once thinking has ended. temperature 0 is greedy."""

    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(30, ge=-1)
    min_p: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _top_k_not_zero(self):
        if self.top_k == 0:
            raise ValueError("top_k must be -1 (all tokens) or at least 1")
        return self


class _CoreParams(_Strict):
    """The fields every method shares; each method's own follow from its ``Params``."""

    enabled: bool = True
    method: Literal[NAMES] = "concept"
    max_topk: TopkWidth = Field(10, ge=1)
    min_p: float = Field(0.001, ge=0, le=1)
    early_stopping_entropy_threshold: float = Field(0.01, ge=0)
    early_stopping_length_threshold: int = Field(256, ge=1)
    think_end_str: str = Field("</think>", min_length=1)
    max_thinking_tokens: int | None = Field(None, ge=0)
    noise: Noise | None = None
    after_thinking: AfterThinking = AfterThinking()
    return_trace: bool = False


_METHOD_PARAMS = tuple(method.Params for method in REGISTRY if method.Params is not None)


class SoftThinkingParams(*reversed(_METHOD_PARAMS), _CoreParams):
    """The DESIGN §5 object: the core fields and every method's parameters side by side
    (methods/: a method's ``Params`` fields are request fields and flat names here, with no
    other list to edit). Adding a core parameter: a field here and a field of
    ``settings.RequestSettings``, filled in ``settings.resolve_settings``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("noise")
    @classmethod
    def _noise_needs_a_concept_token(cls, value, info: ValidationInfo):
        method = info.data.get("method", "concept")  # declared before noise, so checked first
        if value is not None and method in BY_NAME and not BY_NAME[method].accepts_noise:
            raise ValueError(f"noise applies to concept tokens, which {method} does not feed")
        return value

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> "SoftThinkingParams":
        """Build from the reference fork's flat names (see FLAT_NAMES)."""
        unknown = sorted(set(flat) - set(FLAT_NAMES))
        if unknown:
            raise ValueError(f"unknown soft-thinking parameter(s): {', '.join(unknown)}")
        nested: dict[str, Any] = {"enabled": bool(flat.get("enable_soft_thinking", True))}
        nested.update({name: flat[name] for name in _SCALAR_FIELDS if name in flat})
        after = {key: flat[f"after_thinking_{key}"]
                 for key in AfterThinking.model_fields if f"after_thinking_{key}" in flat}
        if after:
            nested["after_thinking"] = after
        if flat.get("add_noise_gumbel_softmax"):
            nested["noise"] = {"type": "gumbel",
                               "temperature": flat.get("gumbel_softmax_temperature", 0.5)}
        if flat.get("add_noise_dirichlet"):
            if "noise" in nested:
                raise ValueError("choose one of add_noise_gumbel_softmax and add_noise_dirichlet")
            alpha = flat.get("dirichlet_alpha", flat.get("dirichlet_temperature", 1.0))
            nested["noise"] = {"type": "dirichlet", "alpha": alpha}
        return cls.model_validate(nested)

    def to_flat(self) -> dict[str, Any]:
        """The reference fork's flat names: JSON scalars only, as SGLang's custom_params requires."""
        flat: dict[str, Any] = {"enable_soft_thinking": self.enabled}
        flat.update({name: getattr(self, name) for name in _SCALAR_FIELDS})
        for key, value in self.after_thinking.model_dump().items():
            flat[f"after_thinking_{key}"] = value
        if isinstance(self.noise, GumbelNoise):
            flat.update(add_noise_gumbel_softmax=True, gumbel_softmax_temperature=self.noise.temperature)
        elif isinstance(self.noise, DirichletNoise):
            flat.update(add_noise_dirichlet=True, dirichlet_alpha=self.noise.alpha)
        return flat

    def to_custom_params(self) -> dict[str, Any]:
        return {CUSTOM_PARAMS_KEY: self.to_flat()}

    @classmethod
    def parse(cls, value: Any) -> "SoftThinkingParams":
        """The nested DESIGN §5 object, or the same settings under the flat names."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict) and any(k in _FLAT_ONLY or k.startswith("after_thinking_") for k in value):
            return cls.from_flat(value)
        return cls.model_validate(value)

    @classmethod
    def from_custom_params(cls, custom_params: dict | None) -> "SoftThinkingParams | None":
        """Parameters carried in SGLang's ``custom_params``; None when soft thinking is off.

        Either under one key (``{"soft_thinking": {...}}``, nested or flat names) or
        flat at the top (``{"enable_soft_thinking": true, "max_topk": 10, ...}``).
        """
        if not custom_params:
            return None
        if CUSTOM_PARAMS_KEY in custom_params:
            params = cls.parse(custom_params[CUSTOM_PARAMS_KEY])
        else:
            flat = {k: v for k, v in custom_params.items() if k in FLAT_NAMES}
            if not flat.get("enable_soft_thinking"):
                return None
            params = cls.from_flat(flat)
        return params if params.enabled else None


# The fields whose flat name is their own: every field but the three below.
_SCALAR_FIELDS = tuple(name for name in SoftThinkingParams.model_fields
                       if name not in ("enabled", "noise", "after_thinking"))
_NOISE_FLAT_NAMES = ("add_noise_gumbel_softmax", "gumbel_softmax_temperature", "add_noise_dirichlet",
                     "dirichlet_alpha", "dirichlet_temperature")
FLAT_NAMES = ("enable_soft_thinking", *_SCALAR_FIELDS,
              *(f"after_thinking_{key}" for key in AfterThinking.model_fields), *_NOISE_FLAT_NAMES)
# Flat names that never appear in the nested form, so their presence tells the forms apart.
_FLAT_ONLY = {"enable_soft_thinking", *_NOISE_FLAT_NAMES}


def describe_validation_error(error: ValidationError, prefix: str = "soft_thinking") -> str:
    """One line per problem, each naming the full field path, for a 400 message."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        lines.append(f"{path}: {item['msg']}")
    return "; ".join(lines)


def parse_enabled(value: Any) -> SoftThinkingParams | None:
    """Parameters from a configuration file or flag (nested or flat names); ``None`` when
    they switch soft thinking off. Any problem is one ``ValueError`` naming the fields."""
    if not isinstance(value, dict):
        raise ValueError("expected one object of soft-thinking parameters")
    try:
        params = SoftThinkingParams.parse(value)
    except ValidationError as error:
        raise ValueError(describe_validation_error(error)) from None
    return params if params.enabled else None

# The thinking methods' names, in registry order (methods.REGISTRY).
METHODS = NAMES
