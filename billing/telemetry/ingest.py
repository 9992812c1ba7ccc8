"""`billing ingest`: the MQTT consumer that turns telemetry into committed readings.

Delivery rule (docs/telemetry.md): a message is acknowledged to the broker only after the
transaction that stored it — as readings or as a rejection — has committed. Until then the
broker keeps it in our persistent session and redelivers it after a crash; the unique
(vehicle_id, msg_id) makes redelivery harmless.

Three threads: paho's network thread receives messages into an inbox bounded in messages
and bytes (when it is full, the thread blocks, stops reading the socket and the broker
holds the rest: memory stays bounded whatever the backlog); the main thread takes batches
of up to `batch_size` messages or whatever arrived within `batch_delay_ms` and validates
them; the writer thread stores each validated batch in one transaction, then acknowledges
its messages in arrival order. Validation of one batch overlaps the commit of the last.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.orm import Session

from billing import heartbeats
from billing.db import Database, utcnow
from billing.mqtt import TELEMETRY_SUBSCRIPTION, BrokerAddress, ConsumerClient, make_client
from billing.settings import IngestSettings, Settings
from billing.telemetry.inbox import Inbox
from billing.telemetry.inflight import InFlightLog, Verdict, message_digest
from billing.telemetry.services import (
    DATABASE_UNAVAILABLE,
    IncomingMessage,
    StoreOutcome,
    ValidatedBatch,
    VehicleDirectory,
    quarantined_batch,
    telemetry_bounds,
    topic_vehicles,
    validate_batch,
    write_batch,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our unacknowledged messages a week
CONSUMING_WITHIN_S = 15.0


def ingest_directory(settings: Settings) -> Path:
    """Where an ingest process keeps its state files: one directory per client id (the
    broker session they describe)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", settings.ingest.client_id) or "_"
    return settings.data_dir / "ingest" / name


