"""Seam: model inputs. A thinking request's next input is its concept token's embedding.

SGLang 0.5.23:

* ``ModelRunner.init_cuda_graphs`` (BEFORE) checks the model (hooks/model_check.py), creates
  the state table and finds the model's input embedding module, before SGLang captures any
  decode graph: the captured graph reads the table's own (static) buffers.
* ``VocabParallelEmbedding._embed_local_shard`` (AROUND): for SGLang's own lookup (any
  quantization, or a subclass that keeps SGLang's ``forward`` and ``_embed_local_shard``)
  the mixtures are put into the rank's per-shard output, before the module's own
  all-reduce: each rank mixes the rows of its vocabulary shard, taken through the shard's
  lookup (a quantized one dequantizes), and the one all-reduce the module does anyway
  carries the plain rows and the mixtures alike. Any other embedding module (an
  ``nn.Embedding`` such as Gemma 3's scaled one, or a ``VocabParallelEmbedding`` subclass
  with a forward of its own, at TP 1 only: model_check.py refuses it under TP) gets a
  PyTorch forward hook on the instance, which mixes the rows that module's own forward
  gives for the concept token's ids.
* ``forward_context`` (AROUND), the context manager every SGLang forward runs in (eager,
  CUDA-graph capture, CPU graphs), publishes the forward batch for the length of the
  forward: the embedding module is not given it. Contexts nest; the outermost batch, the
  one ``ModelRunner`` was given, is the one published.
* what replaces the lookup's output (:func:`_mixed_inputs`):
  - decode: :func:`mixing.decode_inputs`, branch-free on the table indexed by the batch's
    request rows. A graph captured with no soft request present therefore mixes at
    replay, every row at the table's full width; the plain twin of each captured graph
    (hooks/decode_graphs.py) mixes nothing. An eager batch mixes only its plan's soft
    rows, at their widest input, and skips a plan with none. For SGLang's
    ``VocabParallelEmbedding`` the mixing runs inside the lookup, on each rank's share
    (before the module's own all-reduce), so it makes no collective of its own and every
    rank's reduce has the same shape whatever its plan.
  - extend / mixed: the positions the batch's plan lists (the thinking positions of a
    request re-prefilled after a retraction, the decode rows of a mixed batch) take their
    concept tokens (:func:`mixing.extend_inputs`).
  A fault while mixing an eager batch does not stop the forward: the batch keeps its
  tokens' own embeddings and its plan says so, and the sampler aborts its soft rows.
* ``PrefillCudaGraphRunner.can_run_graph`` (AROUND): an extend batch whose plan puts
  concept tokens at some positions runs eagerly; a prefill graph captured from plain
  prompts would replay without them.

Deletable when SGLang's decode path accepts per-request input embeddings.
"""

from __future__ import annotations

import contextlib
import logging

from sglang_soft_thinking import faults, runtime
from sglang_soft_thinking.registration import verify_hooks
from sglang_soft_thinking.hooks.model_check import check_model, find_input_embedding, folds_into_shard
from sglang_soft_thinking.hooks.results import soft_seeds
from sglang_soft_thinking.mixing import ModuleMixer, ShardMixer, VocabShard, decode_inputs, extend_inputs
from sglang_soft_thinking.runtime import PLAN_ATTR

logger = logging.getLogger(__name__)

INIT_GRAPHS = "sglang.srt.model_executor.model_runner.ModelRunner.init_cuda_graphs"
FORWARD_CONTEXT = "sglang.srt.model_executor.forward_context.forward_context"
PREFILL_GRAPH_CHECK = ("sglang.srt.model_executor.runner.prefill_cuda_graph_runner."
                       "PrefillCudaGraphRunner.can_run_graph")
LOCAL_SHARD = "sglang.srt.layers.vocab_parallel_embedding.VocabParallelEmbedding._embed_local_shard"


def mixer_for(module):
    """The mixer that embeds concept tokens as ``module`` embeds tokens: for a module that
    :func:`folds_into_shard`, a rank's partial mixtures (reduced by the module itself)."""
    if not folds_into_shard(module):
        return ModuleMixer(module.forward)  # the module's own forward: no hook, any lookup
    from sglang.srt.layers.quantization.unquant import UnquantizedEmbeddingMethod

    s = module.shard_indices
    shard = VocabShard(org_start=s.org_vocab_start_index, org_end=s.org_vocab_end_index,
                       org_padded=s.num_org_elements_padded, added_start=s.added_vocab_start_index,
                       added_end=s.added_vocab_end_index)
    if isinstance(module.quant_method, UnquantizedEmbeddingMethod):
        return ShardMixer(module.weight, shard)
    quant_method = module.quant_method
    return ShardMixer(None, shard, lookup=lambda local: quant_method.embedding(module, local.long()))


def _tp_size() -> int:
    from sglang.srt.distributed import get_tp_group

    return get_tp_group().world_size


def _tp_rank() -> int:
    from sglang.srt.distributed import get_tp_group

    return get_tp_group().rank_in_group


