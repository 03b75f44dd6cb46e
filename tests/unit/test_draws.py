"""Seeded draws (DESIGN §4, "Seeds"): a function of (seed, position) only."""

import torch
from request_settings import all_rows, request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.draws import RETRY_FROM_WIDTH, gammas, seed_of, uniforms
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB = 32


def test_uniforms_repeat_and_do_not_depend_on_the_batch():
    seeds, positions = torch.tensor([11, 12, 13, 11]), torch.tensor([5, 5, 9, 6])
    batch = uniforms(seeds, positions, 6, stream=2)
    torch.testing.assert_close(batch, uniforms(seeds, positions, 6, stream=2), rtol=0, atol=0)
    # Row (13, 9) alone, and in another order with other rows, draws the same numbers.
    alone = uniforms(torch.tensor([13]), torch.tensor([9]), 6, stream=2)
    shuffled = uniforms(torch.tensor([99, 13, 11]), torch.tensor([1, 9, 5]), 6, stream=2)
    torch.testing.assert_close(alone[0], batch[2], rtol=0, atol=0)
    torch.testing.assert_close(shuffled[1], batch[2], rtol=0, atol=0)
    torch.testing.assert_close(shuffled[2], batch[0], rtol=0, atol=0)
    # Another seed, position or stream draws other numbers.
    assert not torch.equal(batch[0], batch[3]) and not torch.equal(batch[0], batch[1])
    assert not torch.equal(batch, uniforms(seeds, positions, 6, stream=3))
    assert ((batch > 0) & (batch < 1)).all()


def test_uniforms_are_uniform():
    u = uniforms(torch.arange(20000), torch.full((20000,), 3), 4, stream=1)
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.var().item() - 1 / 12) < 0.005
    histogram = torch.histc(u, bins=10, min=0, max=1) / u.numel()
    assert (histogram - 0.1).abs().max() < 0.01


def test_a_seed_comes_from_the_request_or_its_id():
    assert seed_of(7, "abc") == 7
    assert seed_of(None, "abc") == seed_of(None, "abc") != seed_of(None, "abd")
    assert 0 <= seed_of(None, "x" * 100) < 1 << 63 and seed_of(-1, "a") >= 0


def settings(seed: int, noise_kind: int) -> RequestSettings:
    return request_settings(
        max_topk=4, max_thinking_tokens=2, noise_kind=noise_kind,
        noise_param=0.5 if noise_kind == C.NOISE_GUMBEL else 1.0, after_temperature=1.0,
        think_end_ids=[31], seed=seed)


def run_request(position_rows, noise_kind, neighbours):
    """One seeded request's concept tokens and answer tokens, with other rows beside it."""
    table = SoftThinkingTable(8, k_max=4, device="cpu")
    row = position_rows
    others = [r for r in range(8) if r != row][:neighbours]
    table.admit([row, *others], [settings(42, noise_kind)] + [settings(1000 + r, noise_kind) for r in others])
    soft = all_rows(len(others) + 1, 4, VOCAB, any_noise=True)
    torch.manual_seed(0)
    logits = torch.randn(6, VOCAB)
    rows = torch.tensor([row, *others])
    seen = []
    for step in range(6):
        batch_logits = torch.cat([logits[step:step + 1], torch.randn(len(others), VOCAB)])
        positions = torch.full((len(rows),), 20 + step)
        result = soft_step(table, rows, batch_logits, soft, positions)
        seen.append((result.tokens[0].item(), result.weights[0].tolist()))
    return seen


def test_a_seeded_request_draws_alike_whatever_shares_its_batch():
    for kind in (C.NOISE_GUMBEL, C.NOISE_DIRICHLET):
        alone = run_request(3, kind, neighbours=0)
        assert run_request(3, kind, neighbours=5) == alone
        assert run_request(6, kind, neighbours=2) == alone, "another row, other neighbours"


def test_gamma_draws_have_the_gamma_mean_and_variance():
    # Gamma(a, 1) has mean a and variance a; a < 1 goes through the u^(1/a) boost.
    n = 60000
    for a in (0.05, 0.7, 1.0, 3.5):
        draws = gammas(torch.full((n, 1), a), torch.arange(n), torch.full((n,), 4))[:, 0]
        assert (draws >= 0).all()
        assert abs(draws.mean().item() - a) < 0.03 * max(a, 0.3), a
        assert abs(draws.var().item() - a) < 0.06 * max(a, 0.3), a


def test_a_wide_row_retries_only_rejected_columns_and_draws_as_a_narrow_one():
    # From RETRY_FROM_WIDTH columns on, later tries run on the first try's rejects only;
    # every column must still take the same value as when all tries run on all columns.
    torch.manual_seed(5)
    width = RETRY_FROM_WIDTH + 904
    concentration = torch.rand(3, width) * torch.tensor([[0.01], [1.0], [40.0]])
    seeds, positions = torch.tensor([1, 2, 3]), torch.tensor([7, 7, 8])
    wide = gammas(concentration, seeds, positions)
    narrow = gammas(concentration[:, :RETRY_FROM_WIDTH - 1], seeds, positions)
    torch.testing.assert_close(wide[:, :RETRY_FROM_WIDTH - 1], narrow, rtol=0, atol=0)
    assert (wide > 0).any(dim=1).all()
