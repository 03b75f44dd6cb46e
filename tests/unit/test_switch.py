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
