"""Summaries of a soft-thinking request's per-token records (DESIGN §5)."""

from sglang_soft_thinking.output import summarize


def think(entropy, ids=None, weights=None):
    return ("think", entropy, ids, weights)


def test_think_end_written_by_the_model():
    records = [think(1.0, [5, 6], [0.75, 0.25]), think(0.5, [7], [1.0]), ("answer", None, None, None)]
    summary = summarize(records, "stop", return_trace=True)
    assert summary.thinking_tokens == 2 and summary.end_reason == "think_end"
    assert summary.trace == [{"ids": [5, 6], "weights": [0.75, 0.25], "entropy": 1.0},
                             {"ids": [7], "weights": [1.0], "entropy": 0.5}]


def test_cold_stop_budget_stop_and_length():
    forced = [("cold_stop", None, None, None)] * 2
    assert summarize([think(0.0)] * 3 + forced + [("answer", None, None, None)], "stop", False).to_json() == {
        "thinking_tokens": 5, "end_reason": "cold_stop"}
    assert summarize([think(1.0), ("budget", None, None, None)], "length", False).end_reason == "budget"
    assert summarize([think(1.0)] * 4, "stop", False).end_reason == "stop"
    assert summarize([think(1.0)] * 4, "length", False).end_reason == "length"
    assert summarize([None, None], "stop", False).thinking_tokens == 0

