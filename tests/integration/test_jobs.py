"""Job leases: one scheduler at a time runs a job, and a killed one gives it back at once."""

import datetime as dt
import os
import socket
import subprocess
import sys

from billing.jobs import new_holder, take_lease

MINUTES_5 = dt.timedelta(minutes=5)


def dead_holder() -> str:
    """The holder name a process of this host had before it exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}:0badf00d"


def test_a_lease_of_a_killed_scheduler_of_this_host_is_taken_at_once(fresh_db):
    now = dt.datetime.now(dt.UTC)
    with fresh_db.session() as session:
        assert take_lease(session, "meter", dead_holder(), now, MINUTES_5)
        assert take_lease(session, "meter", new_holder(), now, MINUTES_5)


def test_a_lease_of_a_live_process_or_of_another_host_waits_for_its_expiry(fresh_db):
    now = dt.datetime.now(dt.UTC)
    parent = f"{socket.gethostname()}:{os.getppid()}:12345678"
    elsewhere = dead_holder().replace(socket.gethostname(), "another-host", 1)
    with fresh_db.session() as session:
        for holder in (parent, elsewhere):
            name = f"job-of-{holder}"
            assert take_lease(session, name, holder, now, MINUTES_5)
            assert not take_lease(session, name, new_holder(), now, MINUTES_5)
            assert take_lease(session, name, new_holder(), now + MINUTES_5 * 2, MINUTES_5)
