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

ALL_METHODS = ("concept", "mixture_of_inputs", "switch", "think_router", "multiplex", "discrete", "latent")


def names(rungs):
    return [rung.name for rung in rungs]


def test_rungs_follow_the_methods_the_plugin_has():
    kept, skipped = ablation.select_rungs(methods=("concept", "mixture_of_inputs", "switch"))
    assert names(kept) == ["plain", "concept", "concept_gumbel", "mixture_of_inputs", "switch"]
    assert {rung.name: reason for rung, reason in skipped}.keys() == {
        "discrete", "think_router", "multiplex", "latent"}
    assert all("no method" in reason and "concept, mixture_of_inputs, switch" in reason
               for _, reason in skipped)


def test_every_method_present_gives_the_whole_ladder_in_order_and_new_ones_at_the_end():
    kept, skipped = ablation.select_rungs(methods=ALL_METHODS + ("new_idea",))
    assert names(kept) == ["plain", "discrete", "concept", "concept_gumbel", "mixture_of_inputs",
                           "switch", "think_router", "multiplex", "latent", "new_idea"]
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
        "plain.jsonl", "report.json", "report.md", "switch.jsonl"]
    methods = [None if soft is None else (soft["method"], (soft.get("noise") or {}).get("type"))
               for soft in sent]
    assert methods == [None] * 3 + [("concept", None)] * 3 + [("concept", "gumbel")] * 3 + [
        ("switch", None)] * 3
    ladder = json.loads((out / "ladder.json").read_text())
    assert [rung["name"] for rung in ladder["skipped"]] == [
        "discrete", "mixture_of_inputs", "think_router", "multiplex", "latent"]
    report = json.loads((out / "report.json").read_text())
    assert [c["baseline"] for c in report["comparisons"]] == ["plain"]
    rows = report["comparisons"][0]["rows"]
    assert [row["run"] for row in rows] == ["concept", "concept_gumbel", "switch"]
    assert all(row["pass@1_diff"] == 1.0 and row["tokens_diff"] == -3.0 for row in rows)
    assert all(row["mcnemar"]["other_only"] == 3 for row in rows)
    assert "Paired against plain" in capsys.readouterr().out
    # Run again: nothing is sent, the report is the same.
    sent.clear()
    assert ablation.main(argv) == 0 and sent == []
