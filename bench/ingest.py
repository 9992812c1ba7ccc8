"""Ingest throughput: readings through Mosquitto into the database, committed and acked.

For each database (PostgreSQL when reachable, and the embedded SQLite default) and each
payload shape (one reading per message, then 50), the broker is first loaded with the whole
stream for the ingest's persistent session, then one `billing ingest` process is started
and timed until every reading is committed and acknowledged. Loading the broker first keeps
the Python publishers (about 10,000 messages/s each here) from being the bottleneck or
stealing the ingest's CPU; a last run publishes while ingesting, for the end-to-end figure.

Two limits are measured in the same run, on the same broker and data. A bare paho
subscriber (QoS 1, manual acknowledgement, no decoding, no storage) drains the same
single-reading messages from its own persistent session: `ingest_vs_bare_client` is the
ingest's rate over the bare client's. And the same rows as the batched payloads are
loaded by one plain COPY (SQLite: one executemany in one transaction) into a copy of the
`readings` table: `batched_vs_copy` is the batched ingest's rate over that load's.
With both databases, `sqlite_vs_postgresql` is the embedded default's single-reading rate
over PostgreSQL's.

    python bench/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select, text

from bench._support import (
    RssSampler,
    database,
    free_port,
    own_mosquitto,
    postgres_server,
    process_cpu_seconds,
    process_peak_rss_mb,
    ratio,
    report,
    scratch_database,
    seed_fleet,
)
from billing.db import sqlite_timestamp
from billing.mqtt import TELEMETRY_SUBSCRIPTION, telemetry_topic
from billing.telemetry.models import MeteringQueue, Reading
from billing.telemetry.storage import COLUMNS

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def seed_vehicles(url: str, count: int) -> list[str]:
    ids = [f"BENCH-{n:05d}" for n in range(count)]
    seed_fleet(url, "bench", ids, START)
    return ids


def stream(vehicle_ids: list[str], readings: int, per_message: int) -> list[tuple[str, bytes]]:
    """Messages of `per_message` readings, a reading every 30 s per vehicle, riding."""
    per_vehicle = readings // len(vehicle_ids)
    messages = []
    for index, vehicle_id in enumerate(vehicle_ids):
        odometer, energy = 1_000_000 + index * 1000, 50_000
        batch = []
        for n in range(per_vehicle):
            odometer += 120
            energy += 3
            ts = START + dt.timedelta(seconds=30 * n)
            batch.append(
                {"msg_id": str(uuid.uuid4()), "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "odometer_m": odometer, "energy_wh": energy, "battery_pct": 80}
            )  # fmt: skip
            if len(batch) == per_message:
                messages.append(_encode(vehicle_id, batch))
                batch = []
        if batch:
            messages.append(_encode(vehicle_id, batch))
    # Interleave vehicles as a live fleet would.
    return [messages[i] for i in _interleaved(len(messages), len(vehicle_ids))]


def _encode(vehicle_id: str, batch: list[dict]) -> tuple[str, bytes]:
    document = batch[0] if len(batch) == 1 else batch
    return telemetry_topic(vehicle_id), json.dumps(document).encode()


def _interleaved(total: int, vehicles: int) -> list[int]:
    per_vehicle = total // vehicles
    if per_vehicle * vehicles != total:
        return list(range(total))
    return [v * per_vehicle + k for k in range(per_vehicle) for v in range(vehicles)]


def publish_share(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(2000)
    done, acked = threading.Event(), [0]

    def on_publish(*_args) -> None:
        acked[0] += 1
        if acked[0] == len(messages):
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1)
    done.wait()
    client.disconnect()
    client.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes]], processes: int) -> None:
    workers = [
        multiprocessing.Process(target=publish_share, args=(port, messages[i::processes]))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


class Ingest:
    """A `billing ingest` child process and its Prometheus figures."""

    def __init__(self, url: str, port: int, client_id: str):
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "MQTT_URL": f"mqtt://127.0.0.1:{port}",
            "BILLING_INGEST_CLIENT_ID": client_id,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "billing.cli",
                "ingest",
                "--metrics-port",
                str(self.metrics_port),
            ],
            env=env,
            stderr=subprocess.DEVNULL,
        )

    def metric(self, name: str) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as page:
                for line in page.read().decode().splitlines():
                    if line.startswith(name + " "):
                        return float(line.split()[1])
        except OSError:
            pass
        return -1.0

    def wait_connected(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.metric("billing_ingest_connected") != 1.0:
            if time.monotonic() > deadline:
                raise RuntimeError("the ingest did not connect")
            time.sleep(0.05)

    def wait_readings(self, expected: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            # New rows only: every reading of a stream is new, and a message redelivered
            # after a reconnect is stored again as duplicates, which would stop the clock
            # before every reading is in.
            done = self.metric("billing_ingest_readings_stored_total")
            if done >= expected:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done:.0f} of {expected} readings after {timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def scheduler(url: str) -> subprocess.Popen:
    """`billing schedule`: metering runs while the ingest does, as in production."""
    return subprocess.Popen(
        [sys.executable, "-m", "billing.cli", "schedule"],
        env={**os.environ, "DATABASE_URL": url, "BILLING_METERING_INTERVAL_SECONDS": "1"},
        stderr=subprocess.DEVNULL,
    )


def wait_metered(url: str, timeout: float = 600) -> float:
    """Seconds until the metering queue is empty: every stored reading is in the usage."""
    db, started = database(url), time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            with db.session() as session:
                if not session.scalar(select(func.count()).select_from(MeteringQueue)):
                    return time.perf_counter() - started
            time.sleep(0.2)
        raise RuntimeError("metering did not catch up")
    finally:
        db.engine.dispose()


def drain(url: str, port: int, messages, readings: int, publishers: int, client_id: str) -> dict:
    """Load the broker for an offline persistent session, then time the ingest's drain
    with metering on; then how long metering takes to catch up with the last reading."""
    bare_client(port, client_id, 0, None)  # the ingest's session and subscription
    publish(port, messages, publishers)
    metering = scheduler(url)
    ingest = Ingest(url, port, client_id)
    ingest.wait_connected()
    cpu_before, started = process_cpu_seconds(ingest.process.pid), time.perf_counter()
    sampler, metering_sampler = RssSampler(ingest.process.pid), RssSampler(metering.pid)
    ingest.wait_readings(readings)
    elapsed = time.perf_counter() - started
    cpu = process_cpu_seconds(ingest.process.pid) - cpu_before
    rss = process_peak_rss_mb(ingest.process.pid)
    memory = sampler.stop()
    ingest.stop()
    catch_up = wait_metered(url)
    metering_memory = metering_sampler.stop()
    metering.terminate()
    metering.wait(30)
    return {
        "rate": readings / elapsed,
        "cpu_per_10k": cpu / readings * 10_000,
        "rss_mb": rss,
        "metering_catch_up_s": catch_up,
        **memory,
        "scheduler_rss_mb_first_quarter": metering_memory["rss_mb_first_quarter"],
        "scheduler_rss_mb_last_quarter": metering_memory["rss_mb_last_quarter"],
    }


def bare_client(port: int, client_id: str, expected: int, results) -> None:
    """A plain paho subscriber of the telemetry, QoS 1 with manual acknowledgement, on a
    persistent session: with `expected` 0 it only subscribes (the session then queues
    for `client_id`, the ingest's or its own); else it takes and acks `expected` messages
    and puts (seconds, CPU seconds) on `results`."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.max_inflight_messages_set(0)  # as the ingest: no limit on the subscriber's side
    subscribed, done, received, started = threading.Event(), threading.Event(), [0], [0.0, 0.0]

    def on_connect(*_args) -> None:
        started[:] = [time.perf_counter(), time.process_time()]
        client.subscribe(TELEMETRY_SUBSCRIPTION, qos=1)

    def on_message(_client, _userdata, message) -> None:
        client.ack(message.mid, message.qos)
        received[0] += 1
        if received[0] == expected:
            results.put((time.perf_counter() - started[0], time.process_time() - started[1]))
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *_args: subscribed.set()
    client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600  # the broker queues for us while we are away
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    client.loop_start()
    (done if expected else subscribed).wait(600)
    client.disconnect()
    client.loop_stop()


def bare_drain(port: int, messages, publishers: int) -> float:
    """Messages per second the bare client drains, loaded as the ingest's session is."""
    bare_client(port, "bench-bare", 0, None)
    publish(port, messages, publishers)
    results = multiprocessing.Queue()
    # A process of its own, as the ingest has.
    worker = multiprocessing.Process(
        target=bare_client, args=(port, "bench-bare", len(messages), results)
    )
    worker.start()
    elapsed, _cpu = results.get(timeout=600)
    worker.join()
    return len(messages) / elapsed


def copy_load(url: str, kind: str, messages) -> float:
    """Rows per second of one plain load of the readings of `messages` into a copy of
    `readings`, committed: COPY on PostgreSQL, executemany on SQLite."""
    received = dt.datetime.now(dt.UTC)
    rows = [
        (topic.split("/")[3], r["msg_id"], r["ts"], r["odometer_m"], r["energy_wh"],
         r["battery_pct"], None, None, None, received)
        for topic, payload in messages
        for r in (lambda d: d if isinstance(d, list) else [d])(json.loads(payload))
    ]  # fmt: skip
    db = database(url)
    with db.engine.connect() as connection:
        raw = connection.connection.driver_connection
        if kind == "postgresql":
            connection.execute(text("CREATE TABLE readings_copy (LIKE readings INCLUDING ALL)"))
            connection.commit()
            lines = "".join(
                "\t".join("\\N" if v is None else str(v) for v in row) + "\n" for row in rows
            )
            started = time.perf_counter()
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY readings_copy ({COLUMNS}) FROM STDIN") as copy,
            ):
                copy.write(lines)
            raw.commit()
        else:
            ddl = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'readings'")
            ).scalar_one()
            connection.exec_driver_sql(ddl.replace("readings", "readings_copy", 1))
            connection.commit()
            rows = [(*row[:2], sqlite_timestamp(dt.datetime.fromisoformat(row[2])), *row[3:9],
                     sqlite_timestamp(received)) for row in rows]  # fmt: skip
            placeholders = ", ".join("?" * len(rows[0]))
            started = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(f"INSERT INTO readings_copy ({COLUMNS}) VALUES ({placeholders})", rows)
            raw.execute("COMMIT")
        elapsed = time.perf_counter() - started
    db.engine.dispose()
    return len(rows) / elapsed


