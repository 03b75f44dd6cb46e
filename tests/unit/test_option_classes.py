"""Every SGLang server option is classified for soft thinking (option_classes.py), and the
refusals of hooks/server_args.py catch the options as given and as SGLang resolved them."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from sglang.srt.server_args import ServerArgs

from sglang_soft_thinking import option_classes
from sglang_soft_thinking.hooks.server_args import REFUSED, refuse_resolved, refused_options

REPO_ROOT = Path(__file__).resolve().parents[2]


def server_args_fields() -> set[str]:
    return {field.name for field in msgspec.structs.fields(ServerArgs)}


def classified() -> list[str]:
    names = list(option_classes.REFUSED) + list(option_classes.VERIFIED)
    for group in option_classes.NO_EFFECT.values():
        names.extend(group)
    return names


def test_every_server_option_of_this_sglang_is_classified():
    fields = server_args_fields()
    assert len(fields) > 500  # SGLang 0.5.23 has 546
    missing = sorted(fields - set(classified()))
    assert not missing, f"classify these SGLang options in option_classes.py: {missing}"


def test_every_classified_name_is_an_option_of_this_sglang():
    gone = sorted(set(classified()) - server_args_fields())
    assert not gone, f"no longer SGLang options, remove them from option_classes.py: {gone}"


def test_each_option_is_in_exactly_one_class():
    twice = sorted(name for name, count in Counter(classified()).items() if count > 1)
    assert not twice, twice


def test_every_refused_option_points_at_a_refusal():
    assert set(option_classes.REFUSED.values()) <= set(REFUSED)
    # ... and every refusal refuses a classified field
    assert set(REFUSED) <= set(option_classes.REFUSED.values())


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


@pytest.mark.parametrize("field", sorted(option_classes.VERIFIED))
def test_every_verified_option_names_a_test_that_exists(field):
    path, _, function = option_classes.VERIFIED[field].partition("::")
    assert function.startswith("test_"), option_classes.VERIFIED[field]
    assert (REPO_ROOT / path).is_file(), path
    assert function in _test_functions(REPO_ROOT / path), option_classes.VERIFIED[field]


# field -> a value that switches the option on
NEW_REFUSALS = {
    "attn_dp_size": 2, "enable_attn_tp_input_scattered": True, "enable_layernorm_sp": True,
    "decoupled_spec_role": "verifier", "enable_strict_thinking": True, "enable_watermark": True,
    "radix_cache_backend": "mine", "enable_lmcache": True, "enable_flexkv": True,
    "enable_unified_cache_external_linker": True, "device": "xpu", "mlx_enable_sampling": True,
}


@pytest.mark.parametrize("field", sorted(NEW_REFUSALS))
def test_an_option_switched_on_is_refused_naming_it(field):
    assert refused_options(ServerArgs(model_path="x")) == []
    problems = refused_options(ServerArgs(model_path="x", **{field: NEW_REFUSALS[field]}))
    option = option_classes.REFUSED[field]
    assert [p.split(":")[0] for p in problems] == [option]


def test_a_sampler_a_plugin_registered_is_refused_and_sglangs_own_are_not():
    from sglang.srt.layers import sampler

    for backend in ("pytorch", "flashinfer", "ascend"):
        assert refused_options(ServerArgs(model_path="x", sampling_backend=backend)) == []
    sampler.register_sampler_backend("test-options-sampler", sampler.Sampler)
    try:
        problems = refused_options(ServerArgs(model_path="x", sampling_backend="test-options-sampler"))
    finally:
        sampler._CUSTOM_SAMPLER_FACTORIES.pop("test-options-sampler")
    assert [p.split(":")[0] for p in problems] == ["--sampling-backend"]


def test_data_parallel_attention_is_refused_as_sglang_resolves_it():
    """SGLang's resolution rewrites the deprecated ``--dp-size N --enable-dp-attention`` as
    ``--attn-dp-size N`` with the flag off, in its declarations beside the record's fields
    as given; the check after resolution reads the resolved values."""
    from sglang.srt.arg_groups.model_override_base import resolved_view
    from sglang.srt.arg_groups.parallel_hook import handle_deprecated_dp_attention

    args = ServerArgs(model_path="x", tp_size=2, dp_size=2, enable_dp_attention=True)
    handle_deprecated_dp_attention(args)
    resolved = resolved_view(args)
    assert not resolved.enable_dp_attention and resolved.attn_dp_size == 2  # as SGLang resolves it
    with pytest.raises(ValueError, match=r"\n  --attn-dp-size: "):
        refuse_resolved(args)


def test_an_option_sglang_switches_on_while_resolving_is_refused():
    """A model handler may declare an option on that the user never gave."""
    from sglang.srt.arg_groups.overrides import declare_resolution

    args = ServerArgs(model_path="x", tp_size=2)
    refuse_resolved(args)
    declare_resolution(args, "a model handler", enable_attn_tp_input_scattered=True)
    assert refused_options(args) == []  # the record's own field is still as given
    with pytest.raises(ValueError, match=r"\n  --enable-attn-tp-input-scattered: "):
        refuse_resolved(args)
