"""A soft-thinking request's settings resolved to numbers (host side), and the table
columns they fill. No SGLang import.

Every column is declared once: the core settings as :class:`RequestSettings` fields that
name their column's dtype, and each method's parameters by its ``Params`` model
(:func:`param_columns`, which refuses a field type it has no column for). A row's values
are written to the device table when its request is admitted (table.py).
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Union, get_args, get_origin

import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.methods import REGISTRY, Method, method_id

INT, FLOAT = torch.int64, torch.float32


@dataclass(frozen=True)
class Column:
    name: str
    dtype: torch.dtype  # INT or FLOAT
    default: int | float  # what a plain request's row holds (never read for it)


def _column(dtype: torch.dtype, default):
    return field(default=default, metadata={"column": dtype})


@dataclass
class RequestSettings:
    """One soft-thinking request's settings. Fields made with a column dtype are table
    columns; ``method_values`` holds the request's method's own parameters by column name."""

    prompt_len: int = _column(INT, 0)
    temperature: float = _column(FLOAT, 1.0)  # the thinking temperature (> 0)
    top_k: int = _column(INT, C.TOP_K_ALL)  # C.TOP_K_ALL for no limit
    top_p: float = _column(FLOAT, 1.0)
    min_p: float = _column(FLOAT, 0.0)
    max_topk: int = _column(INT, 1)
    entropy_threshold: float = _column(FLOAT, 0.0)
    length_threshold: int = _column(INT, 1)
    max_thinking_tokens: int = _column(INT, -1)  # -1: no budget
    method: int = _column(INT, 0)  # the method's id (methods.REGISTRY)
    noise_kind: int = _column(INT, C.NOISE_NONE)
    noise_param: float = _column(FLOAT, 1.0)
    after_temperature: float = _column(FLOAT, 0.0)
    after_top_k: int = _column(INT, 1)
    after_top_p: float = _column(FLOAT, 1.0)
    after_min_p: float = _column(FLOAT, 0.0)
    seed: int = _column(INT, 0)  # the request's seed, or one derived from its id (draws.seed_of)
    think_end_ids: tuple[int, ...] = ()
    return_trace: bool = False  # whether its records carry the trace to the server
    method_values: dict[str, int | float] = field(default_factory=dict)

    def __post_init__(self):
        self.think_end_ids = tuple(self.think_end_ids)
        own = {c.name: c for c in param_columns(self.method_object)}
        unknown = set(self.method_values) - set(own)
        if unknown:
            raise ValueError(f"not parameters of {self.method_object.name}: {sorted(unknown)}")
        self.method_values = {name: param_value(self.method_object, name, self.method_values[name])
                              if name in self.method_values else c.default for name, c in own.items()}

    def __getattr__(self, name: str):
        """A parameter of the request's method, by name (``settings.beta``)."""
        values = self.__dict__.get("method_values") or {}
        if name in values:
            return values[name]
        raise AttributeError(name)

    @property
    def method_object(self) -> Method:
        return REGISTRY[self.method]

    @property
    def input_width(self) -> int:
        """Columns of the input this request's method feeds."""
        return self.method_object.width(self)

    def value(self, name: str) -> int | float:
        """A core setting or one of the method's parameters, by column name."""
        return self.method_values[name] if name in self.method_values else getattr(self, name)

    def column_values(self) -> dict[str, int | float]:
        """Every settings column's value for this request's row (other methods' defaults)."""
        values = {c.name: c.default for c in SETTINGS_COLUMNS}
        values.update({c.name: getattr(self, c.name) for c in CORE_COLUMNS})
        values.update(self.method_values)
        return values

    @classmethod
    def build(cls, **values) -> "RequestSettings":
        """Settings from core fields and method parameters given side by side by name."""
        method = values.get("method", 0)
        core = {f.name for f in fields(cls)}
        own = {c.name for c in param_columns(REGISTRY[method])}
        unknown = set(values) - core - own
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in core},
                   method_values={k: v for k, v in values.items() if k in own})


