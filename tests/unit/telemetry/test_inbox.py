"""The ingest's inbox bounds memory by messages and by bytes."""

import threading
import time

from billing.telemetry.inbox import Inbox


def test_an_inbox_refuses_what_would_exceed_its_bytes():
    inbox = Inbox(max_items=100, max_bytes=1000)
    assert inbox.put("a", 600, timeout=0)
    assert not inbox.put("b", 600, timeout=0.01)
    assert inbox.put("c", 400, timeout=0)
    assert (len(inbox), inbox.bytes) == (2, 1000)


def test_an_inbox_refuses_what_would_exceed_its_count():
    inbox = Inbox(max_items=2, max_bytes=10**6)
    assert inbox.put(1, 1, timeout=0) and inbox.put(2, 1, timeout=0)
    assert not inbox.put(3, 1, timeout=0.01)


def test_an_empty_inbox_takes_even_an_oversized_message():
    inbox = Inbox(max_items=10, max_bytes=100)
    assert inbox.put("big", 5000, timeout=0)
    assert inbox.take(10, first_wait=0, then_wait=0) == ["big"]


def test_taking_frees_room_for_a_blocked_producer():
    inbox = Inbox(max_items=1, max_bytes=10**6)
    inbox.put("first", 1, timeout=0)
    result = []
    producer = threading.Thread(target=lambda: result.append(inbox.put("second", 1, timeout=5)))
    producer.start()
    time.sleep(0.05)
    assert inbox.take(1, first_wait=0, then_wait=0) == ["first"]
    producer.join(5)
    assert result == [True]
    assert inbox.take(5, first_wait=1, then_wait=0) == ["second"]


def test_take_returns_at_most_its_limit_in_arrival_order():
    inbox = Inbox(max_items=10, max_bytes=10**6)
    for n in range(5):
        inbox.put(n, 1, timeout=0)
    assert inbox.take(3, first_wait=0, then_wait=0) == [0, 1, 2]
    assert inbox.take(3, first_wait=0, then_wait=0) == [3, 4]
    assert inbox.take(3, first_wait=0.01, then_wait=0) == []
