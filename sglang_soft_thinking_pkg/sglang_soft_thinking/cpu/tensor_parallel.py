"""SGLang's tensor parallelism on its CPU engine: groups without GPU communicators.

SGLang 0.5.23 builds every parallel group (``init_model_parallel_group``) with PyNccl
and its custom all-reduce unless the platform is an NPU or XPU, so on its CPU engine
each rank fails with "Expected a cuda device" while it sets up NCCL. The groups
themselves are gloo groups there, and SGLang's CPU all-reduce falls back to
``torch.distributed`` on them where its shared-memory kernel is missing. This AROUND hook
builds the groups without the GPU-only communicators. Registered only while the
``sgl_kernel`` stand-in is active (see :mod:`.boot`); delete it together with the stand-in
or when SGLang chooses no GPU communicators on its CPU platform itself.
"""

from __future__ import annotations

TARGET = "sglang.srt.distributed.parallel_state.init_model_parallel_group"
_GPU_ONLY = ("use_pynccl", "use_custom_allreduce", "use_mscclpp", "use_torch_symm_mem_allreduce")


def _around_init_group(original, *args, **kwargs):
    for name in _GPU_ONLY:
        kwargs[name] = False
    return original(*args, **kwargs)


def register(registry, hook_type) -> None:
    registry.register(TARGET, _around_init_group, hook_type.AROUND)
