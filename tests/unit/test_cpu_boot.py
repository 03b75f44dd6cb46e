"""The CPU stand-in for sgl_kernel turns on only where there is no GPU, and says so.

The decision reads the GPU device files of a ``/dev`` folder; these tests give it fake ones.
"""

from __future__ import annotations

import importlib.util
import logging

import pytest

from sglang_soft_thinking.cpu import boot


def fake_dev(tmp_path, *names: str) -> str:
    for name in ("null", "tty0", "vda", "kvm", *names):
        (tmp_path / name).touch()
    return str(tmp_path)


@pytest.mark.parametrize("names", [("nvidia0", "nvidiactl"), ("nvidiactl",), ("nvidia-uvm",),
                                   ("kfd",), ("dxg",)])
def test_a_gpu_device_file_means_no_stand_in(tmp_path, names):
    dev = fake_dev(tmp_path, *names)
    assert boot.gpu_device_files(dev) == sorted(names)
    assert not boot.wants_standin({}, dev)


def test_without_gpu_device_files_the_stand_in_turns_on(tmp_path):
    dev = fake_dev(tmp_path, "nvme0", "dri")  # a disk and a display device are not GPUs for CUDA
    assert boot.gpu_device_files(dev) == []
    assert boot.wants_standin({}, dev)
    assert not boot.wants_standin({"SOFTTHINK_NO_CPU_STANDIN": "1"}, dev)


def test_a_missing_dev_folder_means_no_gpu(tmp_path):
    assert boot.gpu_device_files(str(tmp_path / "absent")) == []


def test_the_stand_in_says_once_that_it_is_active(caplog):
    """SGLang importing sgl_kernel through the stand-in logs one warning naming it."""
    spec = boot.SglKernelStandinFinder().find_spec("sgl_kernel")
    with caplog.at_level(logging.WARNING, logger=boot.__name__):
        module = importlib.util.module_from_spec(spec)
    assert module.__name__ == "sgl_kernel"
    lines = [r.getMessage() for r in caplog.records if r.name == boot.__name__]
    assert len(lines) == 1
    assert "CPU engine" in lines[0] and "sgl_kernel stand-in" in lines[0]
    assert "SOFTTHINK_NO_CPU_STANDIN=1" in lines[0]
