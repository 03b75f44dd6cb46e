"""SIGTERM with a stream in flight: the stream ends, the server exits, no engine process survives.

The server runs with ``--shutdown-timeout 2``: a request still running two seconds after
SIGTERM is aborted. Its own server, because it is stopped here.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import psutil
import pytest

from server_process import TEST_KV_TOKENS, serving

SHUTDOWN_TIMEOUT_S = 2
EXIT_WITHIN_S = 90


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes of a process group."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


@pytest.fixture
def lone_server():
    with serving("--dtype", "float32", "--max-total-tokens", str(TEST_KV_TOKENS),
                 "--shutdown-timeout", str(SHUTDOWN_TIMEOUT_S), name="shutdown") as proc:
        yield proc


def test_sigterm_aborts_in_flight_stream_and_stops_the_engine(lone_server):
    pgid = os.getpgid(lone_server.process.pid)
    engine_processes = [p for p in group_members(pgid) if p.pid != lone_server.process.pid]
    assert engine_processes, "the engine's scheduler and detokenizer run as child processes"
    body = {"messages": [{"role": "user", "content": "Write a long story."}],
            "max_tokens": 4000, "ignore_eos": True, "stream": True}
    events = []
    with httpx.stream("POST", f"{lone_server.base_url}/chat/completions", json=body,
                      timeout=120) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        events.append(next(line for line in lines if line.startswith("data:")))
        sent_at = time.monotonic()
        lone_server.process.send_signal(signal.SIGTERM)
        try:
            events.extend(lines)
        except httpx.HTTPError:  # the server cut the aborted stream
            pass
        stream_ended_after = time.monotonic() - sent_at
    assert "data: [DONE]" not in events  # 4000 tokens cannot finish in the grace period
    assert SHUTDOWN_TIMEOUT_S - 0.5 <= stream_ended_after <= SHUTDOWN_TIMEOUT_S + 30
    lone_server.process.wait(timeout=EXIT_WITHIN_S)
    assert time.monotonic() - sent_at < EXIT_WITHIN_S
    deadline = time.monotonic() + 10
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert group_members(pgid) == []
    assert "Traceback" not in lone_server.log().split("timeout graceful shutdown exceeded")[-1]
