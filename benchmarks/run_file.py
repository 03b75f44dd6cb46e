"""The run file: one JSON line per finished sample, appended as each finishes.

Appending whole lines (flushed and synced) means a killed run loses at most the line being
written. On reopening, a torn last line is cut off and the finished samples are read
back, so a resumed run sends only what is missing and the file ends with every sample
(every problem, sample and repeat) exactly once. The line format is described in ``benchmarks/README.md``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

# (prompt_id, sample_index, repeat); records written before repeats existed are repeat 0.
SampleKey = tuple[str, int, int]


class RunFileError(ValueError):
    """A run file that cannot be resumed as asked; the message says what to do."""


def sample_key(record: dict) -> SampleKey:
    return record["prompt_id"], record["sample_index"], record.get("repeat", 0)


class RunFile:
    def __init__(self, path: Path):
        self.path = path
        self.records: dict[SampleKey, dict] = {}

    def open(self) -> dict[SampleKey, dict]:
        """Read the finished samples (cutting off a torn last line); create the file if new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch()
            return self.records
        data = self.path.read_bytes()
        complete_end = data.rfind(b"\n") + 1
        if complete_end < len(data):
            logger.warning("%s: dropping an unfinished last line (the run was interrupted)",
                           self.path)
            with open(self.path, "r+b") as file:
                file.truncate(complete_end)
        for number, line in enumerate(data[:complete_end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.records[sample_key(record)] = record
            except (ValueError, KeyError, TypeError):
                raise RunFileError(f"{self.path}:{number} is not a run record; "
                                   "choose another --out") from None
        return self.records

    def check_settings(self, request: dict, ignore: tuple[str, ...] = ()) -> None:
        """Refuse to mix samples generated with other settings into one run."""
        for record in self.records.values():
            old = record.get("request", {})
            changed = sorted(key for key in set(old) | set(request)
                             if key not in ignore and old.get(key) != request.get(key))
            if changed:
                details = "; ".join(f"{key}: {old.get(key)!r} in the file, {request.get(key)!r} "
                                    "now" for key in changed)
                raise RunFileError(f"{self.path} holds samples made with other settings "
                                   f"({details}); resume with the same settings or choose "
                                   "another --out")
            return

    def append(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())
        self.records[sample_key(record)] = record
