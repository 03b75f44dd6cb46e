"""Soft rows grouped by what they fetch (plan.py), and the grouped one-pass step against the
maths of DESIGN §4 computed row by row over the whole vocabulary."""

import pytest
import torch
from request_settings import CONCEPT, MIXTURE_OF_INPUTS, SWITCH, request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.draws import RowDraws
from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.phases import KIND_ANSWER, KIND_THINK, KIND_THINK_END, PHASE_ANSWER
from sglang_soft_thinking.settings import RequestSettings
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import RowState, SoftThinkingTable

VOCAB = 200
K_MAX = 8
UNLIMITED = C.TOP_K_ALL

# Mixed per-row settings: narrow rows, one with no after-thinking top-k limit, Dirichlet
# noise with and without a thinking top-k, Gumbel noise, min-p and top-p cuts.
MIXED = [
    dict(max_topk=3, after_top_k=20, after_temperature=0.7),
    dict(max_topk=5, top_k=40, top_p=0.9, after_top_k=UNLIMITED, after_temperature=0.9, after_top_p=0.8),
    dict(max_topk=4, noise_kind=C.NOISE_DIRICHLET, noise_param=2.0, after_top_k=10, after_temperature=1.0),
    dict(max_topk=6, top_k=30, noise_kind=C.NOISE_DIRICHLET, noise_param=0.5, after_top_k=5,
         after_temperature=0.5),
    dict(max_topk=8, noise_kind=C.NOISE_GUMBEL, noise_param=0.7, min_p=0.01, after_top_k=30,
         after_temperature=1.2, after_min_p=0.05),
    dict(max_topk=2, temperature=0.6, after_top_k=1, after_temperature=0.8),
]


def settings(seed: int, **overrides) -> RequestSettings:
    return request_settings(seed=seed, think_end_ids=[VOCAB - 1], **overrides)


def test_rows_that_need_the_whole_vocabulary_are_a_group_of_their_own():
    requests = [settings(i, **overrides) for i, overrides in enumerate(MIXED)]
    soft = group_soft_rows([10, 11, 12, 13, 14, 15], requests, VOCAB)
    # No after-thinking top-k limit (11), then Dirichlet noise with no thinking top-k (12).
    assert soft.index == [10, 13, 14, 15, 11, 12]
    narrow, wide, wide_dirichlet = soft.groups
    assert [(g.start, g.stop) for g in soft.groups] == [(0, 4), (4, 5), (5, 6)]
    assert narrow.fetch_k_think == 30 and narrow.fetch_k_answer == 30 and narrow.k_used == 8
    assert wide.fetch_k == VOCAB and wide.k_used == 5 and wide_dirichlet.fetch_k == VOCAB
    # Only the rows that draw a kind of noise pay for it.
    assert narrow.noise_kinds == {C.NOISE_DIRICHLET, C.NOISE_GUMBEL}
    assert wide.noise_kinds == frozenset() and wide_dirichlet.noise_kinds == {C.NOISE_DIRICHLET}
    assert soft.k_used == 8


def test_a_batch_without_wide_rows_fetches_a_short_prefix():
    soft = group_soft_rows([0, 1], [settings(0, max_topk=4, after_top_k=20),
                                    settings(1, max_topk=6, top_k=12, after_top_k=8)], VOCAB)
    (group,) = soft.groups
    assert group.fetch_k_think == 12 and group.fetch_k_answer == 20 and group.fetch_k == 20


def reference_row(logits, s: RequestSettings, position: int):
    """DESIGN §4 for one row over the whole sorted vocabulary, with the row's own draws."""
    draws = RowDraws(torch.tensor([s.seed]), torch.tensor([position]))
    concept = C.concept_token(
        logits.unsqueeze(0), temperature=torch.tensor([s.temperature]), top_k=torch.tensor([s.top_k]),
        top_p=torch.tensor([s.top_p]), min_p=torch.tensor([s.min_p]), max_topk=torch.tensor([s.max_topk]),
        k_max=s.max_topk, fetch_k=VOCAB, noise_kind=torch.tensor([s.noise_kind]),
        noise_param=torch.tensor([s.noise_param]), draws=draws)
    answer = C.sample_tokens(
        logits.unsqueeze(0), temperature=torch.tensor([s.after_temperature]),
        top_k=torch.tensor([s.after_top_k]), top_p=torch.tensor([s.after_top_p]),
        min_p=torch.tensor([s.after_min_p]), fetch_k=VOCAB, draws=draws)
    return concept, answer.item()


