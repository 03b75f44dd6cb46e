"""What a benchmark run sends with every request, validated before anything is sent.

``--soft-thinking`` takes the DESIGN §5 object (or the reference fork's flat names) as
inline JSON or as a JSON/YAML file, such as the recommended configuration written by
``benchmarks.tune``; it is checked with the same pydantic model the server uses.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from sglang_soft_thinking.params import SoftThinkingParams, parse_enabled

from evaluation.judge import JudgeSettings


# Repeat r of a run sends sample i with seed ``seed + r * REPEAT_SEED_STRIDE + i``; repeat 0
# keeps ``seed + i``, the seeds of a run made before repeats existed.
REPEAT_SEED_STRIDE = 100_000


class SettingsError(ValueError):
    """An invalid option; the message names it."""


@dataclass(frozen=True)
class RunSettings:
    model: str
    max_tokens: int
    temperature: float
    top_p: float | None
    top_k: int | None
    min_p: float | None
    seed: int | None
    num_samples: int
    soft_thinking: SoftThinkingParams | None = None
    softcot: dict | None = None
    num_repeats: int = 1

    def request_json(self) -> dict:
        """The settings as recorded in each line; a resumed run must match them.

        ``num_samples`` and ``num_repeats`` are left out: asking for more later extends a run.
        """
        return {"model": self.model, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "min_p": self.min_p, "seed": self.seed,
                "soft_thinking": (None if self.soft_thinking is None
                                  else self.soft_thinking.model_dump(mode="json")),
                "softcot": self.softcot}

    def sample_seed(self, sample_index: int, repeat: int = 0) -> int | None:
        """The seed sent with one sample of one repeat; None without ``--seed``."""
        if self.seed is None:
            return None
        return self.seed + repeat * REPEAT_SEED_STRIDE + sample_index

    def request_body(self, prompt: str, sample_index: int, repeat: int = 0) -> dict:
        """Keyword arguments for ``chat.completions.create`` (without ``stream``)."""
        body: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens,
                                "temperature": self.temperature,
                                "messages": [{"role": "user", "content": prompt}]}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.seed is not None:
            body["seed"] = self.sample_seed(sample_index, repeat)
        extra = {"top_k": self.top_k, "min_p": self.min_p, "softcot": self.softcot,
                 "soft_thinking": (None if self.soft_thinking is None
                                   else self.soft_thinking.model_dump(mode="json",
                                                                      exclude_none=True))}
        extra = {key: value for key, value in extra.items() if value is not None}
        if extra:
            body["extra_body"] = extra
        return body

    def with_soft_thinking(self, soft: SoftThinkingParams | None) -> "RunSettings":
        return replace(self, soft_thinking=soft)


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling")
    group.add_argument("--num-samples", type=int, default=1, help="samples per problem")
    group.add_argument("--repeats", type=int, default=1,
                       help="run the whole configuration this many times, each repeat with its "
                            f"own seeds (repeat r, sample i: seed + {REPEAT_SEED_STRIDE}*r + i); "
                            "needs --seed")
    group.add_argument("--max-tokens", type=int, default=1024)
    group.add_argument("--temperature", type=float, default=0.6,
                       help="the (thinking) temperature; soft thinking needs > 0")
    group.add_argument("--top-p", type=float, default=0.95)
    group.add_argument("--top-k", type=int)
    group.add_argument("--min-p", type=float)
    group.add_argument("--seed", type=int,
                       help="base seed; sample i is sent with seed + i")
    group.add_argument("--soft-thinking", metavar="JSON|FILE",
                       help="soft-thinking parameters (inline JSON or a JSON/YAML file)")
    group.add_argument("--softcot", metavar="JSON",
                       help='SoftCoT parameters, e.g. \'{"enabled": true, "num_thought_tokens": 4}\'')


def add_judge_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "LLM judge (off unless --judge-base-url and --judge-model are given)",
        "Math samples math-verify rejects are shown to a chat model, which says whether the\n"
        "final answer equals the reference; its verdict is recorded beside math-verify's, and\n"
        "a sample it accepts counts as correct. A judge that fails leaves math-verify's verdict.")
    group.add_argument("--judge-base-url", type=api_base_url,
                       help="the judge's OpenAI-compatible API, e.g. https://api.openai.com/v1")
    group.add_argument("--judge-model", help="the judge model's name, e.g. gpt-4.1")
    group.add_argument("--judge-api-key", help="the judge's API key (default: $OPENAI_API_KEY)")
    group.add_argument("--judge-timeout", type=float, default=60.0,
                       help="seconds per judge request (default 60)")
    group.add_argument("--judge-max-tokens", type=int, default=1024,
                       help="most tokens of the judge's reply (default 1024)")
    group.add_argument("--judge-extra-body", metavar="JSON|FILE",
                       help="extra fields of every judge request, e.g. "
                            '\'{"chat_template_kwargs": {"enable_thinking": false}}\'')


def judge_from_args(args: argparse.Namespace) -> JudgeSettings | None:
    """The judge's settings, or None when no judge was asked for."""
    if args.judge_base_url is None and args.judge_model is None:
        for option in ("judge_api_key", "judge_extra_body"):
            if getattr(args, option) is not None:
                raise SettingsError(f"--{option.replace('_', '-')} needs --judge-base-url "
                                    "and --judge-model")
        return None
    if args.judge_base_url is None or args.judge_model is None:
        raise SettingsError("the judge needs both --judge-base-url and --judge-model")
    if not args.judge_timeout > 0:
        raise SettingsError("--judge-timeout must be > 0")
    if args.judge_max_tokens < 1:
        raise SettingsError("--judge-max-tokens must be at least 1")
    extra = {}
    if args.judge_extra_body is not None:
        extra = load_json_or_file(args.judge_extra_body, "--judge-extra-body")
        if not isinstance(extra, dict):
            raise SettingsError("--judge-extra-body: expected a JSON object")
    api_key = args.judge_api_key or os.environ.get("OPENAI_API_KEY") or "none"
    return JudgeSettings(args.judge_base_url, args.judge_model, api_key,
                         timeout_s=args.judge_timeout, max_tokens=args.judge_max_tokens,
                         extra_body=extra)


