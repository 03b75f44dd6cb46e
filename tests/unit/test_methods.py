"""The methods added through the seam (methods/): each step against its paper's rule,
computed here row by row from the logits and the row's own seeded draws."""

import pytest
import torch
from request_settings import request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.draws import STREAM_THINKING_SAMPLE, RowDraws
from sglang_soft_thinking.geometry import build_geometry
from sglang_soft_thinking.methods import NAMES, method_id
from sglang_soft_thinking.methods.base import EXTRA_SAMPLE_STREAMS
from sglang_soft_thinking.phases import KIND_THINK
from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB, K_MAX, HIDDEN = 40, 8, 6
THINK_ROUTER, MULTIPLEX, DISCRETE = method_id("think_router"), method_id("multiplex"), method_id("discrete")


def settings(seed: int, **overrides):
    return request_settings(seed=seed, think_end_ids=[VOCAB - 1], **overrides)


def thinking_sample(logits, s, position: int, stream: int = STREAM_THINKING_SAMPLE) -> int:
    """Plain decoding's sample with the thinking settings, over the whole sorted vocabulary."""
    draws = RowDraws(torch.tensor([s.seed]), torch.tensor([position]))
    return C.sample_tokens(logits.unsqueeze(0), temperature=torch.tensor([s.temperature]),
                           top_k=torch.tensor([s.top_k]), top_p=torch.tensor([s.top_p]),
                           min_p=torch.tensor([s.min_p]), fetch_k=VOCAB, draws=draws, stream=stream).item()


def run_step(requests, logits, position=11, hidden=None):
    """One step of ``requests``; with ``hidden`` ([N, HIDDEN], the rows' final hidden
    states) the table also serves methods that feed vectors, over a random embedding."""
    rows = list(range(len(requests)))
    table = SoftThinkingTable(len(rows), K_MAX, "cpu")
    geometry = None
    if hidden is not None:
        table.ensure_vectors(HIDDEN)
        table.store_hidden(torch.arange(len(rows)), hidden)
        w_in, w_out = torch.randn(2, VOCAB, HIDDEN, generator=torch.Generator().manual_seed(3))
        geometry = build_geometry(lambda ids: w_in[ids], w_out, w_in, VOCAB)
    table.admit(rows, requests)
    soft = group_soft_rows(rows, requests, VOCAB)
    order = torch.tensor(soft.index)
    result = soft_step(table, order, logits[order], soft, torch.full((len(rows),), position), geometry=geometry)
    return table, {row: place for place, row in enumerate(soft.index)}, result


def peaked(top: int, height: float) -> torch.Tensor:
    logits = torch.linspace(0, 1, VOCAB)
    logits[top] = height
    return logits


def test_think_router_routes_on_the_largest_probability():
    # Row 0 is confident (p_max about 0.9), row 1 is not (p_max about 0.1): tau 0.5 routes
    # row 0 latent (its concept token, argmax written) and row 1 discrete (a sample, fed itself).
    logits = torch.stack([peaked(3, 6.0), peaked(3, 1.2)])
    requests = [settings(1, method=THINK_ROUTER, tau=0.5, max_topk=4, temperature=1.0),
                settings(2, method=THINK_ROUTER, tau=0.5, max_topk=4, temperature=1.0, top_k=10)]
    p_max = torch.softmax(logits, dim=-1).max(dim=-1).values
    assert p_max[0] > 0.5 > p_max[1]
    table, place, result = run_step(requests, logits)
    latent, discrete = place[0], place[1]
    concept = C.concept_token(logits[:1], temperature=torch.tensor([1.0]), top_k=torch.tensor([C.TOP_K_ALL]),
                              top_p=torch.tensor([1.0]), min_p=torch.tensor([0.0]), max_topk=torch.tensor([4]),
                              k_max=4, fetch_k=VOCAB)
    torch.testing.assert_close(result.weights[latent, :4], concept.weights[0])
    assert result.tokens[latent] == 3 and table.has_concept[0]
    sampled = thinking_sample(logits[1], requests[1], 11)
    assert result.tokens[discrete] == sampled and result.ids[discrete, 0] == sampled
    assert result.weights[discrete].tolist() == [1.0] + [0.0] * (result.weights.shape[1] - 1)
    assert not table.has_concept[1]
    assert (result.kinds == KIND_THINK).all()


