"""``benchmarks.run --repeats`` and the prefix-first order, with the server replaced by a
stand-in for the one request function: seeds per repeat, resumption, what is sent when."""

import asyncio
import json

import httpx
import openai
import pytest

import benchmarks.run as run
from benchmarks.client import SampleResponse
from benchmarks.settings import REPEAT_SEED_STRIDE

BASE = ["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--dataset", "word_problems",
        "--max-tokens", "8", "--concurrency", "4", "--retries", "0"]


class StandIn:
    """Answers every request with "42" (3 tokens); refuses the seeds in ``failing`` with a
    connection error; logs the order requests start and finish."""

    def __init__(self, failing=()):
        self.failing = set(failing)
        self.seeds: list[int | None] = []
        self.events: list[tuple[str, str]] = []

    async def __call__(self, client, body, retries):
        prompt = body["messages"][0]["content"]
        self.events.append(("start", prompt))
        await asyncio.sleep(0.01)
        self.events.append(("end", prompt))
        if body.get("seed") in self.failing:
            raise openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9"))
        self.seeds.append(body.get("seed"))
        response = {"choices": [{"message": {"content": "42", "reasoning_content": None},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 3,
                              "prompt_tokens_details": {"cached_tokens": 19}}}
        return SampleResponse(response, 0.0, 1.0, 0.1)


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_repeats_resume_sending_only_missing_samples_with_their_own_seeds(tmp_path, monkeypatch):
    out = tmp_path / "run.jsonl"
    args = BASE + ["--limit", "3", "--num-samples", "2", "--repeats", "3", "--seed", "7",
                   "--out", str(out)]
    seed = lambda sample, repeat: 7 + REPEAT_SEED_STRIDE * repeat + sample  # noqa: E731
    broken = StandIn(failing={seed(1, 2), seed(0, 1)})
    monkeypatch.setattr(run, "stream_chat_with_retries", broken)
    assert run.main(args) == 1                                  # two samples failed
    first = lines(out)
    assert len(first) == 3 * 2 * 3 - 3 * 2                      # each failing seed, 3 problems
    for record in first:
        assert record["seed"] == seed(record["sample_index"], record["repeat"])
        assert record["usage"]["cached_tokens"] == 19
    assert len({record["seed"] for record in first}) == 4       # distinct per (sample, repeat)

    healthy = StandIn()
    monkeypatch.setattr(run, "stream_chat_with_retries", healthy)
    assert run.main(args) == 0
    assert sorted(healthy.seeds) == sorted([seed(1, 2)] * 3 + [seed(0, 1)] * 3)
    keys = [(r["prompt_id"], r["sample_index"], r["repeat"]) for r in lines(out)]
    assert len(keys) == len(set(keys)) == 18
    again = StandIn()
    monkeypatch.setattr(run, "stream_chat_with_retries", again)
    assert run.main(args) == 0 and again.seeds == []            # nothing left to send


def test_records_made_before_repeats_count_as_repeat_0(tmp_path, monkeypatch):
    out = tmp_path / "run.jsonl"
    stand_in = StandIn()
    monkeypatch.setattr(run, "stream_chat_with_retries", stand_in)
    assert run.main(BASE + ["--limit", "2", "--seed", "0", "--out", str(out)]) == 0
    old = [{k: v for k, v in r.items() if k not in ("repeat", "seed")} for r in lines(out)]
    out.write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    stand_in.seeds.clear()
    assert run.main(BASE + ["--limit", "2", "--seed", "0", "--repeats", "2",
                            "--out", str(out)]) == 0
    assert stand_in.seeds == [REPEAT_SEED_STRIDE, REPEAT_SEED_STRIDE]   # only repeat 1


def test_repeats_without_a_seed_is_exit_2(tmp_path, capsys):
    out = tmp_path / "run.jsonl"
    assert run.main(BASE + ["--repeats", "2", "--out", str(out)]) == 2
    assert "--repeats needs --seed" in capsys.readouterr().err
    assert not out.exists()


def test_prefix_first_sends_a_problems_other_samples_after_its_first(tmp_path, monkeypatch):
    stand_in = StandIn()
    monkeypatch.setattr(run, "stream_chat_with_retries", stand_in)
    args = run.parse_args(BASE + ["--limit", "3", "--num-samples", "4", "--seed", "0",
                                  "--out", str(tmp_path / "run.jsonl")])
    settings = run.settings_from_args(args, "m")
    dataset = run.load_dataset(args)
    run_file = run.open_run_file(args.out, settings)
    failures = asyncio.run(run.run_samples(args, dataset, settings, run_file, None,
                                           prefix_first=True))
    assert failures == 0 and len(run_file.records) == 12
    for problem in dataset.problems:
        prompt = dataset.prompt(problem)
        mine = [kind for kind, text in stand_in.events if text == prompt]
        assert mine[:2] == ["start", "end"] and mine.count("start") == 4
    # Without it, several samples of the first problem start before any has finished.
    stand_in.events.clear()
    run_file = run.open_run_file(tmp_path / "other.jsonl", settings)
    asyncio.run(run.run_samples(args, dataset, settings, run_file, None))
    assert stand_in.events[:2] == [("start", stand_in.events[0][1])] * 2


@pytest.mark.parametrize("argv, message", [
    (["--repeats", "0", "--seed", "1"], "--repeats must be at least 1"),
    (["--repeats", "2", "--seed", "1", "--num-samples", str(REPEAT_SEED_STRIDE)],
     "--num-samples must be below"),
])
def test_bad_repeats_are_refused(tmp_path, capsys, argv, message):
    assert run.main(BASE + argv + ["--out", str(tmp_path / "x.jsonl")]) == 2
    assert message in capsys.readouterr().err
