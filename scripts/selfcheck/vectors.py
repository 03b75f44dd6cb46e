"""The replay check's share for the vector input kind (method ``latent``): each vector fed
against the float64 ``h W_a`` rescaled to the mean input-row norm (or ``h`` as it is), each
vector step's trace against the float64 cosines, and each row's latent segment ending
after ``max_latent_steps`` vectors, thinking going on explicitly."""

from __future__ import annotations

import torch

from sglang_soft_thinking.phases import KIND_THINK

from . import reference as R
from .bench import ROW_KINDS, VECTOR_KINDS


class VectorCheck:
    """Follows the latent rows of a replayed batch. Per step: :meth:`inputs` on the decode
    inputs (vectors fed from the previous step's hidden states), :meth:`thoughts` on the
    step's result (this step's hidden states), then :meth:`stepped`."""

    def __init__(self, bench, batch: int, notes: dict, problems: list[str]):
        self.bench, self.notes, self.problems = bench, notes, problems
        # Float64 from W_in and W_out alone, not from geometry.py.
        self.realign = R.realign(bench.weight, bench.output_weight)
        rounding = 2.0 ** -7 if bench.dtype == torch.bfloat16 else 1e-5  # the embedding dtype's
        self.rounding, self.map_tolerance = rounding, 1e-4  # the map is computed in float32
        self.previous = torch.zeros(batch, bench.hidden_size, device=bench.device)  # the last step's h
        self.segments: dict[int, list[bool]] = {}  # row -> per thinking step since admission: a vector?
        self.finished: list[tuple[str, list[bool]]] = []  # the segments of re-admitted rows
        notes["compared"].update(latent=0, latent_trace=0)
        notes["max_error"]["latent"] = 0.0
        notes["latent_segments"] = {}

    def _as_is(self, kinds: list[str], rows: list[int]) -> torch.Tensor:
        return torch.tensor([VECTOR_KINDS[kinds[r]] for r in rows], device=self.bench.device)

    def inputs(self, step: int, inputs: torch.Tensor, feeds: torch.Tensor, kinds: list[str]) -> None:
        """Rows feeding a vector: their input equals the float64 reference of last step's h,
        within the embedding dtype's rounding and the float32 map's error."""
        rows = feeds.nonzero().flatten().tolist()
        if not rows:
            return
        want = R.latent_input(self.previous[rows], self.realign, self.bench.weight, self._as_is(kinds, rows))
        error = (inputs[rows].double() - want).abs()  # [n, H]
        scale = want.norm(dim=1, keepdim=True) / want.shape[1] ** 0.5  # an element's typical size
        bound = self.rounding * want.abs() + self.map_tolerance * scale
        self.notes["compared"]["latent"] += len(rows)
        relative = (error / scale).max(dim=1).values
        self.notes["max_error"]["latent"] = max(self.notes["max_error"]["latent"], float(relative.max()))
        for n, r in enumerate(rows):
            if bool((error[n] > bound[n]).any()):
                self.problems.append(f"step {step} row {r} ({kinds[r]}): vector input off float64 by "
                                     f"{float(relative[n]):.3g} of an element's size")

    def thoughts(self, step: int, result, plan, hidden: torch.Tensor) -> None:
        """The latent rows' steps: a vector step's trace holds the ``max_topk`` tokens nearest
        its vector by cosine (float64), with those similarities; its segment is recorded."""
        index = plan.soft.index
        latent = [(j, r) for j, r in enumerate(index) if plan.kinds[r] in VECTOR_KINDS]
        for j, r in latent:
            if int(result.kinds[j]) == KIND_THINK:
                self.segments.setdefault(r, []).append(bool(result.vector[j]))
        vector = [(j, r) for j, r in latent if bool(result.vector[j])]
        if not vector:
            return
        rows = [r for _, r in vector]
        want = R.latent_input(hidden[rows], self.realign, self.bench.weight, self._as_is(plan.kinds, rows))
        everything = R.cosines(self.bench.weight, want)  # [n, V]
        for n, (j, r) in enumerate(vector):
            k = plan.requests[r].max_topk
            ids, sims = result.ids[j], result.weights[j]
            exact = R.cosines(self.bench.weight, want[n:n + 1], ids[:k].unsqueeze(0))[0]  # [k]
            # A dot product's rounding is bounded by that of its terms' absolute values.
            bound = (self.rounding * R.cosines(self.bench.weight.abs(), want[n:n + 1].abs(), ids[:k].unsqueeze(0))[0]
                     + self.map_tolerance)
            kth = float(everything[n].topk(k).values[-1])
            self.notes["compared"]["latent_trace"] += 1
            if bool(((sims[:k].double() - exact).abs() > bound).any()):
                self.problems.append(f"step {step} row {r}: a vector step's similarities are not the cosines")
            elif bool((exact < kth - 2 * bound.max()).any()) or ids[:k].unique().numel() < k:
                self.problems.append(f"step {step} row {r}: a vector step's trace misses its nearest tokens")
            elif bool(sims[k:].ne(0).any()):
                self.problems.append(f"step {step} row {r}: a vector step's trace is wider than its max_topk")

    def stepped(self, hidden: torch.Tensor) -> None:
        self.previous.copy_(hidden)

    def readmitted(self, rows: list[int], kinds: list[str]) -> None:
        for r in rows:
            if r in self.segments:
                self.finished.append((kinds[r], self.segments.pop(r)))

    def verdict(self, kinds: list[str]) -> list[str]:
        """Each latent row fed ``max_latent_steps`` vectors, then thought explicitly (a row
        still in its segment at the end: as many vectors as it had steps)."""
        problems = []
        segments = self.finished + [(kinds[r], s) for r, s in self.segments.items()]
        for kind in VECTOR_KINDS:
            limit = ROW_KINDS[kind]["max_latent_steps"]
            found = [s for k, s in segments if k == kind]
            self.notes["latent_segments"][kind] = ["".join("v" if v else "t" for v in s) for s in found]
            if not any(len(s) > limit for s in found):
                problems.append(f"no {kind} row left its latent segment and thought on explicitly")
            for s in found:
                if s != [True] * min(len(s), limit) + [False] * (len(s) - limit):
                    problems.append(f"a {kind} row's thinking steps were {s}: not {limit} vectors, then tokens")
        if not self.notes["compared"]["latent"]:
            problems.append("no vector input was compared with its float64 reference")
        if not self.notes["compared"]["latent_trace"]:
            problems.append("no vector step's trace was compared with its float64 cosines")
        return problems
