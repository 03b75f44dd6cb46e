"""The ablation ladder (benchmarks/ablation.py): which rungs run, with which settings, the
options it refuses, and a whole ablation against a stand-in for the request function."""

import json

import pytest
from sglang_soft_thinking.params import METHODS, SoftThinkingParams

import benchmarks.ablation as ablation
import benchmarks.run as run
from benchmarks.client import SampleResponse
from benchmarks.settings import SettingsError
from benchmarks.target_server import server_command, split_server_args

ALL_METHODS = ("concept", "mixture_of_inputs", "switch", "think_router", "multiplex", "discrete", "selar", "latent")


def names(rungs):
    return [rung.name for rung in rungs]


def test_rungs_follow_the_methods_the_plugin_has():
    kept, skipped = ablation.select_rungs(methods=("concept", "mixture_of_inputs", "switch"))
    assert names(kept) == ["plain", "concept", "concept_gumbel", "mixture_of_inputs", "switch",
                           "switch_authors"]
    assert {rung.name: reason for rung, reason in skipped}.keys() == {
        "discrete", "think_router", "multiplex", "selar", "think_router_entropy", "latent"}
    assert all("no method" in reason and "concept, mixture_of_inputs, switch" in reason
               for _, reason in skipped)


def test_every_method_present_gives_the_whole_ladder_in_order_and_new_ones_at_the_end():
    kept, skipped = ablation.select_rungs(methods=ALL_METHODS + ("new_idea",))
    assert names(kept) == ["plain", "discrete", "concept", "concept_gumbel", "mixture_of_inputs",
                           "switch", "switch_authors", "think_router", "multiplex", "selar",
                           "think_router_entropy", "latent", "new_idea"]
    assert skipped == []
    assert kept[-1].method == "new_idea"


def test_the_installed_plugin_decides_by_default():
    kept, skipped = ablation.select_rungs()
    assert {rung.method for rung in kept} - {None} == set(METHODS)
    assert {rung.method for rung, _ in skipped}.isdisjoint(METHODS)


def test_rung_settings_share_everything_but_method_and_noise():
    base = SoftThinkingParams(max_topk=7, early_stopping_length_threshold=64,
                              max_thinking_tokens=32, noise={"type": "dirichlet", "alpha": 2.0})
    by_name = {rung.name: rung for rung in ablation.LADDER}
    assert ablation.rung_params(by_name["plain"], base) is None
    gumbel = ablation.rung_params(by_name["concept_gumbel"], base)
    assert gumbel.method == "concept" and gumbel.noise.type == "gumbel"
    assert gumbel.noise.temperature == 0.5
    mixture = ablation.rung_params(by_name["mixture_of_inputs"], base)
    assert mixture.method == "mixture_of_inputs" and mixture.noise is None
    for params in (gumbel, mixture):
        assert (params.max_topk, params.early_stopping_length_threshold,
                params.max_thinking_tokens) == (7, 64, 32)


def test_the_switch_authors_rung_runs_their_preset_beside_the_engines_switch():
    by_name = {rung.name: rung for rung in ablation.LADDER}
    assert [rung.name for rung in ablation.LADDER].index("switch_authors") == \
        [rung.name for rung in ablation.LADDER].index("switch") + 1
    base = SoftThinkingParams(max_topk=7, max_thinking_tokens=32, max_switch_count=3)
    engine = ablation.rung_params(by_name["switch"], base)
    authors = ablation.rung_params(by_name["switch_authors"], base)
    # The authors' code (SwitchParams' module docstring; README's methods table): window 512,
    # digits/letters/maths symbols fed explicitly, a 0.1 newline blend on the first step, a
    # two-stage switch cap, absolute min-p.
    assert (authors.method, authors.switch_preset, authors.window_size, authors.explicit_tokens,
            authors.first_blend, authors.cap_stages, authors.min_p_absolute) == (
        "switch", "authors", 512, "math", 0.1, 2, True)
    assert (engine.switch_preset, engine.explicit_tokens, engine.first_blend, engine.cap_stages,
            engine.min_p_absolute) == ("engine", "none", 0.0, 1, False)
    for params in (engine, authors):  # the shared settings reach both
        assert (params.max_topk, params.max_thinking_tokens, params.max_switch_count) == (7, 32, 3)
    # An option the user sets in the shared settings wins over the preset's.
    mine = ablation.rung_params(by_name["switch_authors"], SoftThinkingParams(first_blend=0.3))
    assert mine.first_blend == 0.3 and mine.explicit_tokens == "math"


def test_a_rung_sets_its_methods_own_parameters_over_the_shared_ones():
    by_name = {rung.name: rung for rung in ablation.LADDER}
    gated = ablation.rung_params(by_name["think_router_entropy"], SoftThinkingParams(max_topk=7))
    assert (gated.method, gated.router_statistic, gated.tau, gated.max_topk) == ("think_router", "topk_entropy", 0.5, 7)
    assert ablation.rung_params(by_name["think_router"], SoftThinkingParams()).router_statistic == "p_max"