CORE_COLUMNS = tuple(Column(f.name, f.metadata["column"], f.default)
                     for f in fields(RequestSettings) if "column" in f.metadata)


def param_columns(method: Method) -> tuple[Column, ...]:
    """A method's parameters as columns: ``int`` and ``bool`` fields as int64, ``int | None``
    as int64 with None stored as -1, ``float`` as float32, a ``Literal`` of strings as the
    int64 index of the value. Any other field type is a ``TypeError`` when the method is
    registered, not a column silently missing."""
    if method.Params is None:
        return ()
    return tuple(_param_column(method, name, info)
                 for name, info in method.Params.model_fields.items())


def _param_column(method: Method, name: str, info) -> Column:
    annotation = info.annotation
    args = get_args(annotation)
    optional = get_origin(annotation) in (Union, types.UnionType) and type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else annotation
    if base in (int, bool) or get_origin(base) is Literal:
        return Column(name, INT, param_value(method, name, info.default))
    if base is float and not optional:
        return Column(name, FLOAT, float(info.default))
    raise TypeError(f"{method.name}.{name}: a parameter of type {annotation} has no table column "
                    "(use int, bool, float, int | None or a Literal of strings)")


def param_value(method: Method, name: str, value: Any) -> int | float:
    """A method parameter's value as its column holds it."""
    info = method.Params.model_fields[name]
    args = get_args(info.annotation)
    literal = next((a for a in (info.annotation, *args) if get_origin(a) is Literal), None)
    if value is None:
        return -1
    if literal is not None:
        return value if isinstance(value, int) else get_args(literal).index(value)
    return float(value) if isinstance(value, float) and not isinstance(value, bool) else int(value)


def _all_columns() -> tuple[Column, ...]:
    columns = list(CORE_COLUMNS)
    seen = {c.name: "the core settings" for c in columns}
    for method in REGISTRY:
        for c in param_columns(method):
            if c.name in seen:
                raise TypeError(f"{method.name}.{c.name} clashes with a column of {seen[c.name]}")
            seen[c.name] = method.name
            columns.append(c)
    return tuple(columns)


SETTINGS_COLUMNS = _all_columns()


def method_values(method_name: str, params) -> dict[str, int | float]:
    """The columns of a request's method parameters, from its validated parameters."""
    method = REGISTRY[method_id(method_name)]
    return {c.name: param_value(method, c.name, getattr(params, c.name)) for c in param_columns(method)}


def resolve(params, *, prompt_len: int, temperature: float, top_k: int, top_p: float,
            think_end_ids: list[int], seed: int) -> RequestSettings:
    """A request's settings from its validated parameters (params.SoftThinkingParams) and
    its SGLang sampling parameters (the thinking temperature, top-k and top-p)."""
    noise_kind, noise_param = C.NOISE_NONE, 1.0
    if params.noise is not None and params.noise.type == "gumbel":
        noise_kind, noise_param = C.NOISE_GUMBEL, params.noise.temperature
    elif params.noise is not None:
        noise_kind, noise_param = C.NOISE_DIRICHLET, params.noise.alpha
    after = params.after_thinking
    return RequestSettings(
        prompt_len=prompt_len,
        temperature=temperature,
        top_k=min(top_k, C.TOP_K_ALL),
        top_p=top_p,
        min_p=params.min_p,
        max_topk=params.max_topk,
        entropy_threshold=params.early_stopping_entropy_threshold,
        length_threshold=params.early_stopping_length_threshold,
        max_thinking_tokens=-1 if params.max_thinking_tokens is None else params.max_thinking_tokens,
        method=method_id(params.method),
        noise_kind=noise_kind,
        noise_param=noise_param,
        after_temperature=after.temperature,
        after_top_k=C.TOP_K_ALL if after.top_k == -1 else after.top_k,
        after_top_p=after.top_p,
        after_min_p=after.min_p,
        seed=seed,
        think_end_ids=tuple(think_end_ids),
        return_trace=params.return_trace,
        method_values=method_values(params.method, params),
    )
