"""The replay check: a decode step captured while no row thinks, replayed while rows of every
kind think, leave thinking and are re-admitted; each replay equals an eager twin bitwise
and the independent float64 references (reference.py) within the dtype's rounding. The
captured decode step holds the mixing and the logits hook's keeping of the hidden states
(as SGLang's decode graph holds both); the vector input kind is checked in vectors.py."""

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
from .vectors import VectorCheck

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
    buffers = [b for b in (table.ints, table.floats, table.concept_ids, table.concept_weights, table.hidden,
                           table.vectors) if b is not None]
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


def trace(fn, inputs: tuple):
    """On a CPU: ``fn(*inputs)`` recorded by ``torch.jit.trace`` (Python frozen, as in a
    capture), run on the same input tensors without TorchScript's optimisations, which would
    fold the table's current values into constants (a CUDA graph reads its buffers at every
    replay)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(fn, inputs, check_trace=False)

    def replay():
        with torch.jit.optimized_execution(False):
            return traced(*inputs)
    return replay


def check_replay(bench, batch: int, steps: int) -> dict:
    run = Replay(bench, batch)
    with torch.no_grad():
        for i in range(steps):
            if i == steps // 2:
                run.readmit_half()
            run.step(i)
    return run.verdict(steps)


class Replay:
    """A captured (or traced) table and its eager twin, stepped together."""

    def __init__(self, bench, batch: int):
        self.bench, self.batch, device = bench, batch, bench.device
        self.cuda = device.type == "cuda"
        self.captured, self.eager = bench.table(batch), bench.table(batch)
        for table in (self.captured, self.eager):
            table.admit(list(range(batch)), [None] * batch)  # no soft row at capture
        # The static buffers a captured step reads.
        self.rows = torch.arange(batch, device=device)
        self.tokens = torch.zeros(batch, dtype=torch.int64, device=device)
        self.logits = bench.logits(batch, 0)
        self.positions = torch.full((batch,), 40, dtype=torch.int64, device=device)
        self.hidden = bench.hidden(batch, 0)  # [batch, H] the step's final-norm hidden states
        self.problems, self.seen = [], {name: set() for name in ROW_KINDS}
        self.notes = {"first_blend": 0, "math_explicit": 0, "readmitted_rows": [],
                      "compared": {"mixture": 0, "concept": 0, "noise_support": 0, "mixture_of_inputs": 0,
                                   "think_router": 0, "selar": 0},
                      "max_error": {"mixture": 0.0, "weights": 0.0}}
        with torch.no_grad():
            self.vectors = VectorCheck(bench, batch, self.notes, self.problems)
            if self.cuda:
                self.mix = capture(lambda: self._decode(self.captured, self.tokens, self.hidden), True, self.captured)
            else:
                self.mix = trace(lambda ids, hidden: self._decode(self.captured, ids, hidden),
                                 (self.tokens, self.hidden))
            self._plan(batch_kinds(batch), list(range(batch)), seed=100)
        self.unsorted = self.plan.unsorted

    def _plan(self, kinds: list[str], admitted: list[int], seed: int) -> None:
        """Admit ``admitted`` rows with their kinds' requests, plan the batch, capture its step."""
        self.kinds, self.plan = kinds, Plan(self.bench, kinds, seed)
        for table in (self.captured, self.eager):
            table.admit(admitted, [self.plan.requests[r] for r in admitted])
        self.replay_step = capture(lambda: self._soft_step(self.captured), self.cuda, self.captured)

    def _decode(self, table, tokens, hidden):
        """What a decode graph holds: the inputs mixed, then (after the model) the step's
        hidden states kept by the logits hook's own table call (hooks/hidden.py). Returns
        the inputs and the kept states: TorchScript drops an in-place write to a buffer
        whose result nothing returns (a CUDA graph replays every kernel it recorded)."""
        inputs = self.bench.decode(table, self.rows, tokens)
        table.store_hidden(self.rows, hidden)
        return inputs, table.hidden

    def _soft_step(self, table):
        plan = self.plan
        failed = table.missed_inputs(plan.order) if self.cuda else None
        return soft_step(table, plan.order, self.logits[plan.order], plan.soft, self.positions[plan.order],
                         failed=failed, vocabulary=self.bench.vocabulary, geometry=self.bench.geometry)

    def readmit_half(self) -> None:
        """Every other row is re-admitted with another kind: another method and width, a
        plain row turning soft and a soft one plain."""
        names = list(ROW_KINDS)
        kinds = [names[(names.index(k) + 5) % len(names)] if r % 2 == 0 else k for r, k in enumerate(self.kinds)]
        self.notes["readmitted_rows"] = list(range(0, self.batch, 2))
        self.vectors.readmitted(self.notes["readmitted_rows"], self.kinds)
        self._plan(kinds, self.notes["readmitted_rows"], seed=500)
        self.unsorted = self.unsorted and self.plan.unsorted

    def _rows_of(self, kind: str) -> torch.Tensor:
        return to_device([r for r, k in enumerate(self.kinds) if k == kind], torch.int64, self.bench.device)

    def _next_logits(self, i: int) -> None:
        logits = self.logits
        logits.copy_(self.bench.logits(self.batch, i + 1))
        self.hidden.copy_(self.bench.hidden(self.batch, i + 1))
        if i == 1:  # on switch rows a flat step (latent: its entropy rose) tops a maths token
            maths = self._rows_of("switch_math_blend")
            logits[maths] = 0.2 * logits[maths]
            logits[maths, MATH_ID] = logits[maths].amax(dim=1) + 0.5
        if i == 2:  # the model writes the think-end token on the rows that wait for it
            logits[self._rows_of("model_end"), END_ID] = 60.0
        self.positions.add_(1)

    def step(self, i: int) -> None:
        captured, eager = self.captured, self.eager
        self._next_logits(i)
        use = (captured.is_soft > 0) & (captured.has_concept > 0)
        feeds = use & (captured.feeds_vector > 0)  # rows whose input is a vector, not a mixture
        before = captured.concept_ids.clone(), captured.concept_weights.clone()
        first = (captured.thinking_steps == 0) & (captured.is_soft > 0)
        (got_inputs, _), (want_inputs, _) = self.mix(), self._decode(eager, self.tokens, self.hidden)
        got, want = self.replay_step(), self._soft_step(eager)
        differing = [name for name, a, b in (
            ("inputs", got_inputs, want_inputs), ("tokens", got.tokens, want.tokens), ("kinds", got.kinds, want.kinds),
            ("ids", got.ids, want.ids), ("weights", got.weights, want.weights), ("vector rows", got.vector, want.vector),
            ("kept hidden states", captured.hidden, eager.hidden), ("vectors", captured.vectors, eager.vectors))
            if not torch.equal(a, b)]
        if differing:
            self.problems.append(f"step {i}: the replay's {', '.join(differing)} differ from eager")
        self._check_mixture(i, got_inputs, use, feeds, *before)
        self.vectors.inputs(i, got_inputs, feeds, self.kinds)
        self.problems += _check_thoughts(self.bench, self.plan, self.logits, got, i, self.notes, first,
                                         eager.switch_mode)
        self.vectors.thoughts(i, got, self.plan, self.hidden)
        self.vectors.stepped(self.hidden)
        for j, r in enumerate(self.plan.soft.index):
            self.seen[self.kinds[r]].add(int(got.kinds[j]))
        self.tokens.copy_(self.logits.argmax(dim=1))
        self.tokens[self.plan.order] = got.tokens

    def _check_mixture(self, i: int, inputs, use, feeds, ids, weights) -> None:
        """Rows with a concept token: float64 ``sum_i w_i E[ids_i]`` within the rounding of
        the embedding's dtype (rows feeding a vector: vectors.py); every other row: its
        token's embedding, bitwise."""
        weight = self.bench.weight
        tolerance = 2.0 ** -7 if weight.dtype == torch.bfloat16 else 1e-5
        error = (inputs.double() - R.mixture(weight, ids, weights)).abs()
        bound = tolerance * R.mixture(weight.abs(), ids, weights.abs()) + 1e-7
        plain = (inputs != self.bench.embedding(self.tokens)).any(dim=1) & ~use
        use = use & ~feeds
        over = ((error > bound).any(dim=1) & use).cpu()
        self.notes["compared"]["mixture"] += int(use.sum())
        worst = float(torch.where(use.unsqueeze(1), error, torch.zeros_like(error)).max())
        self.notes["max_error"]["mixture"] = max(self.notes["max_error"]["mixture"], worst)
        for r in over.nonzero().flatten().tolist():
            self.problems.append(f"step {i} row {r} ({self.kinds[r]}): mixture off float64 "
                                 f"by {float(error[r].max()):.3g}")
        for r in plain.cpu().nonzero().flatten().tolist():
            self.problems.append(f"step {i} row {r} ({self.kinds[r]}): a row without a concept token was mixed")

    def verdict(self, steps: int) -> dict:
        problems, seen, notes = self.problems, self.seen, self.notes
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
        if not self.unsorted:
            problems.append("no group drew its thinking samples over the unsorted vocabulary")
        problems += self.vectors.verdict(self.kinds)
        return {"mode": "CUDA graph" if self.cuda else "torch.jit.trace", "batch": self.batch, "steps": steps,
                "kinds_seen": {k: sorted(v) for k, v in seen.items()}, **notes, "problems": problems,
                "pass": not problems}


