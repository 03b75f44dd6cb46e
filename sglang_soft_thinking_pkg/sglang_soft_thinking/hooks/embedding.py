"""Seam: model inputs. A thinking request's next input is its concept token's embedding.

Four hooks, SGLang 0.5.23:

* ``ModelRunner.init_cuda_graphs`` (BEFORE) creates the state table and finds the
  model's input embedding module, before SGLang captures any decode graph, so the
  captured graph reads the table's own (static) buffers.
* ``forward_context`` (AROUND), the context manager every SGLang forward runs in
  (eager, CUDA-graph capture, CPU graphs), publishes the forward batch for the
  length of the forward: the embedding module is not given it. Contexts nest; the
  outermost batch, the one ``ModelRunner`` was given, is the one published.
* ``VocabParallelEmbedding.forward`` (AROUND) of the model's input embedding:
  - decode: :func:`inputs.decode_inputs`, branch-free on the table indexed by the
    batch's request rows. A graph captured with no soft request present therefore
    mixes at replay, every row at the table's full width. An eager batch mixes only
    its plan's soft rows, at their widest concept token, and skips a plan with none.
  - extend / mixed: the positions the batch's plan lists (the thinking positions of
    a request re-prefilled after a retraction, the decode rows of a mixed batch)
    take their concept tokens (:func:`inputs.extend_inputs`).
  The lookups go through the module itself, so tensor parallelism stays right.
* ``PrefillCudaGraphRunner.can_run_graph`` (AROUND): an extend batch whose plan puts
  concept tokens at some positions runs eagerly; a prefill graph captured from plain
  prompts would replay without them.

Deletable when SGLang's decode path accepts per-request input embeddings.
"""

from __future__ import annotations

import contextlib

from sglang_soft_thinking import runtime
from sglang_soft_thinking.hooks.model_check import check_model
from sglang_soft_thinking.inputs import decode_inputs, extend_inputs
from sglang_soft_thinking.runtime import PLAN_ATTR

INIT_GRAPHS = "sglang.srt.model_executor.model_runner.ModelRunner.init_cuda_graphs"
FORWARD_CONTEXT = "sglang.srt.model_executor.forward_context.forward_context"
EMBEDDING_FORWARD = "sglang.srt.layers.vocab_parallel_embedding.VocabParallelEmbedding.forward"
PREFILL_GRAPH_CHECK = ("sglang.srt.model_executor.runner.prefill_cuda_graph_runner."
                       "PrefillCudaGraphRunner.can_run_graph")


def _input_embedding_of(model):
    getter = getattr(model, "get_input_embeddings", None)
    if getter is not None:
        return getter()
    inner = getattr(model, "model", None)
    return getattr(inner, "embed_tokens", None)


def _before_init_graphs(model_runner, *args, **kwargs):
    rt = runtime.get()
    if getattr(model_runner, "is_draft_worker", False) or not model_runner.is_generation:
        return
    check_model(model_runner)
    rt.input_embedding = _input_embedding_of(model_runner.model)
    if rt.input_embedding is None:
        raise RuntimeError("soft thinking: cannot find the model's input embedding module")
    rt.create_table(model_runner.req_to_token_pool.req_to_token.shape[0], model_runner.device)


@contextlib.contextmanager
def _publishing(inner, forward_batch):
    # The outermost batch is published: SGLang runs the model on copies of the batch
    # it was asked to run (the eager runner's static buffers), which hold the same rows
    # but not the plan set on the original.
    rt = runtime.get()
    previous = rt.forward_batch
    if previous is None:
        rt.forward_batch = forward_batch
    try:
        with inner:
            yield
    finally:
        rt.forward_batch = previous


def _around_forward_context(original, ctx, *args, forward_batch=None, **kwargs):
    return _publishing(original(ctx, *args, forward_batch=forward_batch, **kwargs), forward_batch)


def _around_embedding_forward(original, module, input_ids, *args, **kwargs):
    embeddings = original(module, input_ids, *args, **kwargs)
    rt = runtime.get()
    forward_batch = rt.forward_batch
    if module is not rt.input_embedding or forward_batch is None or rt.table is None:
        return embeddings

    def embed(ids):
        return original(module, ids, *args, **kwargs)

    plan = getattr(forward_batch, PLAN_ATTR, None)
    mode = forward_batch.forward_mode
    if mode.is_decode():
        rows = forward_batch.req_pool_indices
        if rows.shape[0] != embeddings.shape[0]:
            raise RuntimeError(f"soft thinking: a decode batch of {embeddings.shape[0]} inputs "
                               f"for {rows.shape[0]} request rows")
        if plan is None:  # a batch SGLang built itself (graph capture): mix at full width
            return decode_inputs(embed, embeddings, rt.table, rows, rt.table.k_max)
        if not plan.has_soft:
            return embeddings
        # Eager: only the soft rows, at the batch's widest concept token.
        soft = plan.soft.index_tensor
        mixed = decode_inputs(embed, embeddings.index_select(0, soft), rt.table,
                              rows.index_select(0, soft), plan.soft.k_used)
        return embeddings.index_copy(0, soft, mixed)
    if plan is not None and plan.extend_inputs is not None:
        return extend_inputs(embed, embeddings, plan.extend_inputs)
    return embeddings


def _around_prefill_graph_check(original, runner, forward_batch, *args, **kwargs):
    plan = getattr(forward_batch, PLAN_ATTR, None)
    if plan is not None and plan.extend_inputs is not None:
        return False
    return original(runner, forward_batch, *args, **kwargs)


def register(registry, hook_type) -> None:
    registry.register(INIT_GRAPHS, _before_init_graphs, hook_type.BEFORE)
    registry.register(FORWARD_CONTEXT, _around_forward_context, hook_type.AROUND)
    registry.register(EMBEDDING_FORWARD, _around_embedding_forward, hook_type.AROUND)
    registry.register(PREFILL_GRAPH_CHECK, _around_prefill_graph_check, hook_type.AROUND)
