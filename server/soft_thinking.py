"""Soft thinking in the API: read a request's parameters.

A request turns soft thinking on with the ``soft_thinking`` object (DESIGN §5) or with
the reference fork's flat names at the top level, ``enable_soft_thinking`` among them;
in the flat form a top-level ``min_p`` is the thinking ``min_p``. Flat names without
``enable_soft_thinking: true`` leave soft thinking off. A server started with
``--soft-thinking FILE`` applies that file's parameters to requests that name none, and
puts a request's own ``soft_thinking`` object on top of them.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError
from sglang_soft_thinking.params import (
    FLAT_NAMES,
    SoftThinkingParams,
    describe_validation_error,
    parse_enabled,
)

from server.errors import APIError, invalid_request
from server.protocol import SamplingFields


class DefaultsFileError(ValueError):
    """The server's --soft-thinking file cannot be used; the message says why."""


def load_defaults(path: Path | None) -> SoftThinkingParams | None:
    """The server's default parameters from a JSON/YAML file (nested or flat names)."""
    if path is None:
        return None
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DefaultsFileError(f"--soft-thinking: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise DefaultsFileError(f"--soft-thinking: {path} is not JSON/YAML ({error})") from None
    try:
        return parse_enabled(value)
    except ValueError as error:
        raise DefaultsFileError(f"--soft-thinking: {path}: {error}") from None


def parse_soft_thinking(request: SamplingFields,
                        default: SoftThinkingParams | None = None) -> SoftThinkingParams | None:
    """The request's soft-thinking parameters, or None when soft thinking is off.

    A request that names no soft-thinking parameter gets the server's ``default`` (from
    ``--soft-thinking FILE``). Raises a 400 naming the field for any invalid value.
    """
    flat = {k: v for k, v in (request.model_extra or {}).items() if k in FLAT_NAMES}
    if request.soft_thinking is None and "enable_soft_thinking" not in flat and default is not None:
        if request.temperature == 0:
            raise invalid_request(
                "temperature: must be > 0 with soft thinking, which this server applies by "
                "default (send \"soft_thinking\": {\"enabled\": false} for plain decoding)",
                "temperature")
        return default
    if request.soft_thinking is not None:
        if "enable_soft_thinking" in flat:
            raise invalid_request(
                "soft_thinking: give either the soft_thinking object or the flat names "
                "(enable_soft_thinking, ...), not both", "soft_thinking")
        given = request.soft_thinking
        if default is not None and isinstance(given, dict):
            given = _over_defaults(default, given)
        params = _validated(lambda: SoftThinkingParams.model_validate(given),
                            prefix="soft_thinking")
    elif flat.get("enable_soft_thinking"):
        if request.min_p is not None:
            flat["min_p"] = request.min_p
        params = _validated(lambda: SoftThinkingParams.from_flat(flat), prefix="")
    else:
        return None
    if not params.enabled:
        return None
    if request.temperature == 0:
        raise invalid_request("temperature: must be > 0 with soft thinking", "temperature")
    return params


def refuse_if_off(params: SoftThinkingParams | None, off_reason: str | None) -> None:
    """A soft-thinking request to an engine that runs without soft thinking is a 400 naming
    ``soft_thinking`` and why; it is never decoded plainly."""
    if params is not None and off_reason is not None:
        raise APIError(400, f"soft_thinking: this server's engine runs without soft thinking "
                            f"({off_reason}); send the request without soft_thinking for plain "
                            f"decoding", param="soft_thinking", code="soft_thinking_unavailable")


def check_defaults_servable(path: Path | None, defaults: SoftThinkingParams | None,
                            off_reason: str | None) -> None:
    """A server whose ``--soft-thinking FILE`` turns soft thinking on for every request
    cannot start on an engine without it: every request would be refused."""
    if defaults is not None and off_reason is not None:
        raise DefaultsFileError(
            f"--soft-thinking: {path} turns soft thinking on for every request, but the engine "
            f"runs without it ({off_reason}); start without --soft-thinking, or with the plugin")


def _over_defaults(default: SoftThinkingParams, given: dict) -> dict:
    """The request's object on top of the server's defaults; ``after_thinking`` merges
    field by field, everything else (``noise`` included) is replaced whole."""
    merged = default.model_dump(mode="json")
    for key, value in given.items():
        if key == "after_thinking" and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _validated(build, prefix: str) -> SoftThinkingParams:
    try:
        return build()
    except ValidationError as error:
        message = describe_validation_error(error, prefix=prefix)
        param = message.split(":", 1)[0] or None
        raise invalid_request(message, param) from None
    except ValueError as error:  # from_flat's own checks
        raise invalid_request(str(error)) from None


def custom_params(params: SoftThinkingParams) -> dict:
    """What goes into SGLang's ``sampling_params["custom_params"]`` (one level deep, as SGLang requires)."""
    return params.to_custom_params()