def concurrent(url: str, port: int, messages, readings: int, publishers: int) -> float:
    ingest = Ingest(url, port, "bench-concurrent")
    ingest.wait_connected()
    time.sleep(0.5)
    started = time.perf_counter()
    publish(port, messages, publishers)
    ingest.wait_readings(readings)
    elapsed = time.perf_counter() - started
    ingest.stop()
    return readings / elapsed


def stored_readings(url: str) -> int:
    db = database(url)
    with db.session() as session:
        count = session.scalar(select(func.count()).select_from(Reading))
    db.engine.dispose()
    return count or 0


def run_backend(kind: str, vehicles: int, readings: int) -> dict:
    with scratch_database(kind) as url, own_mosquitto() as port:
        ids = seed_vehicles(url, vehicles)
        single = stream(ids, readings, 1)
        batched = stream(ids, readings, 50)
        one = drain(url, port, single, readings, publishers=3, client_id="bench-single")
        fifty = drain(url, port, batched, readings, publishers=1, client_id="bench-batched")
        bare = bare_drain(port, single, publishers=3)
        copy = copy_load(url, kind, batched)
        # A second stream, as new readings, published while the ingest runs.
        live = concurrent(url, port, stream(ids, readings, 1), readings, publishers=3)
        stored = stored_readings(url)
    return {
        "ingest_vs_bare_client": ratio(one["rate"], bare),
        "batched_vs_copy": ratio(fifty["rate"], copy),
        "readings_per_s": round(one["rate"]),
        "bare_client_msgs_per_s": round(bare),
        "batched_readings_per_s": round(fifty["rate"]),
        "copy_rows_per_s": round(copy),
        "concurrent_readings_per_s": round(live),
        "ingest_cpu_s_per_10k": round(one["cpu_per_10k"], 3),
        "ingest_peak_rss_mb": round(max(one["rss_mb"], fifty["rss_mb"]), 1),
        "ingest_rss_mb_first_quarter": one["rss_mb_first_quarter"],
        "ingest_rss_mb_last_quarter": one["rss_mb_last_quarter"],
        "scheduler_rss_mb_first_quarter": one["scheduler_rss_mb_first_quarter"],
        "scheduler_rss_mb_last_quarter": one["scheduler_rss_mb_last_quarter"],
        "metering_catch_up_s": round(
            max(one["metering_catch_up_s"], fifty["metering_catch_up_s"]), 1
        ),
        "stored": stored,
        "published": 3 * readings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 readings instead of 200,000")
    args = parser.parse_args()
    vehicles, readings = (250, 10_000) if args.quick else (2000, 200_000)
    results = {}
    backends = ["postgresql", "sqlite"] if postgres_server() else ["sqlite"]
    for kind in backends:
        results[kind] = run_backend(kind, vehicles, readings)
        print(f"{kind}: {json.dumps(results[kind])}", file=sys.stderr)
    headline = results[backends[0]]
    if "postgresql" in results:  # the embedded default against production, same run
        headline["sqlite_vs_postgresql"] = ratio(
            results["sqlite"]["readings_per_s"], results["postgresql"]["readings_per_s"]
        )
    report({**headline, "database": backends[0], "sqlite": results["sqlite"]})


if __name__ == "__main__":
    main()
