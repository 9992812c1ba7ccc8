"""Crash-loop detection from the in-flight records a dead consumer leaves behind."""

from billing.telemetry.inflight import InFlightLog, Verdict, message_digest

TOPIC = "billing/v1/vehicles/VEH-1/telemetry"
A, B, C = (message_digest(TOPIC, payload) for payload in (b"a", b"b", b"c"))


def restart(directory, quarantine_after: int = 2) -> InFlightLog:
    return InFlightLog(directory, quarantine_after)


def test_messages_committed_before_a_restart_are_not_suspects(tmp_path):
    log = restart(tmp_path)
    log.end(log.begin([A, B]))
    assert restart(tmp_path).verdict(A) is Verdict.BATCH


def test_messages_in_flight_at_a_crash_are_processed_alone_at_the_next_start(tmp_path):
    log = restart(tmp_path)
    log.begin([A, B])
    again = restart(tmp_path)
    assert (again.verdict(A), again.verdict(B), again.verdict(C)) == (
        Verdict.ALONE, Verdict.ALONE, Verdict.BATCH,
    )  # fmt: skip


def test_a_message_that_crashes_the_consumer_alone_twice_is_quarantined(tmp_path):
    restart(tmp_path).begin([A, B])
    for crashes in (1, 2):
        log = restart(tmp_path)
        assert log.verdict(A) is Verdict.ALONE, f"after {crashes - 1} crashes alone"
        log.begin([A], alone=True)  # and the process dies
    assert restart(tmp_path).verdict(A) is Verdict.QUARANTINE


def test_a_suspect_that_is_stored_alone_is_cleared(tmp_path):
    restart(tmp_path).begin([A])
    restart(tmp_path).begin([A], alone=True)
    log = restart(tmp_path)
    log.end(log.begin([A], alone=True), settled=[A])
    assert restart(tmp_path).verdict(A) is Verdict.BATCH


def test_a_clean_stop_leaves_no_suspect(tmp_path):
    log = restart(tmp_path)
    log.begin([A])
    log.begin([B], alone=True)
    log.forget_all()
    assert restart(tmp_path).suspects == {}


def test_a_half_written_count_file_loses_earlier_counts_but_not_the_last_crash(tmp_path):
    restart(tmp_path).begin([A], alone=True)
    (tmp_path / "crashes.json").write_text('{"ab', encoding="utf-8")
    assert restart(tmp_path).suspects == {A: 1}
