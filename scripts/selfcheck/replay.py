"""The replay check: a decode step captured while no row thinks, replayed while rows of every
kind think, leave thinking and are re-admitted; each replay equals an eager twin bitwise
and the independent float64 references (reference.py) within the dtype's rounding."""

from __future__ import annotations

import warnings

import torch

from sglang_soft_thinking.phases import (
    KIND_ANSWER, KIND_BUDGET, KIND_COLD_STOP, KIND_ERROR_INPUT, KIND_THINK, KIND_THINK_END,
)
from sglang_soft_thinking.methods.switch import MODE_LATENT
from sglang_soft_thinking.plan import group_soft_rows
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.transfer import to_device

from . import reference as R
from .bench import END_ID, MATH_EVERY, MATH_ID, NEWLINE_ID, ROW_KINDS, batch_kinds, requests_of

EXACT_CONCEPT = {"concept_top_k", "budget", "cold_stop", "model_end"}  # no noise: weights to compare
LEAVES = {"budget": KIND_BUDGET, "cold_stop": KIND_COLD_STOP, "model_end": KIND_THINK_END}


class Plan:
    """The soft rows of a batch of rows of these kinds, as the host plans them."""

    def __init__(self, bench, kinds: list[str], seed: int):
        self.kinds, self.requests = kinds, requests_of(kinds, seed)
        soft_rows = [r for r, s in enumerate(self.requests) if s is not None]
        self.soft = group_soft_rows(soft_rows, [self.requests[r] for r in soft_rows], bench.vocab)
        self.order = to_device(self.soft.index, torch.int64, bench.device)
        self.unsorted = any(g.samples_vocabulary for g in self.soft.groups)


def capture(fn, cuda: bool, table):
    """``fn`` captured in a CUDA graph (after warm-up on a side stream); a replay returns its
    outputs. Elsewhere the function itself (the mixing is traced separately, :func:`trace`).
    The warm-up runs ``fn`` on ``table``: its buffers are put back as they were afterwards
    (in place: the graph reads those buffers), so the eager twin stays its twin."""
    if not cuda:
        return fn
    buffers = (table.ints, table.floats, table.concept_ids, table.concept_weights)
    saved = [b.clone() for b in buffers]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = fn()
    for buffer, value in zip(buffers, saved):
        buffer.copy_(value)

    def replay():
        graph.replay()
        return outputs
    return replay


