"""`billing run`'s supervisor restarts a dying role with a growing delay, and gives up on
one that cannot come up instead of restarting it forever."""

import threading

from billing.supervisor import Supervisor, restart_delay


def test_restart_delays_double_up_to_their_maximum():
    delays = [restart_delay(deaths, base=1.0, maximum=60.0) for deaths in range(1, 9)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_role_that_cannot_come_up_is_restarted_then_given_up_on(tmp_path):
    gave_up = threading.Event()
    supervisor = Supervisor(
        tmp_path, restart_delay=0.01, give_up_after=3, on_give_up=lambda _child: gave_up.set()
    )
    supervisor.add("broken", ["no-such-command"], {})
    supervisor.start_watching()
    try:
        assert gave_up.wait(120), "the supervisor never gave up"
    finally:
        supervisor.stop()
    child = supervisor.gave_up
    assert (child.name, child.restarts, child.deaths_in_a_row) == ("broken", 2, 3)
    assert child.log_file.read_text().count("No such command 'no-such-command'") == 3
