"""Waiting for work that a machine does at its own pace: a loaded machine is slow, a
stuck one stops moving. Tests of delivery wait for progress, never for a fixed time.

    wait_for_progress(lambda: stored_count(db), lambda n: n >= 3000, "3000 stored")

fails only when the measured value has not changed for `stall_s` seconds, and then says
what it last saw, with the test's own account of what is missing (`report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# No change at all for this long: the stream stopped. Long enough for a redelivery after a
# reconnection (the consumer's reconnect delay is at most 30 s) on a loaded machine.
STALL_S = 45.0


def wait_for_progress(
    measure: Callable[[], T],
    done: Callable[[T], bool],
    what: str,
    *,
    stall_s: float = STALL_S,
    report: Callable[[], str] | None = None,
) -> T:
    """The first value of `measure()` for which `done` holds; AssertionError once the value
    stayed the same for `stall_s` seconds."""
    value = measure()
    changed_at = time.monotonic()
    while not done(value):
        time.sleep(0.05)
        latest = measure()
        if latest != value:
            value, changed_at = latest, time.monotonic()
        elif time.monotonic() - changed_at > stall_s:
            details = f"; {report()}" if report else ""
            raise AssertionError(
                f"waiting for {what}: stuck at {value!r} for {stall_s:.0f} s{details}"
            )
    return value