@pytest.mark.parametrize("trial", range(5))
def test_the_grouped_step_equals_the_maths_row_by_row(trial):
    torch.manual_seed(trial)
    requests = [settings(100 + 7 * trial + i, **overrides) for i, overrides in enumerate(MIXED)] * 2
    rows = list(range(len(requests)))
    table = SoftThinkingTable(len(rows), K_MAX, "cpu")
    # The second copy of each request is past its thinking: it samples an answer token.
    states = [None] * len(MIXED) + [RowState(phase=PHASE_ANSWER)] * len(MIXED)
    table.admit(rows, requests, states)
    soft = group_soft_rows(rows, requests, VOCAB)
    order = torch.tensor(soft.index)
    logits = 3 * torch.randn(len(rows), VOCAB)
    positions = torch.arange(len(rows)) + 17
    result = soft_step(table, order, logits[order], soft, positions[order])
    for place, row in enumerate(soft.index):
        s = requests[row]
        concept, answer = reference_row(logits[row], s, positions[row].item())
        k = s.max_topk
        torch.testing.assert_close(result.weights[place, :k], concept.weights[0])
        assert result.weights[place, k:].abs().sum() == 0
        support = int((concept.weights[0] > 0).sum())  # past it, zero weights in any order
        assert result.ids[place, :support].tolist() == concept.ids[0, :support].tolist()
        torch.testing.assert_close(result.entropy[place], concept.entropy[0])
        if row < len(MIXED):
            # A written token that is the (one-token) think-end string ends thinking.
            ends = concept.ids[0, 0] == VOCAB - 1
            assert result.kinds[place] == (KIND_THINK_END if ends else KIND_THINK)
            assert result.tokens[place] == concept.ids[0, 0]
        else:
            assert result.kinds[place] == KIND_ANSWER and result.tokens[place] == answer


@pytest.mark.parametrize("trial", range(3))
def test_rows_known_to_be_answering_group_by_their_answer_settings_alone(trial):
    """Past thinking, a row's method, noise and wide thinking support cost nothing: only a
    missing after-thinking top-k still sorts the whole vocabulary; the samples are those of
    the whole-vocabulary maths."""
    torch.manual_seed(trial)
    overrides = [*MIXED,
                 dict(method=SWITCH, max_topk=5, top_p=0.9, noise_kind=C.NOISE_DIRICHLET,
                      noise_param=1.0, after_top_k=20, after_temperature=0.8),
                 dict(method=MIXTURE_OF_INPUTS, max_topk=6, top_p=0.8, after_top_k=UNLIMITED,
                      after_temperature=1.1)]
    requests = [settings(300 + 11 * trial + i, **o) for i, o in enumerate(overrides)]
    rows = list(range(len(requests)))
    table = SoftThinkingTable(len(rows), K_MAX, "cpu")
    table.admit(rows, requests, [RowState(phase=PHASE_ANSWER)] * len(rows))
    soft = group_soft_rows(rows, requests, VOCAB, answering=[True] * len(rows))
    wide = {soft.index[i] for g in soft.groups if g.fetch_k == VOCAB for i in range(g.start, g.stop)}
    assert wide == {row for row in rows if requests[row].after_top_k >= UNLIMITED}
    assert all(not g.noise_kinds and not g.methods and not g.samples_vocabulary for g in soft.groups)
    # Not known to be answering, the same rows keep their thinking needs.
    assert len(group_soft_rows(rows, requests, VOCAB).groups) == 3
    order = torch.tensor(soft.index)
    logits = 3 * torch.randn(len(rows), VOCAB)
    positions = torch.arange(len(rows)) + 40
    result = soft_step(table, order, logits[order], soft, positions[order])
    for place, row in enumerate(soft.index):
        _, answer = reference_row(logits[row], requests[row], positions[row].item())
        assert result.kinds[place] == KIND_ANSWER and result.tokens[place] == answer


def test_a_seeded_row_steps_alike_in_any_group_and_any_order():
    torch.manual_seed(0)
    logits = 3 * torch.randn(VOCAB)
    target = settings(5, max_topk=4, top_k=25, noise_kind=C.NOISE_DIRICHLET, noise_param=1.5)
    results = []
    for neighbours in ([], [settings(6, max_topk=8, top_k=120)], [settings(7, after_top_k=UNLIMITED)]):
        requests = [*neighbours, target]
        table = SoftThinkingTable(len(requests), K_MAX, "cpu")
        table.admit(list(range(len(requests))), requests)
        soft = group_soft_rows(list(range(len(requests))), requests, VOCAB)
        order = torch.tensor(soft.index)
        batch_logits = torch.stack([3 * torch.randn(VOCAB) for _ in neighbours] + [logits])
        result = soft_step(table, order, batch_logits[order], soft, torch.full((len(requests),), 9))
        place = soft.index.index(len(requests) - 1)
        results.append((result.ids[place, :4].tolist(), result.weights[place, :4].tolist()))
    assert results[1] == results[0] and results[2] == results[0]


