"""Seam: sampling. Soft-thinking rows get their token from the table, not SGLang's sampler.

Two hooks, SGLang 0.5.23:

* ``ModelRunner.sample`` (AROUND) hands the sampled batch's plan and request rows to
  the sampler hook on the step's ``logits_output`` (``Sampler.forward`` is not given
  the batch). SGLang may sample a batch after ``run_batch`` returns (overlap scheduler
  with a grammar, delayed sampling): the plan is the one carried by that batch.
* ``Sampler.forward`` (AROUND) runs :meth:`SoftThinkingTable.step` on the
  logits after SGLang's own preprocessing (penalties, logit bias) and before
  SGLang's sampler, which overwrites the logits with probabilities in place;
  then SGLang samples every row and the soft rows' tokens replace its choice.
  The per-row records for the output ride on ``logits_output.customized_info``,
  which SGLang copies to each request and on to ``meta_info``. A thinking step's
  record always holds its concept token: it is also what a retracted request is
  resumed from (resume.py). Plain requests with a seed are sampled here too, with
  SGLang's own settings for them and draws from their seed (draws.py), so a seed
  holds whatever shares the batch (SGLang honours seeds only in its deterministic mode).

Deletable when SGLang's sampler offers a per-request sampling hook.
"""

from __future__ import annotations

import torch

from sglang_soft_thinking import runtime
from sglang_soft_thinking.concept import sample_tokens
from sglang_soft_thinking.draws import STREAM_PLAIN, RowDraws
from sglang_soft_thinking.runtime import PLAN_ATTR
from sglang_soft_thinking.output import ANSWER, BUDGET, COLD_STOP, META_INFO_KEY, THINK
from sglang_soft_thinking.state import KIND_ANSWER, KIND_BUDGET, KIND_COLD_STOP, KIND_THINK, StepResult

MODEL_RUNNER_SAMPLE = "sglang.srt.model_executor.model_runner.ModelRunner.sample"
SAMPLER_FORWARD = "sglang.srt.layers.sampler.Sampler.forward"

_KIND_NAMES = {KIND_THINK: THINK, KIND_COLD_STOP: COLD_STOP, KIND_BUDGET: BUDGET, KIND_ANSWER: ANSWER}


class LocalRecord(tuple):
    """A thinking step's record, ``(kind, entropy, ids, weights)``, whose concept token stays
    in the scheduler: pickled for the server it becomes ``(kind, entropy, None, None)``.

    The scheduler keeps every step's concept token on the request (a retracted request is
    resumed from it, resume.py); only requests that asked for ``return_trace`` send it on.
    """

    __slots__ = ()

    def __reduce__(self):
        return tuple, ((self[0], self[1], None, None),)


class StepRecords:
    """One batch step's output records, indexed by batch row (see output.py).

    SGLang indexes this once per request after it has synchronised the step's
    token ids, so the device-to-host copy happens then, once, with no extra wait.
    ``traced`` are the batch rows whose requests asked for their trace.
    """

    def __init__(self, result: StepResult, traced: frozenset[int] = frozenset()):
        self._result, self._traced = result, traced
        self._rows: list | None = None

    def _to_host(self) -> list:
        result = self._result
        kinds, entropy = result.kinds.tolist(), result.entropy.tolist()
        ids, weights = result.ids.tolist(), result.weights.tolist()
        rows = []
        for i, kind in enumerate(kinds):
            name = _KIND_NAMES.get(kind)
            if name is None:
                rows.append(None)
            elif name != THINK:
                rows.append((name, None, None, None))
            else:
                support = sum(1 for w in weights[i] if w > 0)
                record = (name, entropy[i], ids[i][:support], weights[i][:support])
                rows.append(record if i in self._traced else LocalRecord(record))
        return rows

    def __getitem__(self, i: int):
        if self._rows is None:
            self._rows = self._to_host()
        return self._rows[i]


def _around_model_runner_sample(original, model_runner, logits_output, forward_batch, *args, **kwargs):
    plan = getattr(forward_batch, PLAN_ATTR, None)
    if plan is None or not plan.has_work:
        return original(model_runner, logits_output, forward_batch, *args, **kwargs)
    # Each row samples the token at position seq_len (the tokens it holds so far).
    setattr(logits_output, PLAN_ATTR, (plan, forward_batch.req_pool_indices, forward_batch.seq_lens))
    try:
        return original(model_runner, logits_output, forward_batch, *args, **kwargs)
    finally:
        delattr(logits_output, PLAN_ATTR)


def seeded_plain_tokens(logits: torch.Tensor, sampling_info, seeded, index: torch.Tensor,
                        positions: torch.Tensor) -> torch.Tensor:
    """SGLang's own sampling settings for the seeded plain rows (``index``), drawn from
    their seeds."""
    return sample_tokens(
        logits.index_select(0, index),
        temperature=sampling_info.temperatures.view(-1).index_select(0, index),
        top_k=sampling_info.top_ks.index_select(0, index).long(),
        top_p=sampling_info.top_ps.index_select(0, index),
        min_p=sampling_info.min_ps.index_select(0, index),
        fetch_k=seeded.fetch_k,
        draws=RowDraws(torch.tensor(seeded.seeds, device=logits.device), positions.index_select(0, index)),
        stream=STREAM_PLAIN,
    )


def _around_sampler_forward(original, sampler, logits_output, sampling_info, *args, **kwargs):
    carried = getattr(logits_output, PLAN_ATTR, None)
    table = runtime.get().table
    if carried is None or table is None:
        return original(sampler, logits_output, sampling_info, *args, **kwargs)
    plan, rows, seq_lens = carried
    logits = logits_output.next_token_logits  # [B, V]
    batch_size = logits.shape[0]
    rows, positions = rows[:batch_size], seq_lens[:batch_size].long()
    result = seeded = None
    if plan.has_soft:
        real = plan.real if plan.real is not None else torch.ones_like(rows, dtype=torch.bool)
        result = table.step(rows, logits, real[:batch_size], plan, positions)
    if plan.seeded_plain is not None:
        seeded_index = torch.tensor(plan.seeded_plain.index, device=logits.device)
        seeded = seeded_plain_tokens(logits, sampling_info, plan.seeded_plain, seeded_index, positions)
    # SGLang's sampler overwrites the logits in place, so it runs last.
    next_ids = original(sampler, logits_output, sampling_info, *args, **kwargs)
    if seeded is not None:
        next_ids = next_ids.index_copy(0, seeded_index, seeded.to(next_ids.dtype))
    if result is not None:
        next_ids = torch.where(result.is_soft, result.tokens.to(next_ids.dtype), next_ids)
        logits_output.customized_info = {META_INFO_KEY: StepRecords(result, plan.traced_rows)}
    return next_ids


def register(registry, hook_type) -> None:
    registry.register(MODEL_RUNNER_SAMPLE, _around_model_runner_sample, hook_type.AROUND)
    registry.register(SAMPLER_FORWARD, _around_sampler_forward, hook_type.AROUND)
