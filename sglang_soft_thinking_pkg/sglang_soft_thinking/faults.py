"""Faults a test can inject into the plugin, to prove that a fault costs one request and
not the server, and that an input that was not mixed is caught.

``SOFTTHINK_TEST_FAULT="KIND:SEED"`` makes the soft-thinking request with that seed meet
the fault ``KIND``:

* ``admit``: its admission to the table raises, as a bug in our code there would;
* ``skip_mix``: its concept tokens are not mixed into its inputs (the decode step feeds
  its written token instead), as a model that bypasses the hooked embedding would.

Read once per process; unset, nothing here costs anything. No SGLang import.
"""

from __future__ import annotations

import functools
import os


class InjectedFault(RuntimeError):
    """A fault a test asked for."""


@functools.lru_cache(maxsize=1)
def _faults() -> dict[str, int]:
    spec = os.environ.get("SOFTTHINK_TEST_FAULT", "")
    faults = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, _, seed = item.partition(":")
        faults[kind] = int(seed)
    return faults


def seed_of(kind: str) -> int | None:
    """The seed of the request that meets fault ``kind``, if a test asked for one."""
    return _faults().get(kind)
