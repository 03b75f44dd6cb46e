"""The tuning space (benchmarks/search_space.py) and rung sizes (benchmarks/tune.py)."""

import pytest
from sglang_soft_thinking.params import SoftThinkingParams

from benchmarks.search_space import DEFAULT_SPACE, SpaceError, expand, load_space, validate_space
from benchmarks.tune import rung_sizes

BASE = SoftThinkingParams(max_thinking_tokens=64)


def test_grid_is_the_cartesian_product_over_the_base():
    space = {"max_topk": [2, 4], "after_thinking.temperature": [0.0, 0.7]}
    validate_space(space, BASE)
    trials = expand(space, BASE, "grid", None)
    pairs = {(t.params.max_topk, t.params.after_thinking.temperature) for t in trials}
    assert pairs == {(2, 0.0), (2, 0.7), (4, 0.0), (4, 0.7)}
    assert all(t.params.max_thinking_tokens == 64 for t in trials)  # the base is kept
    assert len({t.trial_id for t in trials}) == 4


def test_trial_ids_are_stable_and_spellings_of_one_config_run_once():
    first = expand({"max_topk": [3]}, BASE, "grid", None)[0]
    again = expand({"max_topk": [3]}, BASE, "grid", None)[0]
    assert first.trial_id == again.trial_id
    same = expand({"after_thinking_top_k": [30], "after_thinking.top_k": [30]}, BASE, "grid", None)
    assert len(same) == 1


def test_flat_noise_names_become_noise_objects():
    trials = expand({"gumbel_softmax_temperature": [0.5], "max_topk": [5]}, BASE, "grid", None)
    assert trials[0].params.noise.type == "gumbel" and trials[0].params.noise.temperature == 0.5
    noise = expand({"noise": [None, {"type": "dirichlet", "alpha": 2.0}]}, BASE, "grid", None)
    assert [t.params.noise and t.params.noise.type for t in noise] == [None, "dirichlet"]


def test_random_strategy_draws_distinct_points_reproducibly():
    space = {"max_topk": [1, 2, 3, 4], "min_p": [0.0, 0.01, 0.02]}
    first = [t.trial_id for t in expand(space, BASE, "random", 5, seed=3)]
    assert first == [t.trial_id for t in expand(space, BASE, "random", 5, seed=3)]
    assert len(set(first)) == 5
    assert len(expand(space, BASE, "random", 100)) == 12
    assert len(expand(space, BASE, "grid", 2)) == 2


@pytest.mark.parametrize("space, message", [
    ({"max_top_k": [5]}, "unknown parameter 'max_top_k'"),
    ({"max_topk": []}, "max_topk needs a non-empty list"),
    ({"max_topk": 5}, "max_topk needs a non-empty list"),
    ({"min_p": [0.01, 2.0]}, r"min_p: soft_thinking\.min_p"),
    ({"noise": [{"type": "laplace"}]}, "noise"),
    ({"after_thinking.top_p": [0]}, r"after_thinking\.top_p"),
])
def test_invalid_spaces_are_refused(space, message):
    with pytest.raises(SpaceError, match=message):
        validate_space(space, BASE)


def test_default_space_is_valid_and_files_load(tmp_path):
    validate_space(load_space(None), BASE)
    assert load_space(None) == DEFAULT_SPACE
    path = tmp_path / "space.yaml"
    path.write_text("max_topk: [5, 10]\nnoise: [null]\n", encoding="utf-8")
    assert load_space(str(path)) == {"max_topk": [5, 10], "noise": [None]}
    with pytest.raises(SpaceError, match="non-empty mapping"):
        load_space("{}")


def test_rungs_double_up_to_the_limit():
    assert rung_sizes(40, 3) == [10, 20, 40]
    assert rung_sizes(5, 1) == [5]
    assert rung_sizes(2, 4) == [1, 2]


def test_a_space_across_methods_leaves_out_the_combinations_the_model_refuses():
    space = {"method": ["concept", "mixture_of_inputs"], "beta": [0.5],
             "noise": [None, {"type": "gumbel", "temperature": 0.5}]}
    trials = expand(space, BASE, "grid", None)
    assert [(t.params.method, t.params.noise is None) for t in trials] == [
        ("concept", True), ("concept", False), ("mixture_of_inputs", True)]
    with pytest.raises(SpaceError, match="noise"):
        expand({"method": ["mixture_of_inputs"], "noise": [{"type": "gumbel"}]}, BASE, "grid", None)


def test_every_method_and_its_parameters_can_be_searched():
    """A space over the methods of the seam and their own parameters: combinations the
    parameter model refuses (noise on a method that feeds no concept token) are left out."""
    from benchmarks.search_space import expand, validate_space

    space = {"method": ["concept", "think_router", "multiplex", "discrete"], "tau": [0.4, 0.8],
             "noise": [None, {"type": "gumbel", "temperature": 0.5}]}
    base = SoftThinkingParams()
    validate_space(space, base)
    trials = expand(space, base, "grid", 100, 0)
    seen = {(t.params.method, t.params.tau, t.params.noise is not None) for t in trials}
    assert ("think_router", 0.8, True) in seen and ("multiplex", 0.4, False) in seen
    assert not any(noisy and method in ("multiplex", "discrete") for method, _, noisy in seen)
    assert len(trials) == 12
