"""scripts/gpu_selfcheck.py in its reduced CPU form: the checks it runs on a GPU (capture,
no waits, batch invariance) pass here too, and its report is complete."""

import json
import sys

from server_process import REPO_ROOT


def test_the_self_check_passes_in_its_cpu_form(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    import gpu_selfcheck

    out = tmp_path / "selfcheck.json"
    assert gpu_selfcheck.main(["--device", "cpu", "--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["verdict"] == "pass" and report["capture"]["mode"] == "torch.jit.trace"
    assert report["capture"]["steps"] == 8 and not report["batch_invariance"]["differing_rows"]
    assert [row["batch"] for row in report["speed"]] == [1, 8]
    assert all(row["soft_step_ms"] > 0 and row["plain_top_p_ms"] > 0 for row in report["speed"])
    sys.modules.pop("gpu_selfcheck", None)
