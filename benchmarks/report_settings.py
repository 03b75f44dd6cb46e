"""How a report names a run's soft-thinking settings in its tables: only what the run
changed. A run's request records every parameter of every method (hundreds of characters);
the table shows, per run, the parameters of its own method (and the shared ones) whose
value differs from the default, nested ones dotted (``after_thinking.top_k=20``). The whole
settings stay in ``report.json``."""

from __future__ import annotations

import json

from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.params import SoftThinkingParams

# Fields the table never lists: ``method`` has its own row, ``enabled`` is implied.
_NOT_LISTED = {"enabled", "method"}


def _method_fields() -> dict[str, set[str]]:
    """Each method's own parameters (the fields of its ``Params``)."""
    return {method.name: set(method.Params.model_fields) if method.Params is not None else set()
            for method in REGISTRY}


def _flatten(value, prefix: str) -> dict[str, object]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``; other values as they are."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, object] = {}
    for key, inner in value.items():
        flat.update(_flatten(inner, f"{prefix}.{key}"))
    return flat


def changed_settings(settings: dict) -> dict[str, object]:
    """The parameters of ``settings`` (a recorded ``soft_thinking`` object) that belong to
    its method or to every method, and differ from the default, dotted for nested ones.
    A key the installed plugin does not know is listed whatever its value."""
    defaults = SoftThinkingParams().model_dump(mode="json")
    own = _method_fields()
    method = settings.get("method") or defaults["method"]
    others = set().union(*own.values()) - own.get(method, set())
    changed: dict[str, object] = {}
    for key, value in settings.items():
        if key in _NOT_LISTED or key in others:
            continue
        default = defaults.get(key)
        if isinstance(default, dict) and isinstance(value, dict):
            ours, theirs = _flatten(value, key), _flatten(default, key)
            changed.update({name: item for name, item in ours.items()
                            if name not in theirs or theirs[name] != item})
        elif key not in defaults or value != default:
            changed.update(_flatten(value, key))
    return changed


def distinct_settings(records: list[dict], field: str) -> list[dict]:
    """The distinct ``request[field]`` values of a run's records (none where it is off)."""
    distinct = {json.dumps(settings, sort_keys=True): settings
                for record in records
                if (settings := (record.get("request") or {}).get(field))}
    return list(distinct.values())


def as_assignments(settings: dict) -> str:
    """``name=value`` pairs separated by spaces, values as compact JSON."""
    return " ".join(f"{name}={json.dumps(value, separators=(',', ':'))}" for name, value in settings.items())


def describe_changes(records: list[dict], field: str = "soft_thinking") -> str:
    """One cell: "off", "defaults", the changed parameters as ``name=value`` separated by
    spaces, or "mixed (N settings)" when the run's requests differ."""
    distinct = distinct_settings(records, field)
    if not distinct:
        return "off"
    if len(distinct) > 1:
        return f"mixed ({len(distinct)} settings)"
    changed = changed_settings(distinct[0])
    return as_assignments(changed) if changed else "defaults"
