"""Self-consistency (benchmarks/self_consistency.py): the curve by hand, the settings of the
two series, and a whole run against a stand-in for the request function."""

import json

import pytest
from scipy import stats

import benchmarks.run as run
import benchmarks.self_consistency as sc
from benchmarks.client import SampleResponse
from benchmarks.settings import RunSettings, SettingsError
from sglang_soft_thinking.params import SoftThinkingParams


def record(problem, index, answer, gold="1", tokens=10, cached=None):
    return {"prompt_id": f"p/{problem}", "sample_index": index,
            "verdict": {"correct": answer == gold, "extracted": answer},
            "usage": {"prompt_tokens": 20, "completion_tokens": tokens, "cached_tokens": cached}}


def test_ks_up_to():
    assert sc.ks_up_to(8) == [1, 2, 4, 8]
    assert sc.ks_up_to(6) == [1, 2, 4, 6]
    assert sc.ks_up_to(1) == [1]


def test_curve_points_by_hand():
    # Problem 0: answers 2, 1, 1, 1 -> first 1: wrong; first 2: tie, first seen (2) wins,
    # wrong; first 4: 1 wins, right. Problem 1: 1, 3, 3, 3 -> right, right, wrong.
    records = [record(0, i, a, tokens=10 * (i + 1)) for i, a in enumerate("2111")]
    records += [record(1, i, a, tokens=5) for i, a in enumerate("1333")]
    points = {k: sc.curve_point(sc.first_samples(records, k), k) for k in (1, 2, 4)}
    assert [points[k]["majority_vote"] for k in (1, 2, 4)] == [0.5, 0.5, 0.5]
    assert [points[k]["pass@k"] for k in (1, 2, 4)] == [0.5, 1.0, 1.0]
    assert points[1]["tokens"] == (10 + 5) / 2
    assert points[4]["tokens"] == (10 + 20 + 30 + 40 + 20) / 2
    expected = stats.binomtest(1, 2).proportion_ci(0.95, method="wilson")
    assert points[1]["majority_vote_interval"] == pytest.approx((expected.low, expected.high))


def test_problems_missing_samples_are_left_out_of_larger_k():
    records = [record(0, i, "1") for i in range(4)] + [record(1, i, "1") for i in range(2)]
    assert sorted(sc.first_samples(records, 2)) == ["p/0", "p/1"]
    assert sorted(sc.first_samples(records, 4)) == ["p/0"]


def test_the_cache_share_counts_samples_after_the_first():
    records = [record(0, 0, "1", cached=0), record(0, 1, "1", cached=19),
               record(0, 2, "1", cached=15)]
    assert sc.cached_share(records) == pytest.approx((19 + 15) / 40)
    assert sc.cached_share([record(0, 1, "1")]) is None


def test_the_comparison_pairs_votes_by_problem():
    # 10 problems: plain always votes wrong, soft votes right on 7 of them.
    soft = [record(p, i, "1" if p < 7 else "2") for p in range(10) for i in range(2)]
    plain = [record(p, i, "2") for p in range(10) for i in range(2)]
    curves = sc.build_curves({"soft": soft, "plain": plain}, 2)
    assert [row["k"] for row in curves["comparisons"]] == [1, 2]
    row = curves["comparisons"][-1]
    assert row["majority_vote_diff"] == pytest.approx(0.7)
    assert row["mcnemar"]["p_value"] == pytest.approx(stats.binomtest(0, 7, 0.5).pvalue)
    assert row["distinguishable"] is True
    assert "| 2 | 10 | +70.0 [" in sc.format_markdown(curves)


def settings(**changes):
    fields = dict(model="m", max_tokens=8, temperature=0.6, top_p=0.95, top_k=None, min_p=None,
                  seed=None, num_samples=1)
    fields.update(changes)
    return RunSettings(**fields)


def test_the_soft_series_gets_gumbel_noise_unless_it_names_one_and_both_are_seeded():
    series = sc.series_settings(settings(), 8)
    assert series["soft"].soft_thinking.noise.type == "gumbel"
    assert series["plain"].soft_thinking is None
    assert all(s.num_samples == 8 and s.seed == 0 for s in series.values())
    dirichlet = SoftThinkingParams(noise={"type": "dirichlet", "alpha": 0.5})
    series = sc.series_settings(settings(soft_thinking=dirichlet, seed=5), 4)
    assert series["soft"].soft_thinking.noise.alpha == 0.5 and series["soft"].seed == 5
    with pytest.raises(SettingsError, match="noise"):
        sc.series_settings(settings(soft_thinking=SoftThinkingParams(method="mixture_of_inputs")), 4)
    with pytest.raises(SettingsError, match="--temperature"):
        sc.series_settings(settings(temperature=0.0), 4)


def test_a_whole_run_against_a_stand_in(tmp_path, monkeypatch, capsys):
    sent = []

    async def stand_in(client, body, retries):
        soft = (body.get("extra_body") or {}).get("soft_thinking")
        sent.append((body["messages"][0]["content"], body["seed"], soft is not None))
        answer = "1" if soft and body["seed"] % 2 == 0 else "7"
        response = {"choices": [{"message": {"content": answer}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 4,
                              "prompt_tokens_details": {"cached_tokens": 19}}}
        return SampleResponse(response, 0.0, 1.0, 0.1)

    monkeypatch.setattr(run, "stream_chat_with_retries", stand_in)
    dataset = tmp_path / "ones.jsonl"
    dataset.write_text("".join(json.dumps({"question": f"Q{i}?", "answer": "#### 1"}) + "\n"
                               for i in range(3)))
    out = tmp_path / "sc"
    argv = ["--base-url", "http://127.0.0.1:9", "--model", "m", "--dataset", str(dataset),
            "--task", "gsm8k", "--k", "4", "--max-tokens", "8", "--out", str(out)]
    assert sc.main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"soft.jsonl", "plain.jsonl", "self_consistency.md",
                                               "self_consistency.json", "self_consistency.png"}
    assert len(sent) == 2 * 3 * 4
    assert sorted(seed for _, seed, soft in sent if soft) == sorted(list(range(4)) * 3)
    curves = json.loads((out / "self_consistency.json").read_text())
    assert [p["k"] for p in curves["series"]["soft"]] == [1, 2, 4]
    # Soft samples with even seeds answer 1: k=1 right, k=2 a tie won by sample 0, right.
    assert [p["majority_vote"] for p in curves["series"]["soft"]] == [1.0, 1.0, 1.0]
    assert [p["pass@k"] for p in curves["series"]["plain"]] == [0.0, 0.0, 0.0]
    assert curves["cached_share"] == {"soft": pytest.approx(0.95), "plain": pytest.approx(0.95)}
    assert "Self-consistency" in capsys.readouterr().out
    sent.clear()
    assert sc.main(argv) == 0 and sent == []          # resumed: nothing left to send
    with pytest.raises(SystemExit) as exited:
        sc.main(argv + ["--num-samples", "2"])
    assert exited.value.code == 2
