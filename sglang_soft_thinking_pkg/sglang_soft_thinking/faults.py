"""Faults a test can inject into the plugin, to prove that a fault costs one request and
not the server, and that an input that was not mixed is caught.

``SOFTTHINK_TEST_FAULT="KIND:SEED"`` makes the soft-thinking request with that seed meet
the fault ``KIND``:

* ``admit``: its admission to the table raises, as a bug in our code there would;
* ``skip_mix``: its concept tokens are not mixed into its inputs (the decode step feeds
  its written token instead), as a model that bypasses the hooked embedding would;
* ``resolve``: resolving its settings in the scheduler raises (not a ``ValueError``);
* ``vocabulary``: building the model's vocabulary for it raises;
* ``settings``: reading its settings when its batch is planned raises;
* ``table_admit``: writing the table rows of a batch it joins raises;
* ``embed``: the embedding hook raises during a decode forward of a batch it is in;
* ``soft_step``: the soft rows' step raises for a batch it is in;
* ``seeded_plain``: sampling the seeded plain rows raises (a plain request's seed);
* ``subset``: SGLang's sampler run on a subset of the rows raises for a batch it is in;
* ``records``: packing the step's records of a batch it is in raises;
* ``records_host``: reading its record on the host raises.

With ``SOFTTHINK_TEST_FAULT_RANK=N`` only the process of global rank N meets the faults
(tensor parallelism: a fault on one rank); by default every process does.

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


@functools.lru_cache(maxsize=1)
def _this_rank_meets_faults() -> bool:
    rank = os.environ.get("SOFTTHINK_TEST_FAULT_RANK")
    if rank is None:
        return True
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == int(rank)


def seed_of(kind: str) -> int | None:
    """The seed of the request that meets fault ``kind``, if a test asked for one."""
    faults = _faults()
    if not faults or kind not in faults or not _this_rank_meets_faults():
        return None
    return faults[kind]


def check(kind: str, seeds) -> None:
    """Raise the fault ``kind`` if its seed is among ``seeds``: ints, or a function that
    returns them (called only when a test asked for that fault)."""
    seed = seed_of(kind)
    if seed is None:
        return
    if seed in (seeds() if callable(seeds) else seeds):
        raise InjectedFault(f"a fault injected at {kind}")