def test_a_method_the_plugin_lacks_is_a_settings_error_naming_the_rung():
    rung = ablation.Rung("made_up", "made_up", "not a method")
    with pytest.raises(SettingsError, match="rung 'made_up'"):
        ablation.rung_params(rung, SoftThinkingParams())


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "gsm8k", "--out", "x"], "give --base-url of a running server"),
    (["--dataset", "gsm8k", "--out", "x", "--base-url", "http://h:1", "--start-server",
      "--model-path", "m"], "not both"),
])
def test_the_target_server_is_asked_for_once(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        ablation.parse_args(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_start_server_alone_serves_the_default_model():
    args, server_args = ablation.parse_args(["--dataset", "gsm8k", "--out", "x", "--start-server"])
    assert server_args == [] and args.base_url is None


def test_server_options_are_passed_on_with_a_port_and_the_key():
    own, server = split_server_args(["--dataset", "d", "--start-server", "--model-path", "m",
                                     "--tp-size", "8"])
    assert own == ["--dataset", "d"] and server == ["--model-path", "m", "--tp-size", "8"]
    command, port = server_command(server, api_key="k")
    assert command[1:3] == ["-m", "server"] and command[3:7] == server
    assert command[command.index("--port") + 1] == str(port)
    assert command[-2:] == ["--api-key", "k"]
    command, port = server_command(["--model-path", "m", "--port=31000", "--api-key", "own"], "k")
    assert port == 31000 and command.count("--api-key") == 1 and "--port" not in command


def test_temperature_0_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "ablation"
    assert ablation.main(["--base-url", "http://127.0.0.1:9", "--dataset", "word_problems",
                          "--temperature", "0", "--out", str(out)]) == 2
    assert "--temperature must be > 0" in capsys.readouterr().err
    assert not out.exists()


def test_a_whole_ablation_against_a_stand_in(tmp_path, monkeypatch, capsys):
    sent = []

    async def stand_in(client, body, retries):
        soft = (body.get("extra_body") or {}).get("soft_thinking")
        sent.append(soft)
        # Soft rungs answer right, plain wrong: every rung differs from plain.
        answer = "\\boxed{1}" if soft else "\\boxed{999}"
        response = {"choices": [{"message": {"content": answer}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 5 if soft else 8}}
        return SampleResponse(response, 0.0, 1.0, 0.1)

    monkeypatch.setattr(run, "stream_chat_with_retries", stand_in)
    monkeypatch.setattr(ablation, "METHODS", ("concept", "switch"))
    dataset = tmp_path / "ones.jsonl"
    dataset.write_text("".join(json.dumps({"question": f"{i} - {i} + 1?", "answer": "#### 1"}) + "\n"
                               for i in range(3)))
    out = tmp_path / "ablation"
    argv = ["--base-url", "http://127.0.0.1:9", "--model", "m", "--dataset", str(dataset),
            "--task", "gsm8k", "--max-tokens", "8", "--seed", "0", "--out", str(out)]
    assert ablation.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_vs_tokens.png", "concept.jsonl", "concept_gumbel.jsonl", "ladder.json",
        "plain.jsonl", "report.json", "report.md", "switch.jsonl", "switch_authors.jsonl"]
    methods = [None if soft is None else (soft["method"], (soft.get("noise") or {}).get("type"),
                                          soft.get("switch_preset"))
               for soft in sent]
    assert methods == [None] * 3 + [("concept", None, "engine")] * 3 + [
        ("concept", "gumbel", "engine")] * 3 + [("switch", None, "engine")] * 3 + [
        ("switch", None, "authors")] * 3
    ladder = json.loads((out / "ladder.json").read_text())
    assert [rung["name"] for rung in ladder["skipped"]] == [
        "discrete", "mixture_of_inputs", "think_router", "multiplex", "selar", "think_router_entropy", "latent"]
    report = json.loads((out / "report.json").read_text())
    assert [c["baseline"] for c in report["comparisons"]] == ["plain"]
    rows = report["comparisons"][0]["rows"]
    assert [row["run"] for row in rows] == ["concept", "concept_gumbel", "switch", "switch_authors"]
    assert all(row["pass@1_diff"] == 1.0 and row["tokens_diff"] == -3.0 for row in rows)
    assert all(row["mcnemar"]["other_only"] == 3 for row in rows)
    printed = capsys.readouterr().out
    assert "Paired against plain" in printed
    assert max(len(line) for line in printed.splitlines()) <= 120
    # The preset rung's column names what the preset changed; the engine's switch changes none.
    assert 'switch_preset="authors"' in printed and 'explicit_tokens="math"' in printed
    # Run again: nothing is sent, the report is the same.
    sent.clear()
    assert ablation.main(argv) == 0 and sent == []
