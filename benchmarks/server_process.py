"""Start a server as a subprocess, wait until it is healthy, stop it and everything it started.

The speed benchmarks, the engine-mode check and the tests all start servers this way: any
command line (``python -m server``, ``sglang.launch_server``), in its own process group so
that :meth:`ServerProcess.stop` also ends the engine's scheduler and detokenizer
subprocesses, its output in a log file whose tail goes into every error.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from evaluation.locations import REPO_ROOT

STARTUP_TIMEOUT_S = 600.0
STOP_GRACE_S = 30.0
LOG_TAIL_CHARS = 6000


class ServerStartError(RuntimeError):
    """The server exited or did not become healthy in time; the message holds its log's tail."""


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server subprocess started at construction, in its own process group, logging to a file.

    ``args`` is the whole command line; it runs in the repository's root with the current
    environment plus ``env``. ``api_key`` is only remembered, for the clients of the server.
    """

    def __init__(self, args: list[str], port: int, log_path: Path,
                 env: dict[str, str] | None = None, api_key: str | None = None):
        self.port, self.log_path, self.api_key = port, Path(log_path), api_key
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                args, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, **(env or {})})

    @classmethod
    def start(cls, args: list[str], port: int, name: str, api_key: str | None = None,
              env: dict[str, str] | None = None) -> "ServerProcess":
        """Start ``args`` with its log in a new temporary folder named after ``name``."""
        log_path = Path(tempfile.mkdtemp(prefix=f"softthink-{name}-")) / "server.log"
        return cls(args, port, log_path, env, api_key)

    @property
    def root_url(self) -> str:
        """The server's address without ``/v1`` (``/health`` and SGLang's native routes)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root, for ``openai.OpenAI(base_url=...)``."""
        return f"{self.root_url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, health_path: str = "/health",
                     timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Return once ``health_path`` answers 200; otherwise stop the server and raise
        :class:`ServerStartError` (it exited, or ``timeout_s`` passed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise ServerStartError(f"server exited with {self.process.returncode}; log "
                                       f"{self.log_path}:\n{self.log()[-LOG_TAIL_CHARS:]}")
            try:
                if httpx.get(self.root_url + health_path, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise ServerStartError(f"server not healthy after {timeout_s:g} s; log "
                               f"{self.log_path}:\n{self.log()[-LOG_TAIL_CHARS:]}")

    def stop(self) -> None:
        """SIGTERM, up to ``STOP_GRACE_S`` to shut down, then SIGKILL to the whole process
        group, so no engine subprocess outlives it. Safe to call again."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STOP_GRACE_S)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
