"""The engine-mode check's run-wide SGLang options (``--server-args``), which the GPU run
uses to pick backends that need no flashinfer and no sgl-kernel
(scripts/gpu_engine_check.sh)."""

from __future__ import annotations

from scripts.check_engine_modes import MODES, REFERENCE, Mode, main, with_server_args

GPU_ARGS = ["--attention-backend", "triton", "--sampling-backend", "pytorch"]


def test_run_wide_options_come_before_each_modes_own_and_leave_the_mode_untouched():
    mode = Mode("retraction", ["--disable-radix-cache"], {"SGLANG_TEST_RETRACT": "1"})
    combined = with_server_args(mode, GPU_ARGS)
    assert combined.flags == GPU_ARGS + ["--disable-radix-cache"]
    assert combined.env == {"SGLANG_TEST_RETRACT": "1"} and combined.name == mode.name
    assert mode.flags == ["--disable-radix-cache"]  # the table of modes is not changed
    combined.env["X"] = "1"
    assert "X" not in mode.env


def test_every_mode_and_the_reference_take_them():
    for mode in [REFERENCE, *MODES]:
        combined = with_server_args(mode, GPU_ARGS)
        assert combined.flags[:len(GPU_ARGS)] == GPU_ARGS
        assert combined.flags[len(GPU_ARGS):] == mode.flags
        assert combined.needs_gpu == mode.needs_gpu


def test_the_command_line_accepts_them_as_one_string(capsys):
    try:
        main(["--help"])
    except SystemExit:
        pass
    assert "--server-args" in capsys.readouterr().out
