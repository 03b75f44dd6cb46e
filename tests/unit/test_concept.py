"""The soft-thinking maths (DESIGN §4) against hand-computed tensors."""

import math

import pytest
import torch

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.draws import RowDraws

P4 = torch.tensor([[0.1, 0.2, 0.3, 0.4]])  # token 3 most likely
LOGITS4 = P4.log()


def params(batch=1, *, temperature=1.0, top_k=C.TOP_K_ALL, top_p=1.0, min_p=0.0, max_topk=4):
    full = lambda v, dtype=torch.float32: torch.full((batch,), v, dtype=dtype)  # noqa: E731
    return dict(temperature=full(temperature), top_k=full(top_k, torch.int64), top_p=full(top_p),
                min_p=full(min_p), max_topk=full(max_topk, torch.int64))


def test_step1_temperature_scales_logits():
    probs, log_probs = C.scaled_probs(LOGITS4, torch.tensor([2.0]))
    expected = P4.sqrt() / P4.sqrt().sum()
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(log_probs, expected.log())


def test_step2_entropy_in_nats():
    assert C.entropy(torch.full((1, 8), 1 / 8)).item() == pytest.approx(math.log(8))
    assert C.entropy(torch.tensor([[0.0, 1.0, 0.0]])).item() == 0.0
    expected = -sum(p * math.log(p) for p in (0.1, 0.2, 0.3, 0.4))
    assert C.entropy(P4).item() == pytest.approx(expected)


@pytest.mark.parametrize("top_k, top_p, min_p, expected", [
    (C.TOP_K_ALL, 1.0, 0.0, [1, 1, 1, 1]),
    (2, 1.0, 0.0, [1, 1, 0, 0]),
    (C.TOP_K_ALL, 0.5, 0.0, [1, 1, 0, 0]),   # mass before: 0, .4, .7, .9
    (C.TOP_K_ALL, 0.41, 0.0, [1, 1, 0, 0]),  # the token that crosses top_p stays
    (C.TOP_K_ALL, 0.39, 0.0, [1, 0, 0, 0]),
    (2, 0.5, 0.0, [1, 0, 0, 0]),             # top-p on the top-k-renormalised mass: .4/.7 > .5
    (C.TOP_K_ALL, 1.0, 0.5, [1, 1, 1, 0]),   # drop p < 0.5 * 0.4
])
def test_step3_prefix_cuts(top_k, top_p, min_p, expected):
    sorted_probs = P4.flip(-1)
    keep = C.prefix_keep_mask(sorted_probs, torch.tensor([top_k]), torch.tensor([top_p]), torch.tensor([min_p]))
    assert keep.int().tolist() == [expected]


def test_step5_concept_token_keeps_max_topk_renormalised():
    token = C.concept_token(LOGITS4, **params(max_topk=2), k_max=2, fetch_k=4)
    assert token.ids.tolist() == [[3, 2]]
    torch.testing.assert_close(token.weights, torch.tensor([[0.4 / 0.7, 0.3 / 0.7]]))


def test_rows_have_their_own_parameters():
    logits = LOGITS4.repeat(2, 1)
    p = params(2)
    p["max_topk"] = torch.tensor([1, 3])
    token = C.concept_token(logits, **p, k_max=3, fetch_k=4)
    torch.testing.assert_close(token.weights, torch.tensor([[1.0, 0, 0], [0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9]]))


def test_fetching_a_prefix_equals_the_full_vocabulary():
    torch.manual_seed(0)
    logits = torch.randn(6, 1000) * 3
    p = dict(temperature=torch.tensor([0.5, 1.0, 1.3, 0.7, 1.0, 0.9]),
             top_k=torch.tensor([C.TOP_K_ALL, 20, 3, C.TOP_K_ALL, 50, 7]),
             top_p=torch.tensor([0.9, 1.0, 0.8, 0.95, 0.3, 1.0]),
             min_p=torch.tensor([0.001, 0.0, 0.05, 0.01, 0.0, 0.2]),
             max_topk=torch.tensor([10, 5, 8, 1, 12, 4]))
    fetch = C.required_fetch_k(1000, 12, [20, 3, 50, 7], full_support=False)
    assert fetch == 50
    short = C.concept_token(logits, **p, k_max=12, fetch_k=fetch)
    full = C.concept_token(logits, **p, k_max=12, fetch_k=1000)
    assert torch.equal(short.ids[short.weights > 0], full.ids[full.weights > 0])
    torch.testing.assert_close(short.weights, full.weights)


def rows(n: int) -> RowDraws:
    """n rows with seeds 0..n-1, all at one position: the draws' statistics across seeds."""
    return RowDraws(torch.arange(n), torch.full((n,), 7))


