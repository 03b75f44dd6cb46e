"""The server a multi-run command (ablation, self-consistency) talks to: the one at
``--base-url``, or one it starts itself with ``--start-server SERVER_OPTIONS...``.

Everything after ``--start-server`` is the command line of ``python -m server`` (SGLang's
option names, e.g. ``--model-path models/QwQ-32B --tp-size 8``; none: the default model). The server runs in the
repository's root, in its own process group, its log in the output folder, and is stopped
(with every engine subprocess) when the command ends, however it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.server_process import ServerProcess, free_port

logger = logging.getLogger(__name__)

START_SERVER = "--start-server"
# A 32B model on 8 GPUs may take many minutes to load.
STARTUP_TIMEOUT_S = 3600.0


def split_server_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """The command's own options, and the server's (None when no server is to be started)."""
    if START_SERVER not in argv:
        return argv, None
    position = argv.index(START_SERVER)
    return argv[:position], argv[position + 1:]


def check_target(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 server_args: list[str] | None) -> None:
    """Exactly one of ``--base-url`` and ``--start-server``."""
    if server_args is None and args.base_url is None:
        parser.error(f"give --base-url of a running server, or {START_SERVER} followed by "
                     "the server's options (e.g. --model-path DIR)")
    if server_args is not None and args.base_url is not None:
        parser.error(f"give either --base-url or {START_SERVER}, not both")


def _option(server_args: list[str], name: str) -> str | None:
    """The value of ``name`` in the server's options (``--name value`` or ``--name=value``)."""
    for position, item in enumerate(server_args):
        if item == name and position + 1 < len(server_args):
            return server_args[position + 1]
        if item.startswith(name + "="):
            return item.split("=", 1)[1]
    return None


def server_command(server_args: list[str], api_key: str) -> tuple[list[str], int]:
    """``python -m server`` with the user's options, a free port unless one is given, and the
    command's API key unless the options name one."""
    command = [sys.executable, "-m", "server", *server_args]
    port = _option(server_args, "--port")
    if port is None:
        port = str(free_port())
        command += ["--port", port]
    if api_key != "none" and _option(server_args, "--api-key") is None:
        command += ["--api-key", api_key]
    return command, int(port)


@contextlib.contextmanager
def target_server(args: argparse.Namespace, server_args: list[str] | None,
                  log_dir: Path) -> Iterator[str]:
    """Yield the OpenAI API root to send to; start and finally stop a server if asked.

    Raises :class:`benchmarks.server_process.ServerStartError` (with the log's tail) when the
    server exits or does not become healthy.
    """
    if server_args is None:
        yield args.base_url
        return
    command, port = server_command(server_args, args.api_key)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "server.log"
    logger.info("starting the server (log: %s): %s", log_path, shlex.join(command))
    with ServerProcess(command, port, log_path) as server:
        server.wait_healthy(timeout_s=STARTUP_TIMEOUT_S)
        yield server.base_url
