"""Start and stop servers as subprocesses for the tests (no pytest fixtures here)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 300
TEST_KV_TOKENS = 32768


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A server started as a subprocess in its own process group, logging to a file."""

    process: subprocess.Popen
    port: int
    log_path: Path
    api_key: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, health_path: str = "/health",
                     timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log()[-6000:]}")
            try:
                url = f"http://127.0.0.1:{self.port}{health_path}"
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        pytest.fail(f"server not healthy after {timeout_s} s:\n{self.log()[-6000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        # The engine's subprocesses share the process group; make sure none outlives the test.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def start_process(args: list[str], port: int, name: str,
                  api_key: str | None = None) -> ServerProcess:
    log_path = Path(tempfile.mkdtemp(prefix=f"softthink-{name}-")) / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return ServerProcess(process, port, log_path, api_key)


def model_path() -> Path:
    override = os.environ.get("SOFTTHINK_TEST_MODEL_PATH")
    if override:
        return Path(override)
    from server.models import default_model_dir

    return default_model_dir()
