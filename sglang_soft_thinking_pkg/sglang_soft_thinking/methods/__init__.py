"""The thinking methods, by name: each is one module (see base.py for the interface).

A method's id is its place in :data:`REGISTRY`; the table stores it per row and the plan
groups rows by it. Adding a method is its module and one line here.
"""

from __future__ import annotations

import importlib

from sglang_soft_thinking.methods.base import Method


def _method(module: str) -> Method:
    return importlib.import_module(f"{__name__}.{module}").METHOD


REGISTRY: tuple[Method, ...] = (
    _method("concept"),
    _method("mixture_of_inputs"),
    _method("switch"),
    _method("think_router"),
    _method("multiplex"),
    _method("discrete"),
    _method("selar"),
    _method("latent"),
)

NAMES: tuple[str, ...] = tuple(method.name for method in REGISTRY)
BY_NAME: dict[str, Method] = {method.name: method for method in REGISTRY}


def method_id(name: str) -> int:
    return NAMES.index(name)


def method_of(method_id: int) -> Method:
    return REGISTRY[method_id]