def load_json_or_file(value: str, option: str) -> Any:
    """Inline JSON, or the path of a JSON/YAML file."""
    text = value
    if not value.lstrip().startswith(("{", "[")):
        path = Path(value)
        if not path.is_file():
            raise SettingsError(f"{option}: {value!r} is neither JSON nor an existing file")
        text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"{option}: not valid JSON/YAML ({error})") from None


def parse_soft_thinking(value: Any, option: str = "--soft-thinking") -> SoftThinkingParams | None:
    """Validated parameters; ``None`` when soft thinking is switched off."""
    try:
        return parse_enabled(value)
    except ValueError as error:
        raise SettingsError(f"{option}: {error}") from None


def settings_from_args(args: argparse.Namespace, model: str) -> RunSettings:
    checks = [("--num-samples", args.num_samples >= 1, "at least 1"),
              ("--repeats", args.repeats >= 1, "at least 1"),
              ("--max-tokens", args.max_tokens >= 1, "at least 1"),
              ("--temperature", args.temperature >= 0, "0 or more"),
              ("--top-p", args.top_p is None or 0 < args.top_p <= 1, "in (0, 1]"),
              ("--min-p", args.min_p is None or 0 <= args.min_p <= 1, "in [0, 1]")]
    for option, is_valid, rule in checks:
        if not is_valid:
            raise SettingsError(f"{option} must be {rule}")
    if args.repeats > 1 and args.seed is None:
        raise SettingsError("--repeats needs --seed: each repeat sends its samples with seeds "
                            "derived from it, so the repeats draw differently and each can be "
                            "rerun")
    if args.repeats > 1 and args.num_samples >= REPEAT_SEED_STRIDE:
        raise SettingsError(f"--num-samples must be below {REPEAT_SEED_STRIDE} with --repeats, "
                            "or two repeats would share seeds")
    soft = None
    if args.soft_thinking is not None:
        soft = parse_soft_thinking(load_json_or_file(args.soft_thinking, "--soft-thinking"))
        if soft is not None and args.temperature == 0:
            raise SettingsError("--temperature must be > 0 with soft thinking "
                                "(set soft_thinking.after_thinking.temperature 0 for a greedy answer)")
    softcot = None
    if args.softcot is not None:
        softcot = load_json_or_file(args.softcot, "--softcot")
        if not isinstance(softcot, dict):
            raise SettingsError("--softcot: expected a JSON object")
    return RunSettings(model=model, max_tokens=args.max_tokens, temperature=args.temperature,
                       top_p=args.top_p, top_k=args.top_k, min_p=args.min_p, seed=args.seed,
                       num_samples=args.num_samples, soft_thinking=soft, softcot=softcot,
                       num_repeats=args.repeats)


def api_base_url(value: str) -> str:
    """``--base-url``: the server's OpenAI API root. SGLang's own tools take the server's
    root (``http://host:port``); the OpenAI client needs ``.../v1``, so it is added when
    the URL does not end with it."""
    url = value.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) URL, e.g. http://127.0.0.1:30000/v1")
    return url if url.endswith("/v1") else url + "/v1"
