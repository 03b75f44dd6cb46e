"""math-verify in a helper process with a hard time limit.

math-verify bounds its own parsing and comparison with ``SIGALRM``, which works only in a
process's main thread; the harness scores samples in worker threads, where a pathological
answer (``\\boxed{9^{9^{9^{9}}}}``) would run sympy forever while holding the GIL. So the
check runs in one long-lived helper process (spawned, so no parent threads are forked),
in whose main thread math-verify's own timeouts work; if the helper still does not answer
within ``timeout_s`` it is killed, the sample scores as a timeout, and the next check
starts a fresh helper. Checks are serialised by a lock (each takes milliseconds).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0


def check_texts(gold: str, texts: list[str]) -> tuple[bool, str | None, str | None]:
    """(correct, extracted, detail) for ``gold`` against the first of ``texts`` with an answer.

    Runs in the helper process. Raises ``ValueError`` if the gold cannot be parsed.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    from sympy import Float, nsimplify

    gold_parsed = parse(f"\\boxed{{{gold}}}") or parse(f"${gold}$")
    if not gold_parsed:
        raise ValueError(f"math gold {gold!r} cannot be parsed by math-verify")
    boxed_first = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    for text in texts:
        prediction = parse(text, boxed_first) if text.strip() else []
        if prediction:
            break
    else:
        return False, None, "no answer"
    # A voting key: floats become rationals, so 0.5 and \frac{1}{2} agree.
    first = prediction[0]
    key = str(nsimplify(first, rational=True) if isinstance(first, Float) else first)
    return bool(verify(gold_parsed, prediction)), key, None


def _serve(connection) -> None:
    """The helper's loop: receive (gold, texts), send ("ok", result) or ("error", message)."""
    import math_verify  # noqa: F401  (imported before "ready" so the first check is fast)

    connection.send("ready")
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        try:
            connection.send(("ok", check_texts(*request)))
        except ValueError as error:
            connection.send(("error", str(error)))


class MathChecker:
    """One helper process, started on first use and restarted after a timeout or crash."""

    def __init__(self, timeout_s: float = 15.0):
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._process = None
        self._connection = None

    def check(self, gold: str, texts: list[str]) -> tuple[bool, str | None, str | None]:
        """(correct, extracted, detail); a check that overruns ``timeout_s`` is a timeout."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._stop()
                self._start()
            self._connection.send((gold, texts))
            if not self._connection.poll(self.timeout_s):
                logger.warning("math check of gold %r timed out after %ss; restarting the helper",
                               gold, self.timeout_s)
                self._stop()
                return False, None, "timeout"
            try:
                status, payload = self._connection.recv()
            except EOFError:
                self._stop()
                return False, None, "math-verify helper crashed"
        if status == "error":
            raise ValueError(payload)
        return payload

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True,
                                        name="math-verify-helper")
        self._process.start()
        child.close()
        self._connection = parent
        if not parent.poll(STARTUP_TIMEOUT_S) or parent.recv() != "ready":
            self._stop()
            raise RuntimeError("the math-verify helper process did not start")

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def close(self) -> None:
        """Stop the helper (it is a daemon, so it also ends with this process)."""
        with self._lock:
            self._stop()