class IngestMetrics:
    """Counters an operator watches, exposed in Prometheus text format."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter("billing_ingest_messages", "MQTT messages received", registry=r)
        self.stored = Counter("billing_ingest_readings_stored", "Readings stored", registry=r)
        self.duplicates = Counter(
            "billing_ingest_readings_duplicate", "Readings already stored", registry=r
        )
        self.rejected = Counter(
            "billing_ingest_rejections", "Rejected messages or readings", ["reason"], registry=r
        )
        self.batch_seconds = Histogram(
            "billing_ingest_batch_seconds",
            "Time to store and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.pending = Gauge(
            "billing_ingest_pending", "Messages received, not yet committed", registry=r
        )
        self.db_errors = Counter(
            "billing_ingest_db_errors", "Failed batch transactions", registry=r
        )
        self.connected = Gauge(
            "billing_ingest_connected", "1 when connected to the broker", registry=r
        )


@dataclass(frozen=True, slots=True)
class Received:
    connection: int  # which connection delivered it: an ack is only valid on that one
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass(slots=True)
class Work:
    """Messages validated, for the writer to store and acknowledge."""

    received: list[Received]
    validated: ValidatedBatch
    record: Path | None = None  # their in-flight record, ended once they are committed
    settled: list[bytes] = field(default_factory=list)  # suspects they clear


class IngestConsumer:
    def __init__(
        self,
        database: Database,
        address: BrokerAddress,
        settings: IngestSettings,
        *,
        protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
        max_future_seconds: int | None = None,
        metrics: IngestMetrics | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        inflight_directory: Path | None = None,
        heartbeat_seconds: float | None = None,
    ):
        """`inflight_directory` keeps the in-flight records of crash-loop detection
        (billing.telemetry.inflight); without one, there is none. Every
        `heartbeat_seconds`, the consumer records its state for the readiness view
        (billing.heartbeats); without, it does not."""
        self.database = database
        self.address = address
        self.settings = settings
        self.protocol = protocol
        self.max_future_seconds = max_future_seconds or settings.max_future_seconds
        self.metrics = metrics or IngestMetrics()
        self.clock = clock
        self.bounds = telemetry_bounds(settings)
        self.directory = VehicleDirectory()
        self.inflight = (
            InFlightLog(inflight_directory, settings.quarantine_after_crashes)
            if inflight_directory is not None
            else None
        )
        self._inbox: Inbox[Received] = Inbox(settings.max_pending, settings.max_pending_bytes)
        # Validated batches waiting for the writer: two keep both stages busy.
        self._validated: queue.Queue[Work | None] = queue.Queue(maxsize=2)
        self._connection = 0
        self._stopping = threading.Event()
        self._writer_failure: BaseException | None = None
        self.heartbeat_seconds = heartbeat_seconds
        self.connected = False
        self._last_turn = time.monotonic()  # when the validating loop last went round
        self.ready = threading.Event()  # set once subscribed
        self.client = self._make_client()

    # --- broker side (paho's thread) -----------------------------------------------------

    def _make_client(self) -> ConsumerClient:
        client = make_client(
            self.address,
            self.settings.client_id,
            protocol=self.protocol,
            manual_ack=True,
            persistent_session=True,
            client_class=ConsumerClient,
        )
        client.max_inflight_messages_set(0)  # no limit on our side: the inbox bounds memory
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def subscription(self) -> str:
        group = self.settings.shared_group
        if group and self.protocol == mqtt.MQTTv5:
            return f"$share/{group}/{TELEMETRY_SUBSCRIPTION}"
        return TELEMETRY_SUBSCRIPTION

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self._connection += 1
        self.connected = True
        self.metrics.connected.set(1)
        log.info("connected to %s; subscribing to %s", self.address.url, self.subscription)
        client.subscribe(self.subscription, qos=1)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            log.error("subscription to %s refused: %s", self.subscription, reason_codes)
            return
        self.ready.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        # Messages of the lost connection stay in the inbox: they are stored, but not
        # acknowledged; the broker redelivers them and the duplicates are skipped.
        self._connection += 1
        self.connected = False
        self.metrics.connected.set(0)
        if not self._stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        # Blocks while the inbox is full: paho stops reading and the broker queues for us.
        # When stopping, the message is dropped unacknowledged: the broker redelivers it.
        received = Received(
            self._connection, message.mid, message.qos, message.topic, message.payload
        )
        while not self._stopping.is_set():
            if self._inbox.put(received, len(message.payload), timeout=0.5):
                return

    # --- database side (the writer thread) -----------------------------------------------

    def run(self) -> None:
        """Consume until stop() is called; returns once the last batch is committed.

        Raises what stopped either thread otherwise: the process must then exit, so that
        its supervisor restarts it and the broker redelivers what was not acknowledged.
        """
        self._connect()
        self.client.loop_start()
        writer = threading.Thread(target=self._write_batches_or_fail, name="ingest-writer")
        writer.start()
        if self.heartbeat_seconds:
            threading.Thread(target=self._beat, name="ingest-heartbeat", daemon=True).start()
        try:
            self._validate_batches()
        finally:
            self._stopping.set()
            self._hand_over(None)  # the writer finishes what it has, then stops
            writer.join()
            self.client.disconnect()
            self.client.loop_stop()
        if self._writer_failure is not None:
            raise RuntimeError("the ingest writer stopped") from self._writer_failure
        self._forget_uncommitted()

    @property
    def consuming(self) -> bool:
        """Whether the validating loop goes round: it does at least every 0.2 s, unless it
        waits for the database or for a writer that waits for it."""
        return time.monotonic() - self._last_turn < CONSUMING_WITHIN_S

    def state(self) -> dict:
        return {
            "connected": self.connected,
            "consuming": self.consuming,
            "pending": len(self._inbox),
        }

    def _beat(self) -> None:
        instance = heartbeats.instance_name(self.settings.client_id)
        while True:
            try:
                with self.database.session() as session:
                    heartbeats.beat(
                        session, heartbeats.INGEST, instance, self.clock(), self.state()
                    )
            except Exception as error:  # the database may be down: readiness will say so
                log.warning("could not record the ingest heartbeat: %s", error)
            if self._stopping.wait(self.heartbeat_seconds):
                break
        try:
            with self.database.session() as session:
                heartbeats.forget(session, heartbeats.INGEST, instance)
        except Exception as error:
            log.warning("could not remove the ingest heartbeat: %s", error)

    def _forget_uncommitted(self) -> None:
        """A clean stop is no crash: what was left uncommitted is simply redelivered."""
        if self.inflight is not None:
            self.inflight.forget_all()

    def stop(self) -> None:
        self._stopping.set()

    def _connect(self) -> None:
        host, port = self.address.host, self.address.port
        if self.protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(
                host, port, keepalive=30, clean_start=False, properties=properties
            )
        else:
            self.client.connect_async(host, port, keepalive=30)

    # Two stages overlap: this thread decodes and validates batch n+1 (Python work) while
    # the writer waits for the database to commit batch n (the GIL is free meanwhile).

    def _validate_batches(self) -> None:
        while not self._stopping.is_set():
            self._last_turn = time.monotonic()
            batch = self._take_batch()
            if not batch:
                continue
            if self.inflight is None:
                if not self._validate(batch):
                    return
                continue
            for verdict, part, digests in self._by_verdict(batch):
                if not self._validate_part(verdict, part, digests):
                    return

    def _by_verdict(
        self, batch: list[Received]
    ) -> list[tuple[Verdict, list[Received], list[bytes]]]:
        """Runs of consecutive messages with the same verdict (arrival order is kept for
        the acknowledgements); suspects come one per run."""
        assert self.inflight is not None
        runs: list[tuple[Verdict, list[Received], list[bytes]]] = []
        for received in batch:
            digest = message_digest(received.topic, received.payload)
            verdict = self.inflight.verdict(digest)
            if runs and verdict is Verdict.BATCH and runs[-1][0] is Verdict.BATCH:
                runs[-1][1].append(received)
                runs[-1][2].append(digest)
            else:
                runs.append((verdict, [received], [digest]))
        return runs

    def _validate_part(self, verdict: Verdict, part: list[Received], digests: list[bytes]) -> bool:
        assert self.inflight is not None
        if verdict is Verdict.QUARANTINE:
            log.error("quarantining a message on %s: it crashed the consumer", part[0].topic)
            messages = [IncomingMessage(r.topic, r.payload, "mqtt") for r in part]
            validated = quarantined_batch(messages, self.clock(), self.inflight.quarantine_after)
            record = self.inflight.begin(digests)
            self._hand_over(Work(part, validated, record, digests))
            return True
        if verdict is Verdict.BATCH:
            return self._validate(part, self.inflight.begin(digests))
        # Alone: nothing else in flight while it is, so that a crash names it alone.
        log.warning("processing alone a message in flight at a crash, on %s", part[0].topic)
        self._wait_until_written()
        record = self.inflight.begin(digests, alone=True)
        if not self._validate(part, record, settled=digests):
            return False
        self._wait_until_written()
        return True

    def _validate(
        self, batch: list[Received], record: Path | None = None, settled: Sequence[bytes] = ()
    ) -> bool:
        """Validate messages and hand them to the writer; False if stopped first."""
        messages = [IncomingMessage(r.topic, r.payload, "mqtt") for r in batch]
        vehicles = self._retrying(
            functools.partial(self.directory.lookup, vehicle_ids=topic_vehicles(messages)),
            reading=True,
        )
        if vehicles is None:
            return False
        validated = validate_batch(
            messages, vehicles, self.clock(), self.max_future_seconds, self.bounds
        )
        self._hand_over(Work(batch, validated, record, list(settled)))
        return True

    def _wait_until_written(self) -> None:
        done = self._validated.all_tasks_done
        with done:
            while self._validated.unfinished_tasks and self._writer_failure is None:
                done.wait(0.5)

    def _hand_over(self, item: Work | None) -> None:
        """Queue a validated batch for the writer, unless the writer is gone."""
        while self._writer_failure is None:
            try:
                self._validated.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _write_batches_or_fail(self) -> None:
        try:
            self._write_batches()
        except BaseException as error:
            log.exception("the ingest writer failed; stopping")
            self._writer_failure = error
            self._stopping.set()

    def _write_batches(self) -> None:
        while (work := self._validated.get()) is not None:
            try:
                self._write(work)
            finally:
                self._validated.task_done()
        self._validated.task_done()

    def _write(self, work: Work) -> None:
        started = time.perf_counter()
        outcome = self._retrying(functools.partial(write_batch, batch=work.validated))
        if outcome is None:
            return  # stopped during an outage: left unacknowledged, redelivered later
        self._count(len(work.received), outcome, time.perf_counter() - started)
        self._acknowledge(work.received)
        if work.record is not None and self.inflight is not None:
            self.inflight.end(work.record, work.settled)

    def _take_batch(self) -> list[Received]:
        batch = self._inbox.take(
            self.settings.batch_size, first_wait=0.2, then_wait=self.settings.batch_delay_ms / 1000
        )
        self.metrics.pending.set(len(self._inbox))
        return batch

    def _retrying(self, work: Callable[[Session], T], *, reading: bool = False) -> T | None:
        """Run `work` in a transaction (a read-only one if `reading`), retrying while the
        database is unavailable; None if stopped first."""
        delay = 0.5
        while True:
            try:
                with self.database.reading() if reading else self.database.session() as session:
                    return work(session)
            except DATABASE_UNAVAILABLE as error:
                self.metrics.db_errors.inc()
                log.warning("database unavailable (%s); retrying in %.1f s", error, delay)
                if self._stopping.wait(delay):
                    return None
                delay = min(delay * 2, 10)

    def _count(self, messages: int, outcome: StoreOutcome, seconds: float) -> None:
        self.metrics.messages.inc(messages)
        self.metrics.stored.inc(outcome.stored)
        self.metrics.duplicates.inc(outcome.duplicates)
        for reason, count in outcome.rejected_by_reason().items():
            self.metrics.rejected.labels(reason).inc(count)
        self.metrics.batch_seconds.observe(seconds)

    def _acknowledge(self, batch: list[Received]) -> None:
        current = self._connection
        self.client.ack_many([r.mid for r in batch if r.connection == current and r.qos == 1])
