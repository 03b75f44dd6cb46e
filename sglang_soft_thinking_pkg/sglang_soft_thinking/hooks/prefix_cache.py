"""Seam: the prefix cache. KV computed from concept tokens never serves another request.

The KV of every position after a soft-thinking request's prompt depends on concept-token
inputs (the first output is a concept token), so it does not belong under the token ids
SGLang would key it by. SGLang keeps requests with override embeddings out of its radix
tree through ``Req.skip_radix_cache_insert``; a soft-thinking request sets the same flag
as soon as an insert would reach past its prompt. The prompt itself is inserted when its
prefill ends, as for any request, so prompts stay cacheable.

Two hooks, SGLang 0.5.23, the two functions through which every tree insert passes:
``mem_cache.common.checkpoint_kv_cache`` (after a prefill chunk) and
``mem_cache.common.release_kv_cache`` (when a request ends), both BEFORE.

Deletable when SGLang lets a request cap the part of its KV the tree may keep.
"""

from __future__ import annotations

from sglang_soft_thinking.runtime import SETTINGS_ATTR

CHECKPOINT_TARGET = "sglang.srt.mem_cache.common.checkpoint_kv_cache"
RELEASE_TARGET = "sglang.srt.mem_cache.common.release_kv_cache"


def keep_soft_positions_out(req, up_to: int) -> None:
    """Bar the request from the tree if an insert up to ``up_to`` would pass its prompt."""
    if getattr(req, SETTINGS_ATTR, None) is not None and up_to > len(req.origin_input_ids):
        req.skip_radix_cache_insert = True


def _before_checkpoint(req, tree_cache, *args, **kwargs):
    keep_soft_positions_out(req, req.extend_end)


def _before_release(req, tree_cache, *args, checkpoint: bool, **kwargs):
    if checkpoint and req.kv.holds_kv:
        keep_soft_positions_out(req, req.owned_kv_len())


def register(registry, hook_type) -> None:
    registry.register(CHECKPOINT_TARGET, _before_checkpoint, hook_type.BEFORE)
    registry.register(RELEASE_TARGET, _before_release, hook_type.BEFORE)
