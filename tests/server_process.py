"""The tests' view of :mod:`benchmarks.server_process` (no pytest fixtures here).

Servers start and stop through the one implementation the benchmarks use; a server that
exits or never becomes healthy fails the test with its log instead of raising.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import server_process
from benchmarks.server_process import REPO_ROOT, ServerStartError, free_port
from evaluation.locations import default_model_dir

__all__ = ["REPO_ROOT", "STARTUP_TIMEOUT_S", "TEST_KV_TOKENS", "ServerProcess", "free_port",
           "model_path", "start_process"]

STARTUP_TIMEOUT_S = 300
# The KV-cache size every test server gets (unset, SGLang sizes it from free memory).
TEST_KV_TOKENS = 32768


class ServerProcess(server_process.ServerProcess):
    def wait_healthy(self, health_path: str = "/health",
                     timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        try:
            super().wait_healthy(health_path, timeout_s)
        except ServerStartError as error:
            pytest.fail(str(error), pytrace=False)


def start_process(args: list[str], port: int, name: str, api_key: str | None = None,
                  env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``args`` with its log in a new temporary folder named after ``name``."""
    return ServerProcess.start(args, port, name, api_key, env)


def model_path() -> Path:
    """``$SOFTTHINK_TEST_MODEL_PATH``, else the default model."""
    override = os.environ.get("SOFTTHINK_TEST_MODEL_PATH")
    return Path(override) if override else default_model_dir()
