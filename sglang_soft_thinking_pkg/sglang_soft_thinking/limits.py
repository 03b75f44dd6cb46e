"""The largest ``max_topk`` a request may ask for. The engine sizes its per-request buffers
by it; set SOFTTHINK_MAX_TOPK (or the server's --max-topk-limit) to change it.

Its own module, below both the request parameters (params.py) and the methods that check
their widths against it.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import AfterValidator

DEFAULT_MAX_TOPK_LIMIT = 32


def max_topk_limit() -> int:
    return int(os.environ.get("SOFTTHINK_MAX_TOPK", DEFAULT_MAX_TOPK_LIMIT))


def within_max_topk_limit(value: int) -> int:
    """A request parameter that sets an input's width: at most :func:`max_topk_limit`."""
    limit = max_topk_limit()
    if value > limit:
        raise ValueError(f"must be at most {limit} (the server's max_topk limit)")
    return value


# An int parameter whose value is an input's width (max_topk, a method's k or width).
TopkWidth = Annotated[int, AfterValidator(within_max_topk_limit)]
