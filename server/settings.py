"""The server's settings: one pydantic model, from which our command-line flags are generated.

Every default of ours lives here, once. Beside our flags the command line takes every
SGLang server option (:mod:`server.sglang_options`); those the user gives travel in
``engine_options`` to the engine. ``python -m server --help`` lists both.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sglang_soft_thinking.agreement import INTERVAL_ENV as TP_CHECK_INTERVAL_ENV

from server.models import default_model_dir
from server.sglang_options import add_sglang_options, given_options, merge_config_file

# Fields that are not flags of their own.
NOT_FLAGS = {"engine_options"}


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_path: Path | None = Field(
        None, description="a local Hugging Face model folder "
                          "(default: the provisioned SmolLM2-135M-Instruct)",
        json_schema_extra={"aliases": ["--model"]})
    served_model_name: str | None = Field(
        None, description="the model name clients use (default: the model folder's name)")
    host: str = Field("127.0.0.1", description="address to bind")
    port: int = Field(30000, ge=1, le=65535, description="port to bind")
    api_key: str | None = Field(
        None, description="require 'Authorization: Bearer KEY' on every route but /health")
    max_request_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="largest request body accepted, in bytes "
                                              "(a larger one is refused with 413)")
    shutdown_timeout: float = Field(
        10.0, ge=0, description="seconds in-flight requests may run on after SIGTERM or "
                                "Ctrl-C before they are aborted")
    max_total_tokens: int | None = Field(
        None, ge=1, description="KV-cache budget in tokens (default: SGLang sizes it from memory)")
    max_running_requests: int | None = Field(
        None, ge=1, description="most requests decoded at once (default: SGLang's choice)")
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto", description="weights and activations (auto: SGLang's choice, float16 for a float32 checkpoint)")
    max_topk_limit: int | None = Field(
        None, ge=1, description="largest soft_thinking.max_topk a request may ask for (default 32)")
    rank_check_interval: int | None = Field(
        None, ge=0, description="under tensor parallelism, compare the ranks' soft-thinking inputs "
                                "every N steps and abort a request whose ranks differ (0: never; "
                                "default 64: under half a percent of a decode step, measured)")
    soft_thinking: Path | None = Field(
        None, description="default soft-thinking parameters, a JSON/YAML file (e.g. the "
                          "recommended_soft_thinking.json of benchmarks.tune), for requests "
                          "that send none; a request opts out with soft_thinking.enabled false")
    think_markers: tuple[str, str] | None = Field(
        None, description="the markers the model thinks between, e.g. '<think>' '</think>' "
                          "(default: <think> </think> when each is one token of the vocabulary "
                          "or the chat template writes both, else none)",
        json_schema_extra={"metavar": ("START", "END")})
    softcot_assistant: Path | None = Field(
        None, description="SoftCoT: the assistant model folder (with --softcot-projection)")
    softcot_projection: Path | None = Field(
        None, description="SoftCoT: a checkpoint folder written by softcot_plugin.train")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="log level of the server and the engine")
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="the SGLang server options given on the command "
                                          "line, by ServerArgs field name")

    @field_validator("think_markers")
    @classmethod
    def _markers_differ(cls, markers: tuple[str, str] | None) -> tuple[str, str] | None:
        if markers is not None and (not all(markers) or markers[0] == markers[1]):
            raise ValueError("give two different, non-empty markers: START END")
        return markers

    def resolved_model_path(self) -> Path:
        path = self.model_path if self.model_path is not None else default_model_dir()
        return path.expanduser().resolve()

    def model_name(self) -> str:
        return self.served_model_name or self.resolved_model_path().name

    def export_environment(self) -> None:
        """Settings the soft-thinking parameters read from the environment, here and in the
        engine's scheduler processes, which inherit it."""
        if self.max_topk_limit is not None:
            os.environ["SOFTTHINK_MAX_TOPK"] = str(self.max_topk_limit)
        if self.rank_check_interval is not None:
            os.environ[TP_CHECK_INTERVAL_ENV] = str(self.rank_check_interval)


def _flag_type(annotation) -> tuple[type, tuple | None, int | None]:
    """The argparse type, choices and number of values of a field annotation such as
    ``int | None`` or ``tuple[str, str] | None``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is Literal:
        return str, typing.get_args(annotation), None
    if typing.get_origin(annotation) is tuple:
        items = typing.get_args(annotation)
        return items[0], None, len(items)
    return annotation, None, None


def build_parser() -> tuple[argparse.ArgumentParser, set[str]]:
    """Our flags, then SGLang's options; returns the parser and the SGLang destinations."""
    # Unambiguous prefixes are accepted, as by sglang.launch_server (--tp 2 for --tp-size 2).
    parser = argparse.ArgumentParser(
        prog="python -m server", usage="%(prog)s [server options] [SGLang engine options]",
        description="OpenAI-compatible soft-thinking server on an in-process SGLang engine.")
    own = parser.add_argument_group("server options")
    own_flags = {"-h", "--help"}
    for name, field in ServerSettings.model_fields.items():
        if name in NOT_FLAGS:
            continue
        flag_type, choices, nargs = _flag_type(field.annotation)
        default = field.default
        help_text = field.description or ""
        if default is not None:
            help_text += f" (default: {default})"
        extra = field.json_schema_extra or {}
        flags = [f"--{name.replace('_', '-')}", *extra.get("aliases", [])]
        own.add_argument(*flags, dest=name, type=flag_type, choices=choices, nargs=nargs,
                         metavar=extra.get("metavar"), default=argparse.SUPPRESS,
                         help=help_text)
        own_flags.update(flags)
    own_dests = set(ServerSettings.model_fields) - NOT_FLAGS
    return parser, add_sglang_options(parser, own_flags, own_dests)


def parse_settings(argv: list[str] | None = None) -> ServerSettings:
    """Flags the user gave override the model's defaults; validation happens in the model.

    SGLang's options are checked by SGLang's own argument types and choices here, and by
    ``ServerArgs`` itself when the engine starts."""
    parser, sglang_dests = build_parser()
    argv = merge_config_file(parser, list(sys.argv[1:] if argv is None else argv))
    namespace = parser.parse_args(argv)
    engine_options = given_options(namespace, sglang_dests)
    ours = {name: value for name, value in vars(namespace).items() if name not in sglang_dests}
    return ServerSettings(**ours, engine_options=engine_options)
