"""Run an untrusted Python program once, in a sandbox that cannot hang the caller.

The code scorers (HumanEval, MBPP) build one program per sample, completion plus the
dataset's tests, and ask :func:`run_python` whether it exits cleanly. Each program runs in
a fresh ``python -I`` (isolated: no user site, no ``PYTHON*`` variables) in a temporary
directory of its own, as the leader of a new session, so that on timeout the whole process
group, grandchildren included, is killed. Before the program starts, a short bootstrap in
the child sets resource limits: address space (a memory bomb becomes a ``MemoryError``),
CPU seconds (a busy loop is stopped by the kernel even if the wall clock watchdog failed),
no core files and a small largest-file size. Output goes to files, not pipes, so a child
that fills its output or leaves a grandchild holding a pipe open never blocks us.

Not a security boundary against hostile code (it shares the user, the file system and the
network); it protects a benchmark run from the mistakes models make.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 2000
MAX_FILE_BYTES = 16 * 1024 * 1024

# Runs in the child before the program: sets the limits, then runs the program as __main__.
# argv: memory bytes, CPU seconds, largest file bytes, program path.
_BOOTSTRAP = """\
import resource, runpy, sys
memory, cpu, fsize, program = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
sys.argv = [program]
del memory, cpu, fsize, program, resource
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one program: ``passed`` is exit status 0 within the limits.

    ``reason`` says why it did not pass ("timeout after 10s", "MemoryError",
    "AssertionError", "killed by signal 9", ...); the outputs are truncated tails.
    """

    passed: bool
    reason: str | None = None
    stdout: str = ""
    stderr: str = ""


def run_python(source: str, timeout_s: float = 10, memory_mb: int = 1024) -> ExecResult:
    """Run ``source`` as a Python program in a sandboxed subprocess and report the outcome.

    Never raises for anything the program does (syntax errors, crashes, infinite loops,
    memory bombs, ``sys.exit``); only invalid limits raise ``ValueError``.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be > 0, got {memory_mb}")
    with tempfile.TemporaryDirectory(prefix="softthink-exec-") as tmp:
        workdir = Path(tmp)
        program = workdir / "program.py"
        program.write_text(source, encoding="utf-8")
        cpu_s = math.ceil(timeout_s) + 1
        command = [sys.executable, "-I", "-c", _BOOTSTRAP, str(memory_mb * 1024 * 1024),
                   str(cpu_s), str(MAX_FILE_BYTES), str(program)]
        with open(workdir / "stdout.txt", "wb") as out, open(workdir / "stderr.txt", "wb") as err:
            returncode = _run_with_watchdog(command, workdir, out, err, timeout_s)
        stdout = _tail(workdir / "stdout.txt")
        stderr = _tail(workdir / "stderr.txt")
    if returncode is None:
        return ExecResult(False, f"timeout after {timeout_s:g}s", stdout, stderr)
    if returncode == 0:
        return ExecResult(True, None, stdout, stderr)
    return ExecResult(False, _failure_reason(returncode, stderr), stdout, stderr)


def _run_with_watchdog(command: list[str], workdir: Path, out, err, timeout_s: float) -> int | None:
    """Start the child in its own session; return its exit status, or None if it timed out.

    The child's whole process group is killed afterwards in every case, so nothing it
    started outlives the call.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
           "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                               stdout=out, stderr=err, start_new_session=True)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        logger.debug("program in %s timed out after %ss", workdir, timeout_s)
        return None
    finally:
        _kill_group(process.pid)
        process.wait()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path) -> str:
    """The last ``MAX_OUTPUT_CHARS`` characters of an output file (undecodable bytes replaced)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4 * MAX_OUTPUT_CHARS))
        text = handle.read().decode("utf-8", errors="replace")
    return text[-MAX_OUTPUT_CHARS:]


def _failure_reason(returncode: int, stderr: str) -> str:
    """A one-line reason: the exception line of the traceback, or the signal that killed it."""
    if returncode < 0:
        if -returncode == signal.SIGXCPU:
            return "CPU time limit exceeded"
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if lines:
        return lines[-1][:300]
    return f"exit status {returncode}"