def trace(bench, table, rows, tokens):
    """On a CPU: the decode inputs recorded by ``torch.jit.trace`` (Python frozen, as in a
    capture), run without TorchScript's optimisations, which would fold the table's current
    values into constants (a CUDA graph reads its buffers at every replay)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(lambda ids: bench.decode(table, rows, ids), (tokens,), check_trace=False)

    def replay():
        with torch.jit.optimized_execution(False):
            return traced(tokens)
    return replay


def check_replay(bench, batch: int, steps: int) -> dict:
    device, cuda = bench.device, bench.device.type == "cuda"
    kinds = batch_kinds(batch)
    captured, eager = bench.table(batch), bench.table(batch)
    for table in (captured, eager):
        table.admit(list(range(batch)), [None] * batch)  # no soft row at capture
    rows = torch.arange(batch, device=device)
    tokens = torch.zeros(batch, dtype=torch.int64, device=device)
    logits = bench.logits(batch, 0)
    positions = torch.full((batch,), 40, dtype=torch.int64, device=device)
    problems, seen = [], {name: set() for name in ROW_KINDS}
    notes = {"first_blend": 0, "math_explicit": 0, "compared": {"mixture": 0, "concept": 0, "noise_support": 0, "mixture_of_inputs": 0, "think_router": 0}}
    worst = {"mixture": 0.0, "concept": 0.0}
    tolerance = 2.0 ** -7 if bench.dtype == torch.bfloat16 else 1e-5
    with torch.no_grad():
        if cuda:
            mix = capture(lambda: bench.decode(captured, rows, tokens), cuda, captured)
        else:
            mix = trace(bench, captured, rows, tokens)
        mode = "CUDA graph" if cuda else "torch.jit.trace"

        def step_of(table, plan):
            failed = table.missed_inputs(plan.order) if cuda else None
            return soft_step(table, plan.order, logits[plan.order], plan.soft, positions[plan.order],
                             failed=failed, vocabulary=bench.vocabulary)

        plan = Plan(bench, kinds, 100)
        for table in (captured, eager):
            table.admit(list(range(batch)), plan.requests)
        step = capture(lambda: step_of(captured, plan), cuda, captured)
        readmitted, unsorted = [], plan.unsorted
        for i in range(steps):
            if i == steps // 2:  # half the rows are re-admitted with other methods and widths
                names = list(ROW_KINDS)
                kinds = [names[(names.index(k) + 5) % len(names)] if r % 2 == 0 else k for r, k in enumerate(kinds)]
                plan = Plan(bench, kinds, 500)
                readmitted = list(range(0, batch, 2))
                for table in (captured, eager):
                    table.admit(readmitted, [plan.requests[r] for r in readmitted])
                step = capture(lambda: step_of(captured, plan), cuda, captured)
                unsorted = unsorted and plan.unsorted
            logits.copy_(bench.logits(batch, i + 1))
            if i == 2:  # the model writes the think-end token on the rows that wait for it
                ends = [r for r, k in enumerate(kinds) if k == "model_end"]
                logits[to_device(ends, torch.int64, device), END_ID] = 60.0
            if i == 1:  # on switch rows a flat step (latent: its entropy rose) tops a maths token
                maths = to_device([r for r, k in enumerate(kinds) if k == "switch_math_blend"], torch.int64, device)
                logits[maths] = 0.2 * logits[maths]
                logits[maths, MATH_ID] = logits[maths].amax(dim=1) + 0.5
            positions.add_(1)
            use = (captured.is_soft > 0) & (captured.has_concept > 0)
            ids_before, weights_before = captured.concept_ids.clone(), captured.concept_weights.clone()
            first = (captured.thinking_steps == 0) & (captured.is_soft > 0)
            got_inputs, want_inputs = mix(), bench.decode(eager, rows, tokens)
            got, want = step(), step_of(eager, plan)
            differing = [name for name, a, b in (
                ("inputs", got_inputs, want_inputs), ("tokens", got.tokens, want.tokens),
                ("kinds", got.kinds, want.kinds), ("ids", got.ids, want.ids), ("weights", got.weights, want.weights))
                if not torch.equal(a, b)]
            if differing:
                problems.append(f"step {i}: the replay's {', '.join(differing)} differ from eager")
            # The mixture against float64, within the rounding of the embedding's dtype.
            ref = R.mixture(bench.weight, ids_before, weights_before)
            bound = tolerance * R.mixture(bench.weight.abs(), ids_before, weights_before.abs()) + 1e-7
            plain = bench.embedding(tokens)
            for r in range(batch):
                if use[r]:
                    error = (got_inputs[r].double() - ref[r]).abs()
                    worst["mixture"] = max(worst["mixture"], float(error.max()))
                    notes["compared"]["mixture"] += 1
                    if (error > bound[r]).any():
                        problems.append(f"step {i} row {r} ({kinds[r]}): mixture off float64 by {float(error.max()):.3g}")
                elif not torch.equal(got_inputs[r], plain[r]):
                    problems.append(f"step {i} row {r} ({kinds[r]}): a row without a concept token was mixed")
            problems += _check_thoughts(bench, plan, logits, got, i, worst, notes, first, eager.switch_mode)
            for j, r in enumerate(plan.soft.index):
                seen[kinds[r]].add(int(got.kinds[j]))
            tokens.copy_(logits.argmax(dim=1))
            tokens[plan.order] = got.tokens
    for kind, leaving in LEAVES.items():
        if leaving not in seen[kind]:
            problems.append(f"no {kind} row left thinking that way (kinds seen: {sorted(seen[kind])})")
    if any(KIND_ERROR_INPUT in s for s in seen.values()):
        problems.append("a row's concept token was not mixed into its input (KIND_ERROR_INPUT)")
    if not any(KIND_ANSWER in s for s in seen.values()):
        problems.append("no row started answering")
    if not notes["first_blend"]:
        problems.append("no switch row fed its first step blended with the newline token")
    if not notes["math_explicit"]:
        problems.append("no latent switch step wrote a maths token")
    if not unsorted:
        problems.append("no group drew its thinking samples over the unsorted vocabulary")
    return {"mode": mode, "batch": batch, "steps": steps, "re_admitted_rows": readmitted,
            "kinds_seen": {k: sorted(v) for k, v in seen.items()}, "max_error": worst, **notes,
            "problems": problems, "pass": not problems}


def _check_thoughts(bench, plan, logits, result, step, worst, notes, first, switch_mode) -> list[str]:
    """Each soft row's thought against the float64 references of its method."""
    problems = []
    for j, r in enumerate(plan.soft.index):
        kind, s = plan.kinds[r], plan.requests[r]
        ids, weights = result.ids[j], result.weights[j]
        total = float(weights.double().sum())
        if abs(total - 1) > 1e-4:
            problems.append(f"step {step} row {r} ({kind}): thought weights sum to {total:.6f}")
        z = logits[r]
        cuts = (s.temperature, s.top_k, s.top_p, s.min_p)
        if kind in EXACT_CONCEPT:
            got = R.dense(ids, weights, bench.vocab)
            error = min(float((got - want).abs().max()) for want in R.near(R.concept_weights, z, *cuts, s.max_topk))
            worst["concept"] = max(worst["concept"], error)
            notes["compared"]["concept"] += 1
            if error > 1e-4:
                problems.append(f"step {step} row {r} ({kind}): concept weights off float64 by {error:.3g}")
        elif kind in ("mixture_of_inputs", "think_router") and int(result.kinds[j]) == KIND_THINK:
            token = int(result.tokens[j])  # while thinking, the written token is the step's sample
            wants = ([R.mixture_of_inputs(z, s.max_topk, token, s.value("beta"))] if kind == "mixture_of_inputs"
                     else R.think_router(z, *cuts, s.max_topk, s.value("tau"), token))
            got = R.dense(ids, weights, bench.vocab)
            error = min(float((got - want).abs().max()) for want in wants)
            worst["concept"] = max(worst["concept"], error)
            notes["compared"][kind] += 1
            if error > 1e-4:
                problems.append(f"step {step} row {r} ({kind}): input weights off float64 by {error:.3g}")
        elif kind in ("concept_gumbel", "concept_dirichlet"):
            kept = ids[weights > 0]
            allowed = (R.near(R.concept_weights, z, *cuts, s.max_topk) if kind == "concept_gumbel"
                       else R.near(R.support, z, *cuts))
            notes["compared"]["noise_support"] += 1
            if not any(bool((a[kept] > 0).all()) for a in allowed):
                problems.append(f"step {step} row {r} ({kind}): a noisy weight outside the reference support")
        elif kind == "switch_math_blend":
            at = (ids == NEWLINE_ID) & (weights > 0)
            if first[r] and at.any():
                notes["first_blend"] += 1
                if abs(float(weights[at].sum()) - 0.1) > 1e-5:
                    problems.append(f"step {step} row {r}: first blend weighs the newline {float(weights[at].sum())}")
            token = int(result.tokens[j])
            latent = int(switch_mode[r]) == MODE_LATENT
            if int(result.kinds[j]) == KIND_THINK and token % MATH_EVERY == 0 and latent:  # fed as itself
                notes["math_explicit"] += 1
                if int(ids[0]) != token or float(weights[0]) != 1.0:
                    problems.append(f"step {step} row {r}: maths token {token} not fed as itself")
    return problems
