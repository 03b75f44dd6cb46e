"""One soft-thinking request's resolved settings for the unit tests, overridable by name,
and the thinking methods' ids."""

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.methods import method_id
from sglang_soft_thinking.settings import RequestSettings

CONCEPT, MIXTURE_OF_INPUTS, SWITCH = method_id("concept"), method_id("mixture_of_inputs"), method_id("switch")

DEFAULTS = dict(
    prompt_len=5, temperature=1.0, top_k=C.TOP_K_ALL, top_p=1.0, min_p=0.0, max_topk=3,
    entropy_threshold=0.0, length_threshold=3, max_thinking_tokens=-1, noise_kind=C.NOISE_NONE,
    noise_param=1.0, after_temperature=0.0, after_top_k=C.TOP_K_ALL, after_top_p=1.0,
    after_min_p=0.0, think_end_ids=[6, 7])


def request_settings(**overrides) -> RequestSettings:
    return RequestSettings.build(**{**DEFAULTS, **overrides})


def all_rows(num_rows: int, k_used: int, fetch_k: int, any_noise: bool = False, method: int = CONCEPT):
    """Every row of a batch as soft rows of one method in one group that fetches ``fetch_k``
    tokens (and draws either kind of noise if ``any_noise``)."""
    from sglang_soft_thinking.plan import MethodSlice, SoftGroup, SoftRows

    group = SoftGroup(start=0, stop=num_rows, k_used=k_used, fetch_k_think=fetch_k,
                      fetch_k_answer=fetch_k,
                      noise_kinds=frozenset({C.NOISE_GUMBEL, C.NOISE_DIRICHLET} if any_noise else ()),
                      method_slices=(MethodSlice(method, 0, num_rows),))
    return SoftRows(index=list(range(num_rows)), groups=[group], k_used=k_used)
