"""Start-up errors are one clear line and a non-zero exit, without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_server(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *flags], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("make_path,expected", [
    (lambda tmp: tmp / "missing-model", "does not exist"),
    (lambda tmp: tmp, "no config.json"),
])
def test_bad_model_path_is_a_clear_error(tmp_path, make_path, expected):
    result = run_server("--model-path", str(make_path(tmp_path)), "--port", "1")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_flag_value_is_a_clear_error():
    result = run_server("--port", "0")
    assert result.returncode != 0
    assert "--port" in result.stderr and "Traceback" not in result.stderr


def test_bad_think_markers_are_a_clear_error():
    result = run_server("--think-markers", "<r>", "<r>", "--port", "1")
    assert result.returncode == 2
    assert "--think-markers" in result.stderr and "two different, non-empty" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_help_lists_every_setting():
    from server.settings import NOT_FLAGS, ServerSettings

    result = run_server("--help")
    assert result.returncode == 0
    for name in set(ServerSettings.model_fields) - NOT_FLAGS:
        assert f"--{name.replace('_', '-')}" in result.stdout


@pytest.mark.parametrize("content, expected", [
    ('{"max_topk": 0}', "max_topk"),
    ('{"max_topk": 3, "warp": 1}', "warp"),
    ("[1, 2]", "one object"),
    (None, "cannot read"),
])
def test_bad_soft_thinking_defaults_file_is_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "soft.json"
    if content is not None:
        path.write_text(content)
    result = run_server("--soft-thinking", str(path), "--port", "1")
    assert result.returncode == 2
    assert "--soft-thinking" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
