"""The largest ``max_topk`` a request may ask for. The engine sizes its per-request buffers
by it; set SOFTTHINK_MAX_TOPK (or the server's --max-topk-limit) to change it.

Its own module, below both the request parameters (params.py) and the methods that check
their widths against it.
"""

from __future__ import annotations

import os

DEFAULT_MAX_TOPK_LIMIT = 32


def max_topk_limit() -> int:
    return int(os.environ.get("SOFTTHINK_MAX_TOPK", DEFAULT_MAX_TOPK_LIMIT))
