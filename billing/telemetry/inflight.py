"""Crash-loop detection: which messages the ingest holds uncommitted, kept on disk so that
the next process knows what the last one was doing when it died.

The guards of decoding and storing turn every exception into a rejection; what they cannot
catch — a crash of the interpreter or of a C extension, the kernel killing the process for
its memory — ends the process with messages unacknowledged, and the broker redelivers them
to the next one: the same message would kill it again, forever. So, before a batch is
processed, the digests of its messages go into a file, removed once the batch is committed.
A file left behind names the messages in flight at a crash. On restart, those messages are
processed one at a time, each in a file of its own; a message in flight alone at
`quarantine_after` crashes is quarantined: kept as a rejected message without being decoded
or stored again. A kill from outside (an operator, a chaos test) looks like a crash too,
which is why a message must crash the consumer alone, and more than once by default,
before it is quarantined.

Files, in the consumer's directory: `<pid>-<n>.batch` and `<pid>-<n>.alone` hold the 32-byte SHA-256
digests of the messages in flight; `crashes.json` the count of crashes each suspect message
was processed alone at.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
import os
from collections.abc import Iterable
from pathlib import Path

DIGEST_BYTES = 32
CRASHES_FILE = "crashes.json"


class Verdict(enum.Enum):
    BATCH = "batch"  # process as usual
    ALONE = "alone"  # in flight at a crash: process it on its own
    QUARANTINE = "quarantine"  # crashed the consumer alone too often: do not process


def message_digest(topic: str, payload: bytes) -> bytes:
    """What identifies a redelivered message: its topic and its bytes."""
    digest = hashlib.sha256(topic.encode("utf-8", "surrogateescape"))
    digest.update(b"\x00")
    digest.update(payload)
    return digest.digest()


class InFlightLog:
    def __init__(self, directory: Path, quarantine_after: int):
        self.directory = directory
        self.quarantine_after = quarantine_after
        self._numbers = itertools.count()
        self.suspects: dict[bytes, int] = {}  # digest -> crashes while processed alone
        self._recover()

    def verdict(self, digest: bytes) -> Verdict:
        crashes = self.suspects.get(digest)
        if crashes is None:
            return Verdict.BATCH
        return Verdict.QUARANTINE if crashes >= self.quarantine_after else Verdict.ALONE

    def begin(self, digests: Iterable[bytes], *, alone: bool = False) -> Path:
        """Record messages as in flight; returns the record to pass to `end`."""
        kind = "alone" if alone else "batch"
        path = self.directory / f"{os.getpid()}-{next(self._numbers)}.{kind}"
        path.write_bytes(b"".join(digests))
        return path

    def end(self, record: Path, settled: Iterable[bytes] = ()) -> None:
        """The messages of `record` are committed; `settled` suspects are cleared."""
        record.unlink(missing_ok=True)
        cleared = [digest for digest in settled if self.suspects.pop(digest, None)]
        if cleared:
            self._save_crashes()

    def forget_all(self) -> None:
        """Drop the records of messages left uncommitted by a clean stop."""
        for path in self._records():
            path.unlink(missing_ok=True)

    def _records(self) -> list[Path]:
        return [path for path in self.directory.iterdir() if path.suffix in (".batch", ".alone")]

    def _recover(self) -> None:
        """Count the crash the files left behind tell of, and start afresh."""
        self.directory.mkdir(parents=True, exist_ok=True)
        crashes_file = self.directory / CRASHES_FILE
        if crashes_file.exists():
            try:
                saved = json.loads(crashes_file.read_text(encoding="utf-8"))
                self.suspects = {bytes.fromhex(key): int(count) for key, count in saved.items()}
            except (ValueError, AttributeError):
                self.suspects = {}  # half written when the process died: start again
        for path in self._records():
            data = path.read_bytes()
            for start in range(0, len(data) - DIGEST_BYTES + 1, DIGEST_BYTES):
                digest = data[start : start + DIGEST_BYTES]
                count = self.suspects.get(digest, 0)
                self.suspects[digest] = count + 1 if path.suffix == ".alone" else count
            path.unlink()
        self._save_crashes()

    def _save_crashes(self) -> None:
        # Suspects never processed alone need no saving: a crash before they are leaves
        # them in a batch file again.
        counts = {digest.hex(): count for digest, count in self.suspects.items() if count}
        temporary = self.directory / f".{CRASHES_FILE}.tmp"
        temporary.write_text(json.dumps(counts), encoding="utf-8")
        os.replace(temporary, self.directory / CRASHES_FILE)
