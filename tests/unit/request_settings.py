"""One soft-thinking request's resolved settings for the unit tests, overridable by name."""

from sglang_soft_thinking import concept as C
from sglang_soft_thinking.state import RequestSettings

DEFAULTS = dict(
    prompt_len=5, temperature=1.0, top_k=C.TOP_K_ALL, top_p=1.0, min_p=0.0, max_topk=3,
    entropy_threshold=0.0, length_threshold=3, max_thinking_tokens=-1, noise_kind=C.NOISE_NONE,
    noise_param=1.0, after_temperature=0.0, after_top_k=C.TOP_K_ALL, after_top_p=1.0,
    after_min_p=0.0, think_end_ids=[6, 7])


def request_settings(**overrides) -> RequestSettings:
    return RequestSettings(**{**DEFAULTS, **overrides})


def all_rows(num_rows: int, k_used: int, fetch_k: int, any_noise: bool = False,
             methods: frozenset[int] = frozenset({C.METHOD_CONCEPT})):
    """Every row of a batch as soft rows in one group that fetches ``fetch_k`` tokens
    (and draws either kind of noise if ``any_noise``), its rows of the given methods."""
    from sglang_soft_thinking.plan import SoftGroup, SoftRows

    group = SoftGroup(start=0, stop=num_rows, k_used=k_used, fetch_k_think=fetch_k,
                      fetch_k_answer=fetch_k,
                      noise_kinds=frozenset({C.NOISE_GUMBEL, C.NOISE_DIRICHLET} if any_noise else ()),
                      methods=methods)
    return SoftRows(index=list(range(num_rows)), groups=[group], k_used=k_used)
