"""The ingest's bounded inbox: messages received from the broker, not yet committed.

Bounded both in messages and in bytes: a message may carry one reading (~150 bytes) or
500 (~60 KiB), so a count alone would not bound memory. A full inbox blocks the broker
thread, which stops reading the socket: the broker keeps the rest for us.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self, max_items: int, max_bytes: int):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, item: T, size: int, timeout: float) -> bool:
        """Add `item` once there is room (an item is always let into an empty inbox);
        False if there was none within `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._has_room(size), timeout):
                return False
            self._items.append((item, size))
            self._bytes += size
            self._changed.notify_all()
            return True

    def take(self, limit: int, first_wait: float, then_wait: float) -> list[T]:
        """Up to `limit` items: waits `first_wait` seconds for the first, then gathers
        what arrives within `then_wait` seconds more."""
        taken: list[T] = []
        deadline = None
        with self._changed:
            while len(taken) < limit:
                if not self._items:
                    wait = first_wait if deadline is None else deadline - time.monotonic()
                    if wait <= 0 or not self._changed.wait_for(lambda: self._items, wait):
                        break
                item, size = self._items.popleft()
                self._bytes -= size
                taken.append(item)
                deadline = deadline or time.monotonic() + then_wait
            if taken:
                self._changed.notify_all()
        return taken

    def _has_room(self, size: int) -> bool:
        if not self._items:
            return True
        return len(self._items) < self.max_items and self._bytes + size <= self.max_bytes
