"""SeLaR (methods/selar.py) and the shared soft/discrete gate (gate.py), step by step
against the paper's rule computed here in float64 from the logits, row by row."""

import math

import pytest
import torch
from pydantic import ValidationError
from request_settings import request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking import gate
from sglang_soft_thinking.draws import STREAM_THINKING_SAMPLE, RowDraws
from sglang_soft_thinking.methods import method_id
from sglang_soft_thinking.methods.base import Vocabulary
from sglang_soft_thinking.params import SoftThinkingParams
from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB, K_MAX = 40, 8
SELAR, THINK_ROUTER = method_id("selar"), method_id("think_router")


def settings(seed: int, **overrides):
    """A finite top_k (the whole vocabulary) draws the thinking sample from the sorted
    prefix, which :func:`thinking_sample` repeats."""
    return request_settings(seed=seed, think_end_ids=[VOCAB - 1], **{"top_k": VOCAB, **overrides})


def run_step(requests, logits, position=11, vocabulary=None):
    rows = list(range(len(requests)))
    table = SoftThinkingTable(len(rows), K_MAX, "cpu")
    table.admit(rows, requests)
    soft = group_soft_rows(rows, requests, VOCAB)
    order = torch.tensor(soft.index)
    result = soft_step(table, order, logits[order], soft, torch.full((len(rows),), position),
                       vocabulary=vocabulary)
    return table, {row: place for place, row in enumerate(soft.index)}, result


def thinking_sample(logits, s, position: int = 11) -> int:
    """Plain decoding's sample with the thinking settings (the token every SeLaR step writes)."""
    draws = RowDraws(torch.tensor([s.seed]), torch.tensor([position]))
    return C.sample_tokens(logits.unsqueeze(0), temperature=torch.tensor([s.temperature]),
                           top_k=torch.tensor([s.top_k]), top_p=torch.tensor([s.top_p]),
                           min_p=torch.tensor([s.min_p]), fetch_k=VOCAB, draws=draws,
                           stream=STREAM_THINKING_SAMPLE).item()


def paper_step(logits: torch.Tensor, temperature: float, k: int, top_k: int = VOCAB):
    """SeLaR's quantities for one row, from the paper: the top-k ids (most likely first),
    their renormalised probabilities q and the normalised entropy H (float64)."""
    p = torch.softmax(logits.double() / temperature, dim=-1)
    probs, ids = p.sort(descending=True)
    q = probs[:k].clone()
    q[min(top_k, k):] = 0  # a thinking top_k under k cuts the rest
    q = q / q.sum()
    h = -sum(x * math.log(x) for x in q.tolist() if x > 0) / math.log(k)
    return ids[:k], q, h


def flat_logits(top: int, spread: float) -> torch.Tensor:
    """Three near-equal leaders (high entropy) when ``spread`` is small, one when large."""
    logits = torch.linspace(0.5, 0.0, VOCAB)  # the rest distinct, so the top-k has no ties
    logits[top], logits[top + 1], logits[top + 2] = 3.0 + spread, 3.0, 2.9
    return logits


def test_an_uncertain_step_feeds_the_top_k_mixture_pushed_away_from_its_top_token():
    logits = torch.stack([flat_logits(3, 0.05), flat_logits(10, 6.0), flat_logits(20, 0.3)])
    requests = [settings(1, method=SELAR, temperature=1.0),
                settings(2, method=SELAR, temperature=1.0),
                settings(3, method=SELAR, temperature=0.7, selar_topk=4, selar_push=0.5, selar_threshold=0.2)]
    table, place, result = run_step(requests, logits)
    embedding = torch.randn(VOCAB, 16, dtype=torch.float64)
    for row, s in enumerate(requests):
        ids, q, h = paper_step(logits[row], s.temperature, s.selar_topk)
        at = place[row]
        assert result.tokens[at] == thinking_sample(logits[row], s)  # written: the sampled token
        if h < s.selar_threshold:
            assert row == 1 and h < 0.1
            assert result.ids[at, 0] == result.tokens[at] and result.weights[at, 1:].abs().sum() == 0
            assert not table.has_concept[row]
            continue
        assert h > 0.5 and table.has_concept[row]
        k = s.selar_topk
        assert result.ids[at, :k].tolist() == ids.tolist()
        # The fed embedding is e + push * H * (e - E[top1]), e = sum q_i E[id_i].
        mixture = (q.unsqueeze(1) * embedding[ids]).sum(0)
        expected = mixture + s.selar_push * h * (mixture - embedding[ids[0]])
        fed = (result.weights[at, :k].double().unsqueeze(1) * embedding[result.ids[at, :k]]).sum(0)
        torch.testing.assert_close(fed, expected, atol=1e-5, rtol=1e-5)
        assert abs(result.weights[at].sum().item() - 1) < 1e-5


def test_the_top_token_weighs_less_than_nothing_when_the_step_is_flat_enough():
    logits = flat_logits(3, 0.0)  # q_top1 about 1/3 < H / (1 + H) about 1/2
    _, place, result = run_step([settings(5, method=SELAR)], logits.unsqueeze(0))
    _, q, h = paper_step(logits, 1.0, 3)
    weights = result.weights[place[0], :3].double()
    assert weights[0] < 0
    torch.testing.assert_close(weights, (1 + h) * q - torch.tensor([h, 0, 0], dtype=torch.float64),
                               atol=1e-6, rtol=1e-6)


