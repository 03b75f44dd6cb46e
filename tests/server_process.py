"""The tests' view of :mod:`benchmarks.server_process` (no pytest fixtures here).

Servers start and stop through the one implementation the benchmarks use; a server that
exits or never becomes healthy fails the test with its log instead of raising. Every test
server comes from :func:`serving` (``python -m server`` or stock ``sglang.launch_server``)
or, for another command line, :func:`running`; a fixture yields from inside either.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks import server_process
from benchmarks.server_process import REPO_ROOT, ServerStartError, free_port
from evaluation.locations import default_model_dir

__all__ = ["REPO_ROOT", "STARTUP_TIMEOUT_S", "TEST_KV_TOKENS", "ServerProcess", "free_port",
           "ServerQueue", "model_path", "running", "serving", "start_process"]

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


@contextlib.contextmanager
def running(args: list[str], port: int, name: str, *, api_key: str | None = None,
            env: dict[str, str] | None = None, wait: bool = True) -> Iterator[ServerProcess]:
    """Start ``args``, wait until healthy (unless ``wait`` is false), yield the process,
    and stop it and all it started on the way out, whatever happened."""
    proc = start_process(args, port, name, api_key, env)
    try:
        if wait:
            proc.wait_healthy()
        yield proc
    finally:
        proc.stop()


def serving(*flags: str, name: str, model: str | Path | None = None, stock: bool = False,
            api_key: str | None = None, env: dict[str, str] | None = None,
            wait: bool = True) -> contextlib.AbstractContextManager[ServerProcess]:
    """``python -m server`` (``stock``: ``python -m sglang.launch_server``) on a free port,
    serving ``model`` (default :func:`model_path`) with ``flags`` and ``api_key``; see
    :func:`running`."""
    port = free_port()
    module = "sglang.launch_server" if stock else "server"
    args = [sys.executable, "-m", module, "--port", str(port),
            "--model-path", str(model or model_path()), *flags]
    if api_key is not None:
        args += ["--api-key", api_key]
    return running(args, port, name, api_key=api_key, env=env, wait=wait)


def model_path() -> Path:
    """``$SOFTTHINK_TEST_MODEL_PATH``, else the default model."""
    override = os.environ.get("SOFTTHINK_TEST_MODEL_PATH")
    return Path(override) if override else default_model_dir()


class ServerQueue:
    """Servers a test module uses one after another, each started while the tests of the
    one before it still run: a start is mostly SGLang importing itself in three processes,
    which the other core does meanwhile.

    ``order`` lists the servers' keys in the order the tests take them; ``start(key)``
    starts one without waiting (``serving(..., wait=False)`` entered in an ``ExitStack``
    that stops them all at the end).
    """

    def __init__(self, order: list[str], start: Callable[[str], ServerProcess]):
        self.order, self.start = order, start
        self.started: dict[str, ServerProcess] = {}

    def take(self, key: str) -> ServerProcess:
        """``key``'s server, started now unless it already was, not waited for; the next
        one in the order is started too."""
        following = self.order[self.order.index(key) + 1:] if key in self.order else []
        for wanted in [key, *following[:1]]:
            if wanted not in self.started:
                self.started[wanted] = self.start(wanted)
        return self.started[key]

    def take_healthy(self, key: str) -> ServerProcess:
        """:meth:`take`, then wait until the server is healthy."""
        proc = self.take(key)
        proc.wait_healthy()
        return proc
