"""The switch method (switch.py) on a hand-worked entropy sequence, and its steps in the table."""

import torch
from request_settings import SWITCH, all_rows, request_settings

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.phases import KIND_METHOD_END, KIND_THINK, PHASE_FORCING
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable
from sglang_soft_thinking.methods.switch import MODE_EXPLICIT as E, MODE_LATENT as L, SwitchState, switch_step

# Worked by hand with window 2: step 0 sets the reference (1.0); step 2 drops below it
# (latent -> explicit, reference 0.8, first switch); steps 3-4 stay explicit (step 3 is
# above 0.8 but inside the window; step 4 is below); step 5 rises above 0.8 after the
# window (explicit -> latent, reference 1.5); step 7 drops below 1.5 (second switch).
ENTROPIES = [1.0, 1.2, 0.8, 0.9, 0.7, 1.5, 1.6, 0.5]
MODES = [L, L, E, E, E, L, L, E]
COUNTS = [0, 0, 1, 1, 1, 1, 1, 2]
REFERENCES = [1.0, 1.0, 0.8, 0.8, 0.8, 1.5, 1.5, 0.5]


def run(entropies, window, cap):
    state = SwitchState(torch.tensor([L]), torch.tensor([0]), torch.tensor([0.0]), torch.tensor([0]))
    seen = []
    for step, h in enumerate(entropies):
        state, capped = switch_step(state, torch.tensor([h]), torch.tensor([step == 0]),
                                    torch.tensor([window]), torch.tensor([cap]))
        seen.append((state.mode.item(), state.count.item(), round(state.reference.item(), 4), capped.item()))
    return seen


def test_modes_follow_the_entropy_trend_and_the_window():
    seen = run(ENTROPIES, window=2, cap=-1)
    assert [s[0] for s in seen] == MODES
    assert [s[1] for s in seen] == COUNTS
    assert [s[2] for s in seen] == REFERENCES
    assert not any(s[3] for s in seen), "no cap"


def test_a_wider_window_keeps_explicit_thinking_longer():
    assert [s[0] for s in run(ENTROPIES, window=5, cap=-1)] == [L, L, E, E, E, E, E, E]


def test_the_cap_fires_on_the_switch_that_reaches_it():
    assert [s[3] for s in run(ENTROPIES, window=2, cap=2)] == [False] * 7 + [True]
    # Past the cap every switch would fire it again; the engine has ended thinking by then.
    assert [s[3] for s in run(ENTROPIES, window=2, cap=1)] == [False, False, True] + [False] * 4 + [True]


def entropy_logits(entropy: float, vocab: int = 8) -> torch.Tensor:
    """Logits over ``vocab`` tokens, token 1 the most likely, whose distribution has roughly
    the given ordering of entropies (a lower ``entropy`` argument, a sharper peak)."""
    logits = torch.zeros(vocab)
    logits[1] = 4.0 / entropy
    logits[2] = 2.0 / entropy
    return logits


def test_explicit_steps_write_and_feed_the_sampled_token_and_the_cap_ends_thinking():
    table = SoftThinkingTable(2, k_max=4, device="cpu")
    # top_k 1: the explicit sample is the most likely token, token 1 (and so is the concept
    # token: the step's mode shows in what is fed, the token or the concept token).
    table.admit([1], [request_settings(method=SWITCH, window_size=2, max_switch_count=2, top_k=1,
                                       max_topk=3, think_end_ids=[6, 7])])
    one = all_rows(1, 3, 8, method=SWITCH)
    modes, kinds = [], []
    for h in ENTROPIES + [1.0]:
        result = soft_step(table, torch.tensor([1]), entropy_logits(h).unsqueeze(0), one)
        mode = table.switch_mode[1].item()
        modes.append(mode)
        kinds.append(result.kinds.item())
        if result.kinds.item() != KIND_THINK:
            continue
        assert result.tokens.item() == 1
        if mode == E:
            assert result.ids[0, 0] == 1 and result.weights[0].tolist() == [1.0, 0.0, 0.0]
            assert not table.has_concept[1], "an explicit step feeds its token itself"
        else:
            # A latent step feeds its concept token; with top_k 1 that is the argmax alone,
            # which is fed as the token itself (the same embedding).
            assert result.ids[0, 0] == 1
            assert bool(table.has_concept[1]) == bool((result.weights[0, 1:] > 0).any())
    assert modes[:8] == MODES
    assert kinds[:8] == [KIND_THINK] * 8 and kinds[8] == KIND_METHOD_END + SWITCH
    assert table.phase[1] == PHASE_FORCING


def run_table(settings, entropies, vocabulary=None, vocab=8):
    """The switch method's steps in the table; returns (token, kind, ids, weights, mode) per step."""
    from sglang_soft_thinking.methods.base import Vocabulary

    table = SoftThinkingTable(2, k_max=6, device="cpu")
    table.admit([1], [settings])
    width = settings.input_width
    seen = []
    for h in entropies:
        result = soft_step(table, torch.tensor([1]), entropy_logits(h, vocab).unsqueeze(0),
                           all_rows(1, width, vocab, method=SWITCH), vocabulary=vocabulary or Vocabulary())
        seen.append((result.tokens.item(), result.kinds.item(), result.ids[0].tolist(), result.weights[0].tolist(),
                     table.switch_mode[1].item()))
    return table, seen