def test_a_thinking_top_k_under_k_cuts_the_mixture():
    logits = flat_logits(3, 0.0)
    s = settings(6, method=SELAR, top_k=2)
    _, place, result = run_step([s], logits.unsqueeze(0))
    _, q, h = paper_step(logits, 1.0, 3, top_k=2)
    assert q[2] == 0 and h > 0.5
    torch.testing.assert_close(result.weights[place[0], :3].double(),
                               (1 + h) * q - torch.tensor([h, 0, 0], dtype=torch.float64), atol=1e-6, rtol=1e-6)


def test_each_row_decides_for_itself_whatever_its_batch():
    """The authors' code feeds every row soft once any row is uncertain; here a confident
    row stays discrete beside an uncertain one, and each row's step equals its step alone."""
    logits = torch.stack([flat_logits(3, 0.05), flat_logits(10, 6.0)])
    requests = [settings(7, method=SELAR), settings(8, method=SELAR)]
    table, place, together = run_step(requests, logits)
    assert table.has_concept[0] and not table.has_concept[1]
    for row, s in enumerate(requests):
        _, _, alone = run_step([s], logits[row:row + 1])
        assert together.tokens[place[row]] == alone.tokens[0]
        torch.testing.assert_close(together.weights[place[row], :3], alone.weights[0, :3])


def test_a_sampled_maths_token_is_fed_itself_however_uncertain_the_step():
    logits = flat_logits(3, 0.0).unsqueeze(0)
    s = settings(9, method=SELAR)
    sampled = thinking_sample(logits[0], s)
    mask = torch.zeros(VOCAB, dtype=torch.bool)
    mask[sampled] = True
    table, place, result = run_step([s], logits, vocabulary=Vocabulary(masks={"selar_math": mask}))
    assert result.ids[place[0], 0] == sampled and result.weights[place[0], 1:].abs().sum() == 0
    assert not table.has_concept[0]
    mask[:] = False
    mask[(sampled + 1) % VOCAB] = True  # another token is maths: this step mixes
    table, _, _ = run_step([s], logits, vocabulary=Vocabulary(masks={"selar_math": mask}))
    assert table.has_concept[0]


def test_selar_takes_the_gates_other_rule():
    """p_max above the threshold (ThinkRouter's rule) mixes the confident row instead."""
    logits = torch.stack([flat_logits(3, 0.05), flat_logits(10, 6.0)])
    requests = [settings(10 + i, method=SELAR, selar_statistic="p_max", selar_threshold=0.6) for i in range(2)]
    table, _, _ = run_step(requests, logits)
    assert not table.has_concept[0] and table.has_concept[1]


@pytest.mark.parametrize("statistic,polarity", [("topk_entropy", "above"), ("topk_entropy", "below"),
                                                ("p_max", "below")])
def test_think_router_runs_every_gate_rule(statistic, polarity):
    logits = torch.stack([flat_logits(3, 0.05), flat_logits(10, 6.0)])
    threshold = 0.5
    requests = [settings(20 + i, method=THINK_ROUTER, tau=threshold, router_statistic=statistic,
                         router_polarity=polarity, max_topk=4) for i in range(2)]
    table, _, _ = run_step(requests, logits)
    for row in range(2):
        ids, _, h = paper_step(logits[row], 1.0, 3)
        p_max = torch.softmax(logits[row].double(), dim=-1).max().item()
        value = h if statistic == "topk_entropy" else p_max
        expected = value >= threshold if polarity == "above" else value < threshold
        assert bool(table.has_concept[row]) == expected


def test_the_gates_statistics_match_their_definitions():
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.9, 0.05, 0.03, 0.02]])
    keep = torch.tensor([[True, True, True, False], [True, True, False, False]])
    mix, weights, entropy = gate.decide(probs, keep, k=torch.tensor([3, 3]), kind=torch.tensor([1, 0]),
                                        threshold=torch.tensor([0.5, 0.95]), polarity=torch.tensor([0, 1]))
    q0 = torch.tensor([0.5, 0.3, 0.1]) / 0.9
    h0 = -(q0 * q0.log()).sum() / math.log(3)
    q1 = torch.tensor([0.9, 0.05]) / 0.95
    h1 = -(q1 * q1.log()).sum() / math.log(3)
    torch.testing.assert_close(entropy, torch.stack([h0, h1]))
    torch.testing.assert_close(weights[0, :3], q0)
    assert weights[0, 3] == 0 and weights[1, 2:].sum() == 0
    assert mix.tolist() == [bool(h0 >= 0.5), 0.9 < 0.95]


@pytest.mark.parametrize("field,value", [("selar_topk", 1), ("selar_topk", 10_000), ("selar_threshold", 1.5),
                                         ("selar_push", -1.0), ("selar_statistic", "mean"),
                                         ("router_polarity", "sideways"), ("router_topk", 1)])
def test_a_bad_gate_parameter_is_refused_naming_it(field, value):
    with pytest.raises(ValidationError) as error:
        SoftThinkingParams(method="selar", **{field: value})
    assert field in str(error.value)


def test_a_negative_weight_is_kept_in_the_records():
    from sglang_soft_thinking.phases import KIND_THINK
    from sglang_soft_thinking.records import RequestRecords, StepRecords
    from sglang_soft_thinking.step import StepResult
    from sglang_soft_thinking.table import SNAPSHOT_COLUMNS

    records = RequestRecords(traced=True)
    weights = [1.25, -0.25, 0.0]
    result = StepResult(tokens=torch.tensor([7]), kinds=torch.tensor([KIND_THINK]), entropy=torch.tensor([1.0]),
                        ids=torch.tensor([[4, 5, 6]]), weights=torch.tensor([weights]), pending=torch.tensor([0]),
                        snapshot=torch.zeros(1, len(SNAPSHOT_COLUMNS)))
    records.append(StepRecords(result, {0: 0})[0])
    assert records.input_of(0) == ([4, 5], [1.25, -0.25])
