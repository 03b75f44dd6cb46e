"""Mixture of Inputs (mixture.py) against the formula computed by hand in Python floats."""

import math

import pytest
import torch

from sglang_soft_thinking.methods.mixture_of_inputs import mixture_of_inputs


def by_hand(logits: list[float], ids: list[int], n: int, sampled: int, beta: float) -> dict[int, float]:
    """The next input's weight per token id: H_n * (q + beta*y)/(1 + beta) + (1 - H_n) * y."""
    exps = [math.exp(z) for z in logits[:n]]
    q = {i: e / sum(exps) for i, e in zip(ids[:n], exps)}
    h_n = -sum(p * math.log(p) for p in q.values()) / math.log(n) if n > 1 else 0.0
    weights = {}
    for token in set(q) | {sampled}:
        y = 1.0 if token == sampled else 0.0
        weights[token] = h_n * (q.get(token, 0.0) + beta * y) / (1 + beta) + (1 - h_n) * y
    return weights


def as_dict(ids: torch.Tensor, weights: torch.Tensor) -> dict[int, float]:
    out: dict[int, float] = {}
    for i, w in zip(ids.tolist(), weights.tolist()):
        if w > 0:
            assert i not in out, "each token appears once"
            out[i] = w
    return out


CASES = [
    # logits (descending), ids, candidates, sampled, beta
    ([2.0, 1.5, 0.3, -1.0], [11, 4, 9, 2], 4, 4, 1.0),  # sampled among the candidates
    ([2.0, 1.5, 0.3, -1.0], [11, 4, 9, 2], 3, 2, 0.5),  # sampled outside the row's 3 candidates
    ([0.0, 0.0, 0.0, 0.0], [1, 2, 3, 4], 4, 3, 0.0),  # uniform prior: H_n = 1, the pure posterior
    ([5.0, 1.0, 0.5, 0.1], [7, 8, 9, 10], 1, 7, 2.0),  # one candidate: the sampled token alone
]


@pytest.mark.parametrize("logits, ids, n, sampled, beta", CASES)
def test_weights_follow_the_formula(logits, ids, n, sampled, beta):
    out_ids, out_weights, h_n = mixture_of_inputs(
        torch.tensor([logits]), torch.tensor([ids]), torch.tensor([n]), torch.tensor([sampled]),
        torch.tensor([beta]))
    assert out_ids[0, 0] == sampled, "column 0 is the token written to the text"
    got, expected = as_dict(out_ids[0], out_weights[0]), by_hand(logits, ids, n, sampled, beta)
    assert got.keys() == {t for t, w in expected.items() if w > 0}
    for token, weight in expected.items():
        assert got.get(token, 0.0) == pytest.approx(weight, abs=1e-6)
    assert float(out_weights.sum()) == pytest.approx(1.0, abs=1e-6)
    others = out_weights[0, 1:].tolist()
    assert others == sorted(others, reverse=True)


def test_rows_of_a_batch_are_independent():
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.2, 0.1, 0.0]])
    ids = torch.tensor([[5, 6, 7], [1, 2, 3]])
    n, sampled, beta = torch.tensor([3, 2]), torch.tensor([6, 1]), torch.tensor([1.0, 0.25])
    batch = mixture_of_inputs(logits, ids, n, sampled, beta)
    for row in range(2):
        alone = mixture_of_inputs(logits[row:row + 1], ids[row:row + 1], n[row:row + 1],
                                  sampled[row:row + 1], beta[row:row + 1])
        for got, want in zip(batch, alone):
            torch.testing.assert_close(got[row:row + 1], want)


def test_a_confident_step_feeds_nearly_the_sampled_token():
    ids, weights, h_n = mixture_of_inputs(torch.tensor([[30.0, 0.0, 0.0]]), torch.tensor([[3, 4, 5]]),
                                          torch.tensor([3]), torch.tensor([3]), torch.tensor([1.0]))
    assert h_n.item() < 1e-9 and weights[0, 0].item() == pytest.approx(1.0)
