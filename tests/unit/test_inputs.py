"""Concept-token inputs (DESIGN §4 step 6), and why the decode path survives graph capture.

A CUDA graph records the ops a step ran at capture time and replays them on whatever its
buffers hold later; no Python runs at replay. ``torch.jit.trace`` records a function the
same way (ops on tensors, Python control flow frozen), so it stands in for capture on this
machine: the decode inputs are traced while no request thinks, then the table is filled
with thinking rows and the recorded ops must give what the eager function gives.
"""

import warnings

import torch
from request_settings import all_rows, request_settings

from sglang_soft_thinking.mixing import ModuleMixer, decode_inputs, extend_inputs
from sglang_soft_thinking.plan import ExtendInputs
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable, initial_row_state

VOCAB, HIDDEN, K_MAX = 16, 8, 4


def settings(**overrides) -> RequestSettings:
    return request_settings(**{"think_end_ids": [15], **overrides})


def make_embedding():
    torch.manual_seed(0)
    return torch.nn.Embedding(VOCAB, HIDDEN).requires_grad_(False)


def by_hand(embedding, table, rows, token_ids):
    """The formula, row by row: thinking rows take sum_i w_i E[ids_i], others E[token]."""
    out = []
    for row, token in zip(rows.tolist(), token_ids.tolist()):
        if table.is_soft[row] and table.has_concept[row]:
            ids, weights = table.concept_ids[row], table.concept_weights[row]
            out.append((weights.unsqueeze(1) * embedding.weight[ids]).sum(0))
        else:
            out.append(embedding.weight[token])
    return torch.stack(out)


def test_decode_inputs_mix_thinking_rows_only():
    embedding = make_embedding()
    table = SoftThinkingTable(6, k_max=K_MAX, device="cpu")
    table.admit([1, 2, 4], [settings(), None, settings()])
    rows = torch.tensor([1, 2, 4])
    soft_step(table, torch.tensor([1, 4]), torch.randn(2, VOCAB), all_rows(2, 3, VOCAB))  # the soft rows
    token_ids = torch.tensor([3, 5, 7])
    with torch.no_grad():
        got = decode_inputs(ModuleMixer(embedding), embedding(token_ids), table, rows, K_MAX)
        torch.testing.assert_close(got, by_hand(embedding, table, rows, token_ids))
        assert not torch.allclose(got[0], embedding.weight[3]), "a thinking row is mixed"
        torch.testing.assert_close(got[1], embedding.weight[5])


def test_decode_inputs_recorded_with_no_thinking_row_replay_correctly():
    embedding = make_embedding()
    table = SoftThinkingTable(6, k_max=K_MAX, device="cpu")
    table.admit([0, 1, 2, 3], [None, None, None, None])  # no request thinks at capture

    def step(token_ids, rows):
        return decode_inputs(ModuleMixer(embedding), embedding(token_ids), table, rows, K_MAX)

    token_ids, rows = torch.tensor([3, 5, 7, 9]), torch.tensor([0, 1, 2, 3])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        captured = torch.jit.trace(step, (token_ids, rows), check_trace=False)
        # Later, rows 1 and 3 hold thinking requests that fed back concept tokens.
        table.admit([1, 3], [settings(), settings(max_topk=2)])
        soft_step(table, torch.tensor([1, 3]), torch.randn(2, VOCAB), all_rows(2, 3, VOCAB))
        replayed = captured(token_ids, rows)
        torch.testing.assert_close(replayed, step(token_ids, rows))
        torch.testing.assert_close(replayed, by_hand(embedding, table, rows, token_ids))
        assert not torch.allclose(replayed[1], embedding.weight[5])


def test_extend_inputs_replace_the_listed_positions():
    embedding = make_embedding()
    token_ids = torch.tensor([1, 2, 3, 4, 5])
    extend = ExtendInputs(positions=torch.tensor([1, 3]), ids=torch.tensor([[6, 7], [8, 9]]),
                          weights=torch.tensor([[0.75, 0.25], [1.0, 0.0]]),
                          use=torch.tensor([True, False]))
    with torch.no_grad():
        got = extend_inputs(ModuleMixer(embedding), embedding(token_ids), extend)
        expected = embedding(token_ids).clone()
        expected[1] = 0.75 * embedding.weight[6] + 0.25 * embedding.weight[7]
        torch.testing.assert_close(got, expected)


def test_a_reused_row_carries_nothing_over():
    """Soft request, then a plain one, then a soft one again in the same row."""
    table = SoftThinkingTable(2, k_max=K_MAX, device="cpu")
    rows = torch.tensor([1])
    table.admit([1], [settings()])
    for _ in range(3):
        soft_step(table, rows, torch.randn(1, VOCAB), all_rows(1, 3, VOCAB))
    assert table.has_concept[1] and table.thinking_steps[1] == 3
    table.admit([1], [None])
    use, _, _ = table.concept_inputs(rows)
    assert not use.item() and not table.is_soft[1]
    table.admit([1], [settings()], [initial_row_state(settings())])
    assert table.is_soft[1] and not table.has_concept[1]
    assert table.thinking_steps[1] == 0 and table.low_entropy_run[1] == 0
    assert (table.recent[1] == -1).all() and (table.concept_weights[1] == 0).all()
