"""Seam: decode CUDA graphs. Plain steps replay a graph that mixes nothing.

A decode graph captured with the mixing in it mixes every row of every step at the
table's full width, thinking row or not. SGLang 0.5.23 already keeps more than one graph
per batch size, keyed by a variant label it picks for each batch at replay (the LoRA
"lora" / "nolora" pair); this seam uses that key:

* ``DecodeCudaGraphRunner.capture_one_shape`` (AROUND): each batch size is captured twice,
  labelled :data:`SOFT` (today's graph, mixing every row) and :data:`PLAIN` (captured
  with ``Runtime.capturing_plain`` set, so the embedding hook returns the lookup untouched:
  not one mixing op in it). Both go into SGLang's one graph memory pool and write
  SGLang's one shared output buffer; they are never replayed at once.
* ``DecodeCudaGraphRunner._resolve_lora_variant`` (AROUND): the label of the graph a batch
  replays, decided on the host from its plan (hooks/batch.py), the same decision the
  eager path makes: :data:`PLAIN` when the plan has no soft row, :data:`SOFT` otherwise
  (also for a batch without a plan, which SGLang built itself).

Only for the target model's runner with soft thinking on and no LoRA label of SGLang's
own (LoRA is refused at start-up, hooks/server_args.py); otherwise SGLang's behaviour is
untouched. Deletable when SGLang lets a plugin add graph variants of its own.
"""

from __future__ import annotations

from sglang_soft_thinking import runtime
from sglang_soft_thinking.runtime import PLAN_ATTR

RUNNER = "sglang.srt.model_executor.runner.decode_cuda_graph_runner.DecodeCudaGraphRunner"
CAPTURE_ONE_SHAPE = f"{RUNNER}.capture_one_shape"
RESOLVE_VARIANT = f"{RUNNER}._resolve_lora_variant"

SOFT = "soft_thinking"
PLAIN = "plain"


def _has_variants(runner) -> bool:
    model_runner = getattr(runner, "model_runner", None)
    return (runtime.get().table is not None and model_runner is not None
            and not getattr(model_runner, "is_draft_worker", False))


def variant_of(forward_batch) -> str:
    """The graph a decode batch replays: plain when its plan has no soft row."""
    plan = getattr(forward_batch, PLAN_ATTR, None)
    return PLAIN if plan is not None and not plan.has_soft else SOFT


def _around_capture_one_shape(original, runner, size, forward, stream_idx=None, variant_label=None,
                              *args, **kwargs):
    if variant_label is not None or not _has_variants(runner):
        return original(runner, size, forward, stream_idx, variant_label, *args, **kwargs)
    rt = runtime.get()
    original(runner, size, forward, stream_idx, SOFT, *args, **kwargs)
    rt.capturing_plain = True
    try:
        return original(runner, size, forward, stream_idx, PLAIN, *args, **kwargs)
    finally:
        rt.capturing_plain = False


def _around_resolve_variant(original, runner, forward_batch, *args, **kwargs):
    label = original(runner, forward_batch, *args, **kwargs)
    if label is not None or not _has_variants(runner):
        return label
    return variant_of(forward_batch)


def register(registry, hook_type) -> None:
    registry.register(CAPTURE_ONE_SHAPE, _around_capture_one_shape, hook_type.AROUND)
    registry.register(RESOLVE_VARIANT, _around_resolve_variant, hook_type.AROUND)