def test_two_stage_cap_writes_the_think_end_string_and_switching_goes_on():
    """The authors' cap: from the first cap switch (cap 1: the first switch) to twice the
    cap, each latent -> explicit switch writes the think-end string next, which ends nothing;
    the switch past twice the cap ends thinking."""
    settings = request_settings(method=SWITCH, window_size=2, max_switch_count=1, cap_stages=2, top_k=1,
                                max_topk=3, think_end_ids=[6, 7])
    table, seen = run_table(settings, ENTROPIES + [1.0, 1.6, 0.4, 1.0])
    tokens, kinds = [s[0] for s in seen], [s[1] for s in seen]
    # Step 2 is the first switch (count 1 = the cap): steps 3-4 write 6, 7 and thinking goes on.
    assert tokens[3:5] == [6, 7] and kinds[3:5] == [KIND_THINK, KIND_THINK]
    # Step 7 is the second switch (count 2 = twice the cap): 6, 7 again at steps 8-9 (step 9
    # turns latent: the injection goes on whatever the mode).
    assert tokens[8:10] == [6, 7] and kinds[8:10] == [KIND_THINK, KIND_THINK]
    # Step 10 is the third switch (past twice the cap): it ends thinking; the forced string follows.
    assert kinds[:11] == [KIND_THINK] * 11 and kinds[11] == KIND_METHOD_END + SWITCH and tokens[11] == 6
    one_stage = request_settings(method=SWITCH, window_size=2, max_switch_count=1, top_k=1, max_topk=3,
                                 think_end_ids=[6, 7])
    table, seen = run_table(one_stage, ENTROPIES)
    assert [s[1] for s in seen][:5] == [KIND_THINK] * 3 + [KIND_METHOD_END + SWITCH] * 2


def test_math_tokens_are_fed_explicitly_and_the_first_input_blends_a_newline():
    from sglang_soft_thinking.methods.base import Vocabulary

    math = torch.zeros(8, dtype=torch.bool)
    math[1] = True  # token 1, the most likely one, is a "digit"
    vocabulary = Vocabulary(masks={"math": math}, tokens={"newline": 5})
    settings = request_settings(method=SWITCH, window_size=2, top_k=1, max_topk=3, think_end_ids=[6, 7],
                                explicit_tokens="math", first_blend=0.1)
    _, seen = run_table(settings, [1.0, 1.2], vocabulary)
    # Every written token is 1, a maths token: each step feeds it alone, in latent mode too.
    assert [s[4] for s in seen] == [L, L]
    assert all(s[2][0] == 1 and s[3][0] == 1.0 and sum(s[3][1:]) == 0 for s in seen)
    plain = request_settings(method=SWITCH, window_size=2, top_k=1, max_topk=3, think_end_ids=[6, 7],
                             first_blend=0.1)
    _, seen = run_table(plain, [1.0, 1.2], vocabulary)
    first, second = ({i: w for i, w in zip(s[2], s[3]) if w > 0} for s in seen)
    assert abs(first[5] - 0.1) < 1e-6 and abs(sum(first.values()) - 1) < 1e-6, "0.9 concept + 0.1 newline"
    assert 5 not in second or second[5] < 0.05, "only the first step blends"


def test_the_authors_preset_sets_their_options():
    from sglang_soft_thinking.params import SoftThinkingParams

    params = SoftThinkingParams.parse({"method": "switch", "switch_preset": "authors", "first_blend": 0.2})
    assert (params.window_size, params.explicit_tokens, params.cap_stages, params.min_p_absolute) == (
        512, "math", 2, True)
    assert params.first_blend == 0.2, "a value the request gives wins over the preset"
    assert SoftThinkingParams.parse({"method": "switch"}).cap_stages == 1


def test_an_absolute_min_p_is_a_floor_on_the_cut_distribution():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    full = torch.tensor([C.TOP_K_ALL])
    relative = C.prefix_keep_mask(probs, full, torch.tensor([1.0]), torch.tensor([0.2]))
    absolute = C.prefix_keep_mask(probs, full, torch.tensor([1.0]), torch.tensor([0.2]), torch.tensor([True]))
    assert relative.tolist() == [[True, True, True, False]]  # p >= 0.2 * 0.5
    assert absolute.tolist() == [[True, True, False, False]]  # p >= 0.2
    # With top-k 2 the floor applies to the renormalised pair: 0.3 / 0.8 >= 0.2 stays.
    top2 = C.prefix_keep_mask(probs, torch.tensor([2]), torch.tensor([1.0]), torch.tensor([0.4]), torch.tensor([True]))
    assert top2.tolist() == [[True, False, False, False]]  # 0.3 / 0.8 = 0.375 < 0.4