def _before_init_graphs(model_runner, *args, **kwargs):
    verify_hooks()
    rt = runtime.get()
    if getattr(model_runner, "is_draft_worker", False) or not model_runner.is_generation:
        return
    check_model(model_runner)  # refuses, naming why, a model whose inputs soft thinking cannot reach
    module = find_input_embedding(model_runner.model)
    rt.create_table(model_runner.req_to_token_pool.req_to_token.shape[0], model_runner.device)
    rt.batch_invariant = bool(getattr(model_runner.server_args, "enable_deterministic_inference", False))
    rt.tp_size = _tp_size()
    # A rank's share of a folded lookup is summed by the module's all-reduce: one rank puts
    # the vectors in (mixing.decode_inputs); any other module's output is whole already.
    rt.owns_vectors = not folds_into_shard(module) or _tp_rank() == 0
    if rt.mixer is None:
        install(module)


def install(module) -> None:
    """Mix concept tokens into ``module``'s output from now on (see the module docstring)."""
    rt = runtime.get()
    rt.mixer = mixer_for(module)
    if folds_into_shard(module):
        rt.folded_embedding = module
    else:
        module.register_forward_hook(_after_embedding)


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


def _after_embedding(module, args, embeddings):
    return _mixed_inputs(embeddings)


def _around_local_shard(original, module, input_, *args, **kwargs):
    partial = original(module, input_, *args, **kwargs)
    if module is not runtime.get().folded_embedding:
        return partial
    mixed = _mixed_inputs(partial)
    if mixed is not partial:
        # Into SGLang's own output tensor, which it may have allocated where its all-reduce
        # needs it (symmetric memory); a step without mixing copies nothing.
        partial.copy_(mixed)
    return partial


def _mixed_inputs(embeddings):
    """The lookup's output [T, H] (whole, or one rank's share) with the concept tokens of
    the published batch put in."""
    rt = runtime.get()
    forward_batch, table = rt.forward_batch, rt.table
    if forward_batch is None or table is None:
        return embeddings
    plan = getattr(forward_batch, PLAN_ATTR, None)
    if plan is None:  # a batch SGLang built itself (graph capture): a fault here stops the start
        return _mixed(rt, table, forward_batch, None, embeddings)
    try:
        return _mixed(rt, table, forward_batch, plan, embeddings)
    except Exception:
        # The forward must go on: its rows keep their tokens' own embeddings, and the plan
        # says so, so the sampler flags every soft row as not mixed (the same check as a
        # model that bypasses this module) and each is aborted, never served plainly.
        logger.exception("soft thinking: mixing a batch's inputs failed")
        plan.inputs_failed = True
        return embeddings


def _mixed(rt, table, forward_batch, plan, embeddings):
    """The batch's input embeddings with its concept tokens put in (module docstring)."""
    if forward_batch.forward_mode.is_decode():
        rows = forward_batch.req_pool_indices
        if rows.shape[0] != embeddings.shape[0]:
            raise RuntimeError(f"soft thinking: a decode batch of {embeddings.shape[0]} inputs "
                               f"for {rows.shape[0]} request rows")
        if plan is None:  # a batch SGLang built itself (graph capture)
            if rt.capturing_plain:  # the graph plain steps replay: no mixing at all
                return embeddings
            return decode_inputs(rt.mixer, embeddings, table, rows, table.k_max,  # at full width
                                 owns_vectors=rt.owns_vectors)
        if not plan.has_soft:
            return embeddings
        # Eager: only the soft rows, at the batch's widest input.
        soft = plan.soft.index_tensor
        soft_rows = rows.index_select(0, soft)
        faults.check("embed", lambda: soft_seeds(plan, plan.soft.index))
        skip_seed = faults.seed_of("skip_mix")
        skip = None if skip_seed is None else table.seed[soft_rows] == skip_seed
        mixed = decode_inputs(rt.mixer, embeddings.index_select(0, soft), table, soft_rows,
                              plan.soft.k_used if not rt.batch_invariant else table.k_max, skip=skip,
                              owns_vectors=rt.owns_vectors)
        return embeddings.index_copy(0, soft, mixed)
    if plan is not None and plan.extend_inputs is not None:
        mixed = extend_inputs(rt.mixer, embeddings, plan.extend_inputs, owns_vectors=rt.owns_vectors)
        plan.extend_applied = True
        return mixed
    return embeddings


def _around_prefill_graph_check(original, runner, forward_batch, *args, **kwargs):
    plan = getattr(forward_batch, PLAN_ATTR, None)
    if plan is not None and plan.extend_inputs is not None:
        return False
    return original(runner, forward_batch, *args, **kwargs)


def register(registry, hook_type) -> None:
    registry.register(INIT_GRAPHS, _before_init_graphs, hook_type.BEFORE)
    registry.register(FORWARD_CONTEXT, _around_forward_context, hook_type.AROUND)
    registry.register(PREFILL_GRAPH_CHECK, _around_prefill_graph_check, hook_type.AROUND)
    registry.register(LOCAL_SHARD, _around_local_shard, hook_type.AROUND)
