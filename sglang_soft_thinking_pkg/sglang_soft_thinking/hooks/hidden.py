"""Seam: the hidden states a method feeding vectors reads (DESIGN §4, "Input kinds").

SGLang 0.5.23:

* ``ModelRunner.init_cuda_graphs`` (BEFORE), before any decode graph is captured: the
  state table gets its static vector buffers ``[rows, H]`` (table.py) and the model's
  embedding geometry is computed once (geometry.py): the least-squares map from the
  output head to the input embedding, the mean input-row norm, the rows the trace's
  cosines use. Under tensor parallelism, or for a quantized embedding or head, it is not
  computed and requests for such a method are refused at admission, naming why.
* ``LogitsProcessor._get_pruned_states`` (AFTER): the logits processor receives the last
  layer's final-norm hidden states and prunes them to the positions it computes logits
  for; the hook keeps, in the table, the row of each request that samples (decode: every
  row; extend: each request's last position), for the rows whose method feeds vectors (an
  eager batch whose thinking rows all feed mixtures keeps nothing).
  Device ops only and no branch on values (table.store_hidden), so it runs inside a
  captured decode graph, whose static ``req_pool_indices`` buffer it indexes; no second
  forward, no host wait. The hidden state is whole on every tensor-parallel rank: nothing
  is reduced.

Deletable when SGLang hands the sampler the final-norm hidden states of the sampled rows.
"""

from __future__ import annotations

import logging

from sglang_soft_thinking import runtime
from sglang_soft_thinking.geometry import build_geometry
from sglang_soft_thinking.hooks.model_check import find_input_embedding
from sglang_soft_thinking.methods import REGISTRY
from sglang_soft_thinking.runtime import PLAN_ATTR

logger = logging.getLogger(__name__)

INIT_GRAPHS = "sglang.srt.model_executor.model_runner.ModelRunner.init_cuda_graphs"
PRUNED_STATES = "sglang.srt.layers.logits_processor.LogitsProcessor._get_pruned_states"


def _before_init_graphs(model_runner, *args, **kwargs):
    rt = runtime.get()
    if getattr(model_runner, "is_draft_worker", False) or not model_runner.is_generation:
        return
    if not any(method.input_kind == "vector" for method in REGISTRY):
        return
    table = rt.create_table(model_runner.req_to_token_pool.req_to_token.shape[0], model_runner.device)
    table.ensure_vectors(model_runner.model_config.hidden_size)
    if rt.geometry is None and rt.geometry_error is None:
        rt.geometry_error = _geometry_problem(model_runner)
        if rt.geometry_error is None:
            _compute_geometry(rt, model_runner)
        else:
            logger.warning("soft thinking: no vector inputs for this model: %s", rt.geometry_error)


def _geometry_problem(model_runner) -> str | None:
    """Why the geometry cannot be computed here; None when it can."""
    from sglang.srt.distributed import get_tp_group

    if get_tp_group().world_size > 1:
        return ("under tensor parallelism each rank holds a shard of the vocabulary, and the trace's "
                "nearest tokens would need the whole of it")
    embed = find_input_embedding(model_runner.model)
    head = _output_head(model_runner.model, embed)
    for name, module in (("input embedding", embed), ("output head", head)):
        weight = getattr(module, "weight", None)
        if weight is None or not weight.is_floating_point():
            return f"the model's {name} has no floating-point weight (quantized?)"
    return None


def _output_head(model, embed):
    """The module whose rows give the logits: the model's ``lm_head``, or, for a model that
    ties its head to its input embedding and has none (SGLang's Gemma 2 passes
    ``embed_tokens`` to its logits processor), the input embedding itself."""
    head = getattr(model, "lm_head", None)
    return head if head is not None else embed


def _compute_geometry(rt, model_runner) -> None:
    import torch

    model = model_runner.model
    embed = find_input_embedding(model)
    head = _output_head(model, embed)
    vocab_size = model_runner.model_config.vocab_size
    with torch.no_grad():
        rt.geometry = build_geometry(lambda ids: embed(ids), head.weight.detach(), embed.weight.detach(),
                                     vocab_size)
    # SGLang's Gemma and Gemma 2 multiply the embedding module's output (input embeddings
    # given to the model included) by their ``normalizer`` buffer before the first layer.
    normalizer = getattr(getattr(model, "model", None), "normalizer", None)
    if isinstance(normalizer, torch.Tensor) and normalizer.numel() == 1:
        rt.geometry.after_embedding_scale = float(normalizer)


def _after_pruned_states(result, processor, hidden_states, *args, **kwargs):
    rt = runtime.get()
    table, forward_batch = rt.table, rt.forward_batch
    if table is None or table.hidden is None or forward_batch is None or rt.capturing_plain:
        return result
    pruned, sample_indices = result[0], result[3]
    hidden = pruned if sample_indices is None else pruned[sample_indices]  # [B, H]
    rows = forward_batch.req_pool_indices
    plan = getattr(forward_batch, PLAN_ATTR, None)
    if hidden.shape[0] != rows.shape[0]:
        if plan is not None and plan.soft is not None:
            logger.error("soft thinking: %d hidden states for %d request rows", hidden.shape[0], rows.shape[0])
            plan.inputs_failed = True  # its soft rows are aborted, never fed stale vectors
        return result
    if plan is None:  # a batch SGLang built itself (graph capture): every row, branch-free
        table.store_hidden(rows, hidden)
    elif plan.soft is not None and any(REGISTRY[m].input_kind == "vector" for m in plan.soft.methods):
        soft = plan.soft.index_tensor
        table.store_hidden(rows.index_select(0, soft), hidden.index_select(0, soft))
    return result


def register(registry, hook_type) -> None:
    registry.register(INIT_GRAPHS, _before_init_graphs, hook_type.BEFORE)
    registry.register(PRUNED_STATES, _after_pruned_states, hook_type.AFTER)
