"""Seam: decode inputs. A thinking request's next input is its concept token's embedding.

Two hooks, SGLang 0.5.23:

* ``ModelRunner.forward`` (AROUND) makes the forward batch visible while the
  model runs, and finds the model's input embedding module once.
* ``VocabParallelEmbedding.forward`` (AROUND): in a decode batch with soft
  requests, the rows whose last step produced a concept token are replaced by
  ``sum_i w_i * embed(id_i)`` (DESIGN §4 step 6). The lookup goes through the
  module itself, so it stays correct under tensor parallelism (the lookup is
  linear and the all-reduce commutes with the weighted sum).

Deletable when SGLang's decode path accepts per-request input embeddings.
"""

from __future__ import annotations

import torch

from sglang_soft_thinking import runtime
from sglang_soft_thinking.concept import mix_embeddings

MODEL_RUNNER_FORWARD = "sglang.srt.model_executor.model_runner.ModelRunner.forward"
EMBEDDING_FORWARD = "sglang.srt.layers.vocab_parallel_embedding.VocabParallelEmbedding.forward"


def _input_embedding_of(model) -> torch.nn.Module | None:
    getter = getattr(model, "get_input_embeddings", None)
    if getter is not None:
        return getter()
    inner = getattr(model, "model", None)
    return getattr(inner, "embed_tokens", None)


def _around_model_runner_forward(original, model_runner, forward_batch, *args, **kwargs):
    rt = runtime.get()
    if rt.input_embedding is None:
        rt.input_embedding = _input_embedding_of(model_runner.model)
    rt.forward_batch = forward_batch
    try:
        return original(model_runner, forward_batch, *args, **kwargs)
    finally:
        rt.forward_batch = None


def _around_embedding_forward(original, module, input_ids, *args, **kwargs):
    embeddings = original(module, input_ids, *args, **kwargs)
    rt = runtime.get()
    forward_batch = rt.forward_batch
    if (rt.plan is None or forward_batch is None or module is not rt.input_embedding
            or not forward_batch.forward_mode.is_decode()):
        return embeddings
    rows = forward_batch.req_pool_indices
    if rows.shape[0] != embeddings.shape[0]:
        return embeddings
    use, ids, weights = rt.table.concept_inputs(rows)  # [B], [B, K], [B, K]
    k = rt.plan.k_used
    ids, weights = ids[:, :k], weights[:, :k]
    token_embeddings = original(module, ids.reshape(-1), *args, **kwargs)  # [B * K, H]
    mixed = mix_embeddings(token_embeddings.view(ids.shape[0], k, -1), weights)
    return torch.where(use.unsqueeze(1), mixed, embeddings)


def register(registry, hook_type) -> None:
    registry.register(MODEL_RUNNER_FORWARD, _around_model_runner_forward, hook_type.AROUND)
    registry.register(EMBEDDING_FORWARD, _around_embedding_forward, hook_type.AROUND)
