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
    assert checks["no_waits"]["device"] == "meta"
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
    assert check_no_waits(Bench(torch.device("meta"), **sizes), 13)["pass"]
    failed = check_no_waits(CopyingBench(torch.device("meta"), **sizes), 13)
    assert not failed["pass"] and "blocking copy" in failed["problem"] and "decode" in failed["stack"]


def test_a_check_that_raises_is_reported_with_its_stack(selfcheck):
    def broken():
        raise RuntimeError("the device refused")

    result = selfcheck.run_check(broken)
    assert result["pass"] is False and "RuntimeError: the device refused" in result["problem"]
    assert "broken" in result["stack"]
