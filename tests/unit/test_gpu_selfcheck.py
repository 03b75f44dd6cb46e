"""scripts/gpu_selfcheck.py in its reduced CPU form: every check it runs on a GPU passes
here too (the no-waits check with its device tensors on ``meta``, where the guard refuses
the pageable and blocking copies CUDA's sync debug mode refuses), its report is complete,
and a check that finds a wait or raises is a FAIL in the report, never a crash."""

import json
import sys

import pytest
import torch
from server_process import REPO_ROOT


@pytest.fixture
def selfcheck(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    import gpu_selfcheck

    yield gpu_selfcheck
    for name in [n for n in sys.modules if n == "gpu_selfcheck" or n.startswith("selfcheck")]:
        sys.modules.pop(name)


def test_the_self_check_passes_in_its_cpu_form(selfcheck, tmp_path):
    out = tmp_path / "selfcheck.json"
    assert selfcheck.main(["--device", "cpu", "--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    checks = report["checks"]
    assert report["verdict"] == "pass" and all(c["pass"] for c in checks.values())
    assert set(checks) == {"replay", "no_waits", "batch_invariance", "vocab_split", "padded_rows", "speed"}
    replay = checks["replay"]
    assert replay["mode"] == "torch.jit.trace" and replay["steps"] == 8 and replay["readmitted_rows"]
    # Rows left thinking by the budget (3), Cold Stop (2) and the model's think-end (5).
    assert 3 in replay["kinds_seen"]["budget"] and 2 in replay["kinds_seen"]["cold_stop"]
    assert 5 in replay["kinds_seen"]["model_end"] and replay["first_blend"] > 0 and replay["math_explicit"] > 0
    assert replay["max_error"]["weights"] < 1e-4 and replay["max_error"]["mixture"] < 1e-5
    assert all(n > 0 for n in replay["compared"].values())  # the references were compared
    # The vector input kind: vectors and traces compared, both projections' rows fed their
    # max_latent_steps vectors (2 and 3) and went on thinking explicitly.
    assert replay["compared"]["latent"] > 0 and replay["compared"]["latent_trace"] > 0
    assert replay["max_error"]["latent"] < 1e-4
    segments = replay["latent_segments"]
    assert any(s.startswith("vvt") for s in segments["latent_ridge"])
    assert any(s.startswith("vvvt") for s in segments["latent_none"])
    assert checks["no_waits"]["device"] == "meta" and checks["no_waits"]["vector_rows"] > 0
    assert checks["vocab_split"]["2_way_pass"] and checks["vocab_split"]["4_way_pass"]
    speed = checks["speed"]
    assert [row["batch"] for row in speed["batches"]] == [1, 8] and not speed["judged"]
    assert all(row["soft_step_ms"] > 0 and row["plain_sample_ms"] > 0 for row in speed["batches"])


def test_a_pageable_copy_in_the_guarded_region_is_a_failed_check(selfcheck):
    """What tripped CUDA's sync debug mode (a copy from pageable host memory inside the
    guarded block) fails the no-waits check on ``meta``, as a report, with the reason."""
    from selfcheck.bench import Bench
    from selfcheck.checks import check_no_waits

    class CopyingBench(Bench):
        def decode(self, table, rows, token_ids):
            token_ids = token_ids + torch.zeros(len(token_ids), dtype=torch.int64).to(self.device)
            return super().decode(table, rows, token_ids)

    sizes = dict(vocab=512, hidden=16, dtype=torch.float32)
    assert check_no_waits(Bench(torch.device("meta"), **sizes), 16)["pass"]
    failed = check_no_waits(CopyingBench(torch.device("meta"), **sizes), 16)
    assert not failed["pass"] and "blocking copy" in failed["problem"] and "decode" in failed["stack"]


def test_a_pageable_copy_in_the_vector_path_is_a_failed_check(selfcheck):
    """The no-waits check runs the vector input kind's path too: a pageable copy where the
    logits hook keeps the hidden states (the table call it makes) fails it."""
    from selfcheck.bench import Bench
    from selfcheck.checks import check_no_waits

    from sglang_soft_thinking.table import SoftThinkingTable

    class CopyingTable(SoftThinkingTable):
        def store_hidden(self, rows, hidden):
            super().store_hidden(rows + torch.zeros(len(rows), dtype=torch.int64).to(rows.device), hidden)

    class CopyingBench(Bench):
        def table(self, rows):
            table = CopyingTable(rows, super().table(rows).k_max, self.device)
            table.ensure_vectors(self.weight.shape[1])
            return table

    failed = check_no_waits(CopyingBench(torch.device("meta"), vocab=512, hidden=16, dtype=torch.float32), 16)
    assert not failed["pass"] and "blocking copy" in failed["problem"] and "store_hidden" in failed["stack"]


def test_the_replay_fails_a_wrong_vector_input(selfcheck):
    """The replay check's float64 comparison of the vectors fed finds a rescale off by 1%,
    a decode step that mixes zeros where the vectors go (a rank that does not own them),
    and a captured step in which the logits hook kept no hidden state. Captured and eager
    twins agree in each case: only the reference finds it."""
    from selfcheck.bench import Bench
    from selfcheck.replay import Replay, check_replay

    from sglang_soft_thinking.mixing import decode_inputs

    bench = Bench(torch.device("cpu"), vocab=512, hidden=16, dtype=torch.float32)
    assert check_replay(bench, 16, 8)["pass"]
    faults = {
        "rescale": (bench.geometry, "target_norm", bench.geometry.target_norm * 1.01),
        "vector_not_mixed": (bench, "decode", lambda table, rows, ids: decode_inputs(
            bench.mixer, bench.embedding(ids), table, rows, table.k_max, owns_vectors=False)),
        "hidden_not_kept": (Replay, "_decode", lambda self, table, ids, hidden: (
            self.bench.decode(table, self.rows, ids), table.hidden.clone())),
    }
    for fault, (owner, name, value) in faults.items():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(owner, name, value)
            problems = check_replay(bench, 16, 8)["problems"]
        assert any("vector input off float64" in p for p in problems), (fault, problems)
        assert not any("differ from eager" in p for p in problems), (fault, problems)


def test_a_check_that_raises_is_reported_with_its_stack(selfcheck):
    def broken():
        raise RuntimeError("the device refused")

    result = selfcheck.run_check(broken)
    assert result["pass"] is False and "RuntimeError: the device refused" in result["problem"]
    assert "broken" in result["stack"]