@pytest.mark.parametrize("merge", ["weighted", "uniform"])
def test_multiplex_merges_its_draws(merge):
    torch.manual_seed(4)
    logits = 2 * torch.randn(3, VOCAB)
    requests = [settings(20 + i, method=MULTIPLEX, width=w, merge=merge, temperature=1.3, top_k=top_k)
                for i, (w, top_k) in enumerate([(3, C.TOP_K_ALL), (5, 6), (1, C.TOP_K_ALL)])]
    _, place, result = run_step(requests, logits)
    for row, s in enumerate(requests):
        width = s.width
        draws = [thinking_sample(logits[row], s, 11, STREAM_THINKING_SAMPLE if j == 0 else EXTRA_SAMPLE_STREAMS + j)
                 for j in range(width)] if s.top_k < C.TOP_K_ALL else None
        got = {int(i): float(w) for i, w in zip(result.ids[place[row]], result.weights[place[row]]) if w > 0}
        pi = torch.softmax(logits[row].double() / s.temperature, dim=-1)
        if draws is not None:  # sorted path: each draw is plain decoding's sample of its own stream
            expected = {}
            for token in draws:
                expected[token] = expected.get(token, 0.0) + (pi[token].item() if merge == "weighted" else 1.0)
            total = sum(expected.values())
            assert got == pytest.approx({t: w / total for t, w in expected.items()}, abs=1e-5)
            assert result.tokens[place[row]] == draws[0]
        else:  # unsorted path: the merged weights follow from the counts of the distinct draws
            counts = {t: (w / pi[t].item() if merge == "weighted" else w) for t, w in got.items()}
            scale = width / sum(counts.values())
            assert all(abs(c * scale - round(c * scale)) < 1e-4 and round(c * scale) >= 1 for c in counts.values())
            assert result.tokens[place[row]].item() in got
        weights = result.weights[place[row]]
        assert torch.isclose(weights.sum(), torch.tensor(1.0)) and (weights[:-1] >= weights[1:]).all()


def test_discrete_thinking_samples_writes_and_feeds_its_token():
    torch.manual_seed(5)
    logits = 2 * torch.randn(2, VOCAB)
    requests = [settings(30, method=DISCRETE, temperature=0.8, top_k=12, min_p=0.05),
                settings(31, method=DISCRETE, temperature=1.0)]
    table, place, result = run_step(requests, logits)
    sampled = thinking_sample(logits[0], requests[0], 11)
    assert result.tokens[place[0]] == sampled and result.ids[place[0], 0] == sampled
    assert result.weights[place[0], 0] == 1.0 and result.weights[place[0], 1:].sum() == 0
    assert not table.has_concept[0] and not table.has_concept[1]
    torch.testing.assert_close(result.entropy[place[0]],
                               C.entropy(torch.softmax(logits[0] / 0.8, dim=-1)), atol=1e-5, rtol=1e-5)


def test_every_method_shares_one_step_with_the_others():
    """One request of every method in one batch gives what each gives alone."""
    torch.manual_seed(6)
    logits = 2 * torch.randn(len(NAMES), VOCAB)
    hidden = torch.randn(len(NAMES), HIDDEN)
    requests = [settings(40 + m, method=m, max_topk=4, temperature=0.9) for m in range(len(NAMES))]
    _, place, together = run_step(requests, logits, hidden=hidden)
    for row, s in enumerate(requests):
        _, _, alone = run_step([s], logits[row:row + 1], hidden=hidden[row:row + 1])
        width = alone.weights.shape[1]
        assert together.tokens[place[row]] == alone.tokens[0]
        torch.testing.assert_close(together.weights[place[row], :width], alone.weights[0])
        assert together.weights[place[row], width:].sum() == 0


def test_a_method_parameter_of_an_unsupported_type_has_no_silent_column():
    from pydantic import BaseModel

    from sglang_soft_thinking.methods.base import Method
    from sglang_soft_thinking.settings import param_columns

    class Odd(BaseModel):
        scale: float | None = None

    class OddMethod(Method):
        name = "odd"
        Params = Odd

    with pytest.raises(TypeError, match="odd.scale"):
        param_columns(OddMethod())
