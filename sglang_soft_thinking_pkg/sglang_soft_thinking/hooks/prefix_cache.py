"""Seam: the prefix cache. KV computed from concept tokens never serves another request,
and a soft-thinking request never takes KV past its prompt from the cache.

The KV of every position after a soft-thinking request's prompt depends on concept-token
inputs (the first output is a concept token), so it does not belong under the token ids
SGLang would key it by:

* inserts: SGLang keeps requests with override embeddings out of its radix tree through
  ``Req.skip_radix_cache_insert``; a soft-thinking request sets the same flag as soon as
  an insert would reach past its prompt. The prompt itself is inserted when its prefill
  ends, as for any request, so prompts stay cacheable. Hooks, both BEFORE:
  ``mem_cache.common.checkpoint_kv_cache`` (after a prefill chunk) and
  ``mem_cache.common.release_kv_cache`` (when a request ends).
* matches: a retracted request is matched again on its prompt plus its output, and the
  tree may hold those very token ids computed by a plain request (with noise off, the
  first written token is the plain argmax): KV of a token's own embedding, for positions
  that must hold concept tokens. ``Req._compute_max_prefix_len`` (AROUND) caps every match
  of a soft-thinking request at its prompt, so every later position is recomputed from its
  recorded input. It bounds the device match, the host (HiCache) match and the storage
  prefetch alike, since SGLang computes all three limits through it; with ``page_size``
  > 1 SGLang rounds the match down to whole pages, below the cap. A re-prefill split into
  prefill chunks is matched once, before its first chunk: SGLang continues a chunked
  request from where its last chunk ended without matching it again
  (``Scheduler.get_new_batch_prefill`` calls ``init_next_round_input`` with no tree), so
  the cap never cuts the request's own chunks back (hooks/batch.py accepts those).

Deletable when SGLang lets a request cap the part of its KV the tree may keep and serve.
"""

from __future__ import annotations

from sglang_soft_thinking.params import SoftThinkingParams
from sglang_soft_thinking.runtime import SETTINGS_ATTR

CHECKPOINT_TARGET = "sglang.srt.mem_cache.common.checkpoint_kv_cache"
RELEASE_TARGET = "sglang.srt.mem_cache.common.release_kv_cache"
MAX_PREFIX_TARGET = "sglang.srt.managers.schedule_batch.Req._compute_max_prefix_len"


def is_soft(req) -> bool:
    """Whether the request thinks softly: its resolved settings, or before the scheduler
    resolved them (a request waiting for its first prefill), its parameters."""
    if hasattr(req, SETTINGS_ATTR):
        return getattr(req, SETTINGS_ATTR) is not None
    try:
        return SoftThinkingParams.from_custom_params(req.sampling_params.custom_params) is not None
    except ValueError:
        return True  # it will be aborted; meanwhile it takes nothing from the cache


def keep_soft_positions_out(req, up_to: int) -> None:
    """Bar the request from the tree if an insert up to ``up_to`` would pass its prompt."""
    if getattr(req, SETTINGS_ATTR, None) is not None and up_to > len(req.origin_input_ids):
        req.skip_radix_cache_insert = True


def _before_checkpoint(req, tree_cache, *args, **kwargs):
    keep_soft_positions_out(req, req.extend_end)


def _before_release(req, tree_cache, *args, checkpoint: bool, **kwargs):
    if checkpoint and req.kv.holds_kv:
        keep_soft_positions_out(req, req.owned_kv_len())


def _around_max_prefix_len(original, req, input_len, *args, **kwargs):
    limit = original(req, input_len, *args, **kwargs)
    prompt_len = len(req.origin_input_ids)
    if limit > prompt_len and len(req.output_ids) > 0 and is_soft(req):
        return prompt_len
    return limit


def register(registry, hook_type) -> None:
    registry.register(CHECKPOINT_TARGET, _before_checkpoint, hook_type.BEFORE)
    registry.register(RELEASE_TARGET, _before_release, hook_type.BEFORE)
    registry.register(MAX_PREFIX_TARGET, _around_max_prefix_len, hook_type.AROUND)
