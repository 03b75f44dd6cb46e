"""benchmarks.trace_plot on a response and a run file: real PNGs, one column per step."""

import json

from matplotlib.image import imread

from benchmarks import trace_plot


def trace(steps: int, depth: int = 4) -> list[dict]:
    # Ids of common tokens of the default model's vocabulary; weights sorted, summing to 1.
    return [{"ids": [100 + (s + r) % 50 for r in range(depth)],
             "weights": [0.55, 0.25, 0.15, 0.05][:depth], "entropy": 2.0 / (1 + s)}
            for s in range(steps)]


def response(steps: int) -> dict:
    return {"object": "chat.completion", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": "8"}, "finish_reason": "stop",
        "soft_thinking": {"thinking_tokens": steps + 3, "end_reason": "cold_stop",
                          "trace": trace(steps)}}]}


def test_a_response_gives_an_entropy_plot_and_legible_pages_covering_every_step(tmp_path):
    source = tmp_path / "response.json"
    source.write_text(json.dumps(response(45)))
    out = tmp_path / "plots"
    assert trace_plot.main([str(source), "--out", str(out), "--steps-per-page", "20"]) == 0
    (plot,) = json.loads((out / "plots.json").read_text())["plots"]
    assert plot["steps"] == 45 and plot["end_reason"] == "cold_stop"
    assert plot["threshold"] == trace_plot.DEFAULT_THRESHOLD
    pages = plot["concept_images"]
    assert [(p["first_step"], p["last_step"]) for p in pages] == [(1, 20), (21, 40), (41, 45)]
    for name in [plot["entropy_image"], *(p["image"] for p in pages)]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = imread(out / name).shape
        assert height > 100 and width > 100
    # A page of 20 steps is wider than a page of 5: one column per step.
    assert imread(out / pages[0]["image"]).shape[1] > imread(out / pages[2]["image"]).shape[1]


def test_a_run_file_plots_each_traced_sample_with_its_own_threshold(tmp_path):
    records = [
        {"prompt_id": "gsm8k-3", "sample_index": 0, "response": response(6),
         "request": {"soft_thinking": {"early_stopping_entropy_threshold": 0.2}}},
        {"prompt_id": "gsm8k-4", "sample_index": 1, "response": {"choices": [{"index": 0}]},
         "request": {"soft_thinking": None}},
    ]
    source = tmp_path / "run.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "plots"
    trace_plot.main([str(source), "--out", str(out)])
    (plot,) = json.loads((out / "plots.json").read_text())["plots"]
    assert plot["name"] == "gsm8k-3-0-choice0" and plot["threshold"] == 0.2
    assert plot["steps"] == 6 and len(plot["concept_images"]) == 1


def test_a_file_without_a_trace_is_a_clear_error(tmp_path, capsys):
    source = tmp_path / "response.json"
    source.write_text(json.dumps({"choices": [{"index": 0, "message": {"content": "x"}}]}))
    assert trace_plot.main([str(source), "--out", str(tmp_path / "plots")]) == 2
    assert "return_trace" in capsys.readouterr().err