def test_dirichlet_noise_statistics():
    torch.manual_seed(1)
    weights = torch.tensor([[0.5, 0.3, 0.2, 0.0]]).repeat(40000, 1)
    noisy = C.dirichlet_noise(weights, torch.full((40000,), 2.0), rows(40000))
    assert (noisy[:, 3] == 0).all(), "tokens outside the support stay out"
    torch.testing.assert_close(noisy.sum(-1), torch.ones(40000))
    # Dir(alpha * p) has mean p and variance p (1 - p) / (alpha + 1).
    torch.testing.assert_close(noisy.mean(0)[:3], torch.tensor([0.5, 0.3, 0.2]), atol=4e-3, rtol=0)
    p = torch.tensor([0.5, 0.3, 0.2])
    torch.testing.assert_close(noisy.var(0)[:3], p * (1 - p) / 3, atol=2e-3, rtol=0)


def test_gumbel_softmax_noise_statistics():
    torch.manual_seed(2)
    n = 40000
    weights = torch.tensor([[0.6, 0.3, 0.1, 0.0]]).repeat(n, 1)
    noisy = C.gumbel_softmax_noise(weights, torch.full((n,), 1.0), rows(n))
    assert (noisy[:, 3] == 0).all()
    # Gumbel-max: the noisy argmax is token i with probability w_i.
    frequencies = torch.bincount(noisy.argmax(-1), minlength=4).float() / n
    torch.testing.assert_close(frequencies, torch.tensor([0.6, 0.3, 0.1, 0.0]), atol=8e-3, rtol=0)
    # A small tau sharpens towards one-hot, a large one flattens.
    sharp = C.gumbel_softmax_noise(weights[:1000], torch.full((1000,), 0.05), rows(1000))
    assert sharp.max(-1).values.mean() > 0.95


def test_gumbel_noise_in_concept_token_is_resorted():
    torch.manual_seed(3)
    logits = LOGITS4.repeat(500, 1)
    p = params(500, max_topk=3)
    kind = torch.full((500,), C.NOISE_GUMBEL)
    token = C.concept_token(logits, **p, k_max=3, fetch_k=4, noise_kind=kind, noise_param=torch.full((500,), 0.5))
    assert (token.weights[:, :-1] >= token.weights[:, 1:]).all()
    assert set(token.ids[:, 0].tolist()) == {1, 2, 3}, "noise lets other top tokens lead"
    torch.testing.assert_close(token.weights.sum(-1), torch.ones(500))


def test_sample_tokens_greedy_and_distribution():
    torch.manual_seed(4)
    n = 20000
    logits = LOGITS4.repeat(n, 1)
    p = params(n)
    del p["max_topk"]
    sampled = C.sample_tokens(logits, **p, fetch_k=4)
    frequencies = torch.bincount(sampled, minlength=4).float() / n
    torch.testing.assert_close(frequencies, P4[0], atol=0.012, rtol=0)
    p["temperature"] = torch.zeros(n)
    assert (C.sample_tokens(logits, **p, fetch_k=4) == 3).all()
    p["temperature"], p["top_p"] = torch.ones(n), torch.full((n,), 0.5)
    assert set(C.sample_tokens(logits, **p, fetch_k=4).tolist()) == {2, 3}


def test_sample_vocabulary_follows_the_min_p_kept_distribution():
    n = 20000
    probs = torch.tensor([0.0, 0.5, 0.002, 0.0, 0.3, 0.198])
    draws = RowDraws(torch.full((n,), 11), torch.arange(n))
    uniform = draws.uniform(stream=4)
    sampled = C.sample_vocabulary(probs.repeat(n, 1), torch.full((n,), 0.01), uniform)
    # min_p 0.01 of the peak 0.5 drops the 0.002 token; zero-mass tokens are never drawn.
    kept = torch.tensor([0.0, 0.5, 0.0, 0.0, 0.3, 0.198]) / 0.998
    frequencies = torch.bincount(sampled, minlength=6).float() / n
    torch.testing.assert_close(frequencies, kept, atol=0.012, rtol=0)
    assert set(sampled.tolist()) == {1, 4, 5}
    # Each draw is the inverse of the cumulative distribution at its own uniform.
    upper = kept.cumsum(0)
    lower = upper - kept
    for u, token in zip(uniform[:200].tolist(), sampled[:200].tolist()):
        assert lower[token] - 1e-6 <= u <= upper[token] + 1e-6
    # The extremes of the uniform land on the first and the last kept token.
    ends = C.sample_vocabulary(probs.repeat(2, 1), torch.full((2,), 0.01), torch.tensor([1e-9, 1.0]))
    assert ends.tolist() == [1, 5]


def test_step6_mixed_embedding():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ids = torch.tensor([[0, 2]])
    weights = torch.tensor([[0.25, 0.75]])
    mixed = C.mix_embeddings(table[ids], weights)
    torch.testing.assert_close(mixed, torch.tensor([[1.0, 0.75]]))
