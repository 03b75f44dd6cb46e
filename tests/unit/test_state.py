"""The per-request state machine (DESIGN §4) on hand-made logits."""

import torch

from request_settings import all_rows, request_settings
from sglang_soft_thinking.phases import KIND_ANSWER, KIND_BUDGET, KIND_COLD_STOP, KIND_THINK, KIND_THINK_END
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB = 8
END = [6, 7]  # a two-token think-end string


def settings(**overrides) -> RequestSettings:
    return request_settings(think_end_ids=END, **overrides)


def peaked(token: int, sharpness: float = 20.0) -> torch.Tensor:
    """Logits whose distribution puts almost everything on `token` (low entropy)."""
    logits = torch.zeros(VOCAB)
    logits[token] = sharpness
    return logits


def spread(top: int) -> torch.Tensor:
    """Logits with `top` most likely but real mass elsewhere (high entropy)."""
    logits = torch.linspace(0, 1, VOCAB)
    logits[top] = 2.0
    return logits


def run(table, rows, logits_per_step):
    rows_t = torch.tensor(rows)
    results = []
    for logits in logits_per_step:
        batch_logits = torch.stack(logits) if isinstance(logits, list) else logits.unsqueeze(0)
        results.append(soft_step(table, rows_t, batch_logits, all_rows(len(rows), 3, VOCAB)))
    return results


def test_model_written_think_end_switches_to_answer():
    table = SoftThinkingTable(4, k_max=4, device="cpu")
    table.admit([2], [settings()])
    steps = run(table, [2], [spread(1), spread(6), spread(7), spread(3), spread(5)])
    assert [s.tokens.item() for s in steps][:3] == [1, 6, 7]
    # The step whose token completes the think-end string is its own kind.
    assert [s.kinds.item() for s in steps] == [KIND_THINK] * 2 + [KIND_THINK_END] + [KIND_ANSWER] * 2
    # After thinking, after_thinking temperature 0 is greedy.
    assert [s.tokens.item() for s in steps][3:] == [3, 5]
    use, _, _ = table.concept_inputs(torch.tensor([2]))
    assert not use.item(), "answer tokens are discrete inputs"


def test_concept_token_is_stored_for_the_next_input():
    table = SoftThinkingTable(4, k_max=4, device="cpu")
    table.admit([1], [settings(max_topk=2)])
    step = run(table, [1], [spread(4)])[0]
    use, ids, weights = table.concept_inputs(torch.tensor([1]))
    assert use.item()
    assert ids[0, :2].tolist() == step.ids[0, :2].tolist() and ids[0, 0].item() == 4
    torch.testing.assert_close(weights[0, :2], step.weights[0, :2])
    assert weights[0, 2:].abs().sum() == 0, "columns past max_topk carry no weight"
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))


def test_cold_stop_after_exactly_length_threshold_low_entropy_steps():
    table = SoftThinkingTable(2, k_max=4, device="cpu")
    table.admit([0], [settings(entropy_threshold=0.1, length_threshold=3)])
    # high, low, low, high (run resets), low, low, low -> fires on the 3rd consecutive low step
    logits = [spread(2), peaked(3), peaked(3), spread(2), peaked(4), peaked(4), peaked(4), spread(1), spread(1), spread(5)]
    steps = run(table, [0], logits)
    kinds = [s.kinds.item() for s in steps]
    assert kinds == [KIND_THINK] * 7 + [KIND_COLD_STOP] * 2 + [KIND_ANSWER]
    assert [s.tokens.item() for s in steps][7:9] == END, "the whole think-end string is written"
    assert steps[6].entropy.item() < 0.1 <= steps[3].entropy.item()


def test_threshold_zero_disables_cold_stop():
    table = SoftThinkingTable(2, k_max=4, device="cpu")
    table.admit([0], [settings(entropy_threshold=0.0, length_threshold=1)])
    steps = run(table, [0], [peaked(3)] * 5)
    assert all(s.kinds.item() == KIND_THINK for s in steps)


def test_thinking_budget():
    table = SoftThinkingTable(2, k_max=4, device="cpu")
    table.admit([0, 1], [settings(max_thinking_tokens=2), settings(max_thinking_tokens=0)])
    steps = run(table, [0, 1], [[spread(1), spread(1)]] * 5)
    kinds = [s.kinds.tolist() for s in steps]
    assert [k[0] for k in kinds] == [KIND_THINK, KIND_THINK, KIND_BUDGET, KIND_BUDGET, KIND_ANSWER]
    assert [k[1] for k in kinds] == [KIND_BUDGET, KIND_BUDGET, KIND_ANSWER, KIND_ANSWER, KIND_ANSWER]
    assert [s.tokens[1].item() for s in steps][:2] == END


def test_rows_outside_the_step_are_untouched():
    table = SoftThinkingTable(4, k_max=4, device="cpu")
    table.admit([0, 3], [settings(), settings()])
    run(table, [3], [spread(2)])
    assert table.thinking_steps[3].item() == 1 and table.has_concept[3]
    assert table.thinking_steps[0].item() == 0 and not table.has_concept[0]


def test_admission_resets_a_reused_row():
    table = SoftThinkingTable(2, k_max=4, device="cpu")
    table.admit([1], [settings(max_thinking_tokens=1)])
    run(table, [1], [spread(1), spread(1)])
    table.admit([1], [settings()])
    step = run(table, [1], [spread(1)])[0]
    assert step.kinds.item() == KIND_THINK and table.thinking_steps[1].item() == 1