def _check_thoughts(bench, plan, logits, result, step, notes, first, switch_mode) -> list[str]:
    """Each soft row's thought against the float64 references of its method."""
    problems, worst = [], notes["max_error"]
    for j, r in enumerate(plan.soft.index):
        kind, s = plan.kinds[r], plan.requests[r]
        ids, weights = result.ids[j], result.weights[j]
        total = float(weights.double().sum())
        if abs(total - 1) > 1e-4 and not bool(result.vector[j]):  # a vector step's weights: cosines
            problems.append(f"step {step} row {r} ({kind}): thought weights sum to {total:.6f}")
        z = logits[r]
        cuts = (s.temperature, s.top_k, s.top_p, s.min_p)
        if kind in EXACT_CONCEPT:
            got = R.dense(ids, weights, bench.vocab)
            error = min(float((got - want).abs().max()) for want in R.near(R.concept_weights, z, *cuts, s.max_topk))
            worst["weights"] = max(worst["weights"], error)
            notes["compared"]["concept"] += 1
            if error > 1e-4:
                problems.append(f"step {step} row {r} ({kind}): concept weights off float64 by {error:.3g}")
        elif kind in ("mixture_of_inputs", "think_router") and int(result.kinds[j]) == KIND_THINK:
            token = int(result.tokens[j])  # while thinking, the written token is the step's sample
            wants = ([R.mixture_of_inputs(z, s.max_topk, token, s.value("beta"))] if kind == "mixture_of_inputs"
                     else R.think_router(z, *cuts, s.max_topk, s.value("tau"), token))
            got = R.dense(ids, weights, bench.vocab)
            error = min(float((got - want).abs().max()) for want in wants)
            worst["weights"] = max(worst["weights"], error)
            notes["compared"][kind] += 1
            if error > 1e-4:
                problems.append(f"step {step} row {r} ({kind}): input weights off float64 by {error:.3g}")
        elif kind == "selar" and int(result.kinds[j]) == KIND_THINK:
            token = int(result.tokens[j])
            wants = R.selar(z, *cuts, s.value("selar_topk"), s.value("selar_threshold"), s.value("selar_push"), token,
                            token % MATH_EVERY == 0)
            got = R.dense(ids, weights, bench.vocab)
            error = min(float((got - want).abs().max()) for want in wants)
            worst["weights"] = max(worst["weights"], error)
            notes["compared"]["selar"] += 1
            if error > 1e-4:
                problems.append(f"step {step} row {r} (selar): input weights off float64 by {error:.3g}")
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