def inverse_cdf_sample(logits, temperature: float, min_p: float, uniform: float) -> int:
    """The first token, in id order, whose cumulative min-p-kept mass reaches ``uniform``
    times the kept mass (float64, a plain loop)."""
    probs = torch.softmax(logits.double() / temperature, dim=-1).tolist()
    kept = [p if p >= min_p * max(probs) else 0.0 for p in probs]
    target, total = uniform * sum(kept), 0.0
    for token, p in enumerate(kept):
        total += p
        if p > 0 and total >= target:
            return token
    return max(i for i, p in enumerate(kept) if p > 0)


def test_a_sampling_method_without_top_k_or_top_p_sorts_only_its_candidates():
    moi, switch = MIXTURE_OF_INPUTS, SWITCH
    free = [settings(0, method=moi, max_topk=4, after_top_k=20),
            settings(1, method=switch, max_topk=6, min_p=0.01, after_top_k=20)]
    (group,) = group_soft_rows([0, 1], free, VOCAB).groups
    assert group.fetch_k == 20 and group.fetch_k_think == 6 and group.samples_vocabulary
    # Top-p ranks the tokens: that row alone sorts the whole vocabulary.
    soft = group_soft_rows([0, 1, 2], [*free, settings(2, method=moi, top_p=0.9, after_top_k=20)], VOCAB)
    narrow, wide = soft.groups
    assert soft.index == [0, 1, 2] and narrow.samples_vocabulary and not wide.samples_vocabulary
    assert wide.fetch_k_think == VOCAB


def test_mixture_of_inputs_rows_step_like_the_maths_row_by_row():
    """Mixture-of-inputs rows, with and without a top-k limit, beside concept rows: the text
    token is the row's own seeded sample, the input its mixture, one column wider."""
    from sglang_soft_thinking.draws import STREAM_THINKING_SAMPLE
    from sglang_soft_thinking.methods.mixture_of_inputs import mixture_of_inputs

    torch.manual_seed(3)
    moi = MIXTURE_OF_INPUTS
    requests = [settings(40, max_topk=K_MAX, after_top_k=20),
                settings(41, method=moi, max_topk=5, beta=1.0, temperature=0.8),
                settings(42, method=moi, max_topk=K_MAX - 1, top_k=12, top_p=0.9, beta=0.5, after_top_k=20),
                settings(43, max_topk=3, noise_kind=C.NOISE_GUMBEL, noise_param=0.5, after_top_k=20)]
    rows = list(range(len(requests)))
    table = SoftThinkingTable(len(rows), K_MAX, "cpu")
    table.admit(rows, requests)
    soft = group_soft_rows(rows, requests, VOCAB)
    assert soft.k_used == K_MAX
    assert [g.methods for g in soft.groups] == [frozenset({CONCEPT, moi}), frozenset({moi})]
    order = torch.tensor(soft.index)
    logits = 3 * torch.randn(len(rows), VOCAB)
    positions = torch.arange(len(rows)) + 5
    result = soft_step(table, order, logits[order], soft, positions[order])
    for place, row in enumerate(soft.index):
        s = requests[row]
        if s.method != moi:
            concept, _ = reference_row(logits[row], s, positions[row].item())
            torch.testing.assert_close(result.weights[place, :s.max_topk], concept.weights[0])
            continue
        draws = RowDraws(torch.tensor([s.seed]), positions[row:row + 1])
        if s.top_k >= UNLIMITED and s.top_p >= 1:
            # No top-k or top-p cut: the inverse of the cumulative distribution, in id order.
            sampled = torch.tensor([inverse_cdf_sample(logits[row], s.temperature, s.min_p,
                                                       draws.uniform(STREAM_THINKING_SAMPLE).item())])
        else:
            sampled = C.sample_tokens(
                logits[row:row + 1], temperature=torch.tensor([s.temperature]), top_k=torch.tensor([s.top_k]),
                top_p=torch.tensor([s.top_p]), min_p=torch.tensor([s.min_p]), fetch_k=VOCAB, draws=draws,
                stream=STREAM_THINKING_SAMPLE)
        top = logits[row].topk(s.max_topk)
        ids, weights, _ = mixture_of_inputs(top.values.unsqueeze(0), top.indices.unsqueeze(0),
                                            torch.tensor([s.max_topk]), sampled, torch.tensor([s.beta]))
        width = s.max_topk + 1
        assert result.tokens[place] == sampled.item() == result.ids[place, 0]
        assert result.kinds[place] == KIND_THINK
        torch.testing.assert_close(result.weights[place, :width], weights[0])
        assert result.ids[place, :width].tolist() == ids[0].tolist()
        assert result.weights[place, width:].abs().sum() == 0
        # The concept token stored for the next input is the mixture.
        torch.testing.assert_close(table.concept_weights[row, :width], weights[0])
