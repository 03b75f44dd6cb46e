"""Start-up check: a model whose token inputs soft thinking cannot replace is refused.

Soft thinking feeds a concept token by replacing, row by row, the output of one module: the
token lookup the model reads its token ids through, the module ``get_input_embeddings()``
returns (``hooks/embedding.py`` hooks that module's forward and mixes the rows the module
itself gives for the concept token's ids: SGLang's ``VocabParallelEmbedding`` from each
rank's shard, any other ``nn.Embedding`` or lookup subclass through its own forward, so a
scaled lookup such as Gemma 3's is mixed scaled). A model whose token inputs take another road would
be served discrete decoding with a soft-looking trace, the failure this product must
never have, so :func:`check_model` stops the engine at start-up instead, naming the
architecture and the reason. ``SOFTTHINK_DISABLE=1`` serves such a model without soft
thinking.

Refused, SGLang 0.5.23:

* multimodal architectures: their text embeddings are computed by SGLang's multimodal
  routine (``general_mm_embed_routine``), which soft thinking is not verified with;
* no input embedding module to be found: ``get_input_embeddings()`` wants arguments (it
  embeds ids rather than returning the module), or neither it nor ``model.embed_tokens``
  exists;
* an input embedding that is not a token lookup (neither an ``nn.Embedding`` nor a
  ``VocabParallelEmbedding``): what it makes of a token id is not known to be a row;
* a second embedding table about as large as the vocabulary (per-layer or n-gram
  embeddings): the model also reads the token ids, not the concept token, through it;
* under tensor parallelism, a ``VocabParallelEmbedding`` that does not embed through
  SGLang's own shard-local lookup (a subclass with a ``forward`` or ``_embed_local_shard``
  of its own, or a quantization without an ``embedding`` lookup): its concept tokens
  could only be mixed through its whole forward, one all-reduce per looked-up row.

Deletable rule by rule, as each kind of model is given a concept-token input and a test.
"""

from __future__ import annotations

import inspect

from torch import nn

# A second embedding table with at least this share of the vocabulary's rows is taken
# to be read by token id (position and token-type tables are far smaller).
SECOND_TABLE_SHARE = 0.5


def find_input_embedding(model: nn.Module) -> nn.Module | str:
    """The module the plugin takes for the model's input embedding: what
    ``get_input_embeddings()`` returns, else ``model.model.embed_tokens``; or why there is
    none to take."""
    getter = getattr(model, "get_input_embeddings", None)
    if getter is not None:
        required = [p.name for p in inspect.signature(getter).parameters.values()
                    if p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if required:
            return (f"its get_input_embeddings() takes {', '.join(required)} and returns "
                    "embeddings, not the embedding module")
        module = getter()
    else:
        module = getattr(getattr(model, "model", None), "embed_tokens", None)
    if not isinstance(module, nn.Module):
        return "no input embedding module is found (get_input_embeddings(), model.embed_tokens)"
    return module


def folds_into_shard(module: nn.Module) -> bool:
    """Whether ``module`` embeds through SGLang's own shard-local lookup and all-reduce,
    so a rank's partial mixtures can join its per-rank output (any quantization with an
    ``embedding`` lookup; a subclass must keep both methods)."""
    from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding

    return (isinstance(module, VocabParallelEmbedding)
            and type(module).forward is VocabParallelEmbedding.forward
            and type(module)._embed_local_shard is VocabParallelEmbedding._embed_local_shard
            and callable(getattr(module.quant_method, "embedding", None)))


def embedding_problem(model: nn.Module, *, is_multimodal: bool) -> str | None:
    """Why soft thinking cannot feed concept tokens to ``model``; None when it can."""
    from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding

    if is_multimodal:
        return ("a multimodal model's text embeddings are computed by SGLang's multimodal "
                "routine, which soft thinking is not verified with")
    embedding = find_input_embedding(model)
    if isinstance(embedding, str):
        return embedding
    kind = type(embedding).__name__
    if not isinstance(embedding, (nn.Embedding, VocabParallelEmbedding)):
        return (f"its input embedding is a {kind}, not a token lookup (an nn.Embedding or "
                "SGLang's VocabParallelEmbedding) whose rows soft thinking can mix")
    if (isinstance(embedding, VocabParallelEmbedding) and getattr(embedding, "tp_size", 1) > 1
            and not folds_into_shard(embedding)):
        return (f"under tensor parallelism its input embedding ({kind}, quantization "
                f"{type(embedding.quant_method).__name__}) does not embed through SGLang's own "
                "shard-local lookup, so each concept token's rows would cost an all-reduce of "
                "their own; serve it with --tp-size 1")
    rows = getattr(embedding, "org_vocab_size", None) or embedding.num_embeddings
    for name, module in model.named_modules():
        if (module is not embedding and isinstance(module, (nn.Embedding, VocabParallelEmbedding))
                and not isinstance(module, ParallelLMHead)
                and module.num_embeddings >= SECOND_TABLE_SHARE * rows):
            return (f"it also reads the token ids through a second embedding table "
                    f"({name}, {module.num_embeddings} rows), which would still see "
                    "ids[0] and not the concept token")
    return None


def check_model(model_runner) -> None:
    """Raise ``RuntimeError`` naming the architecture and the reason when soft thinking
    cannot feed concept tokens to the model ``model_runner`` holds."""
    from sglang.srt.configs.model_config import is_multimodal_model

    config = model_runner.model_config
    architectures = getattr(config.hf_config, "architectures", None) or []
    is_multimodal = bool(getattr(config, "is_multimodal", False)) or is_multimodal_model(architectures)
    problem = embedding_problem(model_runner.model, is_multimodal=is_multimodal)
    if problem is not None:
        name = architectures[0] if architectures else type(model_runner.model).__name__
        raise RuntimeError(f"soft thinking cannot serve {name}: {problem}. "
                           "Start with SOFTTHINK_DISABLE=1 to serve it without soft thinking.")
