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



def test_trace_entries_name_the_token_each_step_wrote():
    """With the output ids, each step's entry names its own token (the multiplex draw that
    another draw outweighs included); markup and answer tokens make no entry."""
    records = [think(1.0, [5, 6], [0.75, 0.25]), think(0.5, [9, 7], [0.6, 0.4]),
               ("budget", None, None, None), ("answer", None, None, None)]
    summary = summarize(records, "stop", return_trace=True, output_ids=[5, 7, 40, 41])
    assert [entry["token"] for entry in summary.trace] == [5, 7]
    assert summarize(records, "stop", return_trace=True).trace[0] == {
        "ids": [5, 6], "weights": [0.75, 0.25], "entropy": 1.0}
