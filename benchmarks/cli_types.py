"""Option types shared by the benchmark commands. A value they refuse is a usage error:
argparse prints ``argument --name: why`` and exits with status 2, before a server starts or
a measurement runs, as for any other usage error."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def at_least(minimum: int) -> Callable[[str], int]:
    """An integer option of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


positive_int = at_least(1)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return path


def output_file(text: str) -> Path:
    """A file to write: refused when the path is a folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    return path


def max_topk(text: str) -> int:
    """``soft_thinking.max_topk``, checked by the parameters' own model (1 to the limit)."""
    from pydantic import ValidationError  # only commands with soft requests need the model
    from sglang_soft_thinking.params import SoftThinkingParams, describe_validation_error

    value = positive_int(text)
    try:
        SoftThinkingParams(max_topk=value)
    except ValidationError as error:
        raise argparse.ArgumentTypeError(describe_validation_error(error)) from None
    return value
