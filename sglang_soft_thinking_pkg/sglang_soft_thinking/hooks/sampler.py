"""Seam: sampling. Soft-thinking rows get their token from the table, not SGLang's sampler.

Two hooks, SGLang 0.5.23:

* ``ModelRunner.sample`` (AROUND) makes the forward batch being sampled
  visible to the sampler hook (``Sampler.forward`` is not given it).
* ``Sampler.forward`` (AROUND) runs :meth:`SoftThinkingTable.step` on the
  logits after SGLang's own preprocessing (penalties, logit bias) and before
  SGLang's sampler, which overwrites the logits with probabilities in place;
  then SGLang samples every row and the soft rows' tokens replace its choice.
  The per-row records for the output ride on ``logits_output.customized_info``,
  which SGLang copies to each request and on to ``meta_info``.

Deletable when SGLang's sampler offers a per-request sampling hook.
"""

from __future__ import annotations

import torch

from sglang_soft_thinking import runtime
from sglang_soft_thinking.output import ANSWER, BUDGET, COLD_STOP, META_INFO_KEY, THINK
from sglang_soft_thinking.state import KIND_ANSWER, KIND_BUDGET, KIND_COLD_STOP, KIND_THINK, StepResult

MODEL_RUNNER_SAMPLE = "sglang.srt.model_executor.model_runner.ModelRunner.sample"
SAMPLER_FORWARD = "sglang.srt.layers.sampler.Sampler.forward"

_KIND_NAMES = {KIND_THINK: THINK, KIND_COLD_STOP: COLD_STOP, KIND_BUDGET: BUDGET, KIND_ANSWER: ANSWER}


class StepRecords:
    """One batch step's output records, indexed by batch row (see output.py).

    SGLang indexes this once per request after it has synchronised the step's
    token ids, so the device-to-host copy happens then, once, with no extra wait.
    """

    def __init__(self, result: StepResult, with_trace: bool):
        self._kinds, self._entropy = result.kinds, result.entropy
        self._ids = result.ids if with_trace else None
        self._weights = result.weights if with_trace else None
        self._rows: list | None = None

    def _to_host(self) -> list:
        kinds, entropy = self._kinds.tolist(), self._entropy.tolist()
        ids = self._ids.tolist() if self._ids is not None else None
        weights = self._weights.tolist() if self._weights is not None else None
        rows = []
        for i, kind in enumerate(kinds):
            name = _KIND_NAMES.get(kind)
            if name is None:
                rows.append(None)
            elif name != THINK:
                rows.append((name, None, None, None))
            elif ids is None:
                rows.append((name, entropy[i], None, None))
            else:
                support = sum(1 for w in weights[i] if w > 0)
                rows.append((name, entropy[i], ids[i][:support], weights[i][:support]))
        return rows

    def __getitem__(self, i: int):
        if self._rows is None:
            self._rows = self._to_host()
        return self._rows[i]


def _around_model_runner_sample(original, model_runner, logits_output, forward_batch, *args, **kwargs):
    rt = runtime.get()
    rt.sampling_batch = forward_batch
    try:
        return original(model_runner, logits_output, forward_batch, *args, **kwargs)
    finally:
        rt.sampling_batch = None


def _around_sampler_forward(original, sampler, logits_output, *args, **kwargs):
    rt = runtime.get()
    forward_batch = rt.sampling_batch
    if rt.plan is None or forward_batch is None or rt.table is None:
        return original(sampler, logits_output, *args, **kwargs)
    logits = logits_output.next_token_logits  # [B, V]
    batch_size = logits.shape[0]
    rows = forward_batch.req_pool_indices[:batch_size]
    # A prefill chunk that does not finish its prompt samples a token SGLang discards.
    counts = forward_batch.seq_lens[:batch_size] >= rt.table.prompt_len[rows]
    result = rt.table.step(rows, logits, counts, rt.plan)
    next_ids = original(sampler, logits_output, *args, **kwargs)
    next_ids = torch.where(result.is_soft, result.tokens.to(next_ids.dtype), next_ids)
    logits_output.customized_info = {META_INFO_KEY: StepRecords(result, rt.plan.any_trace)}
    return next_ids


def register(registry, hook_type) -> None:
    registry.register(MODEL_RUNNER_SAMPLE, _around_model_runner_sample, hook_type.AROUND)
    registry.register(SAMPLER_FORWARD, _around_sampler_forward, hook_type.AROUND)
