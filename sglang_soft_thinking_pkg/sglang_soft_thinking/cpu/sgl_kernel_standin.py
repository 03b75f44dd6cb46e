"""A pure-torch stand-in for the ``sgl_kernel`` ops SGLang's CPU path calls.

SGLang 0.5.23 on a CPU without AMX imports several names from ``sgl_kernel``
at module import time but, with the ``torch_native`` attention backend, calls
only :func:`assign_req_to_token_pool_cpu`. Every other name resolves to a
function that raises a clear error if it is ever called, so a code path we did
not foresee fails loudly instead of computing garbage.
"""

from __future__ import annotations

import types

import torch


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,  # [B]
    req_to_token: torch.Tensor,  # [num_reqs, pool_len]
    start_offset: torch.Tensor,  # [B]
    end_offset: torch.Tensor,  # [B]
    out_cache_loc: torch.Tensor,  # [sum(end - start)]
    pool_len: int,
) -> None:
    """Write each request's new KV slots into its row of ``req_to_token``.

    Request ``i`` owns the next ``end[i] - start[i]`` entries of ``out_cache_loc``
    (the requests' slots are packed back to back) and they go to columns
    ``start[i]:end[i]`` of row ``req_pool_indices[i]``.
    """
    del pool_len  # implied by req_to_token's shape
    starts = start_offset.tolist()
    ends = end_offset.tolist()
    rows = req_pool_indices.tolist()
    offset = 0
    for row, start, end in zip(rows, starts, ends):
        count = end - start
        req_to_token[row, start:end] = out_cache_loc[offset : offset + count]
        offset += count


def _missing_op(module_name: str, name: str):
    def op(*args, **kwargs):
        raise NotImplementedError(
            f"{module_name}.{name} is not available on this CPU: the sgl_kernel wheel "
            "needs CUDA and the stand-in provides only the ops SGLang's torch_native "
            "CPU path calls. Use --attention-backend torch_native and a plain (unquantized) model."
        )

    op.__name__ = name
    return op


class StandinModule(types.ModuleType):
    """A module that answers any attribute with a loudly failing op."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        op = _missing_op(self.__name__, name)
        setattr(self, name, op)
        return op


def make_module(name: str) -> types.ModuleType:
    module = StandinModule(name)
    # A package with no search path: `import sgl_kernel.x` fails with
    # ModuleNotFoundError, which SGLang's optional imports handle.
    module.__path__ = []
    module.__version__ = "0.0.0+cpu-standin"
    module.assign_req_to_token_pool_cpu = assign_req_to_token_pool_cpu
    return module
