"""Soak: ingestion held at 80 % of its measured rate; memory stays flat, the lag bounded.

The ingest's end-to-end rate is measured first (publishing while one `billing ingest`
stores, as bench/ingest.py's concurrent run). Then a steady stream at 80 % of that rate
runs for 10 minutes (30 s with --quick) through `billing ingest`, with `billing schedule`
metering every second and `billing serve` answering /metrics. Every second it samples the
resident memory of each of the three processes, the metering lag the web process reports
(`billing_metering_lag_seconds`) and the readings published but not yet stored.

It fails (exit 1) when a process's memory in the last quarter of the run is more than
RSS_GROWTH above the first quarter's, or when the metering lag or the ingest's backlog
exceeds its bound in the last quarter, that is when the pipeline does not keep up.

    python bench/soak.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._support import (
    BillingRole,
    RssSampler,
    free_port,
    own_mosquitto,
    postgres_server,
    report,
    scratch_database,
)
from bench.ingest import (
    START,
    Ingest,
    concurrent,
    scheduler,
    seed_vehicles,
    stored_readings,
    stream,
)
from billing.mqtt import telemetry_topic

# Memory may settle during the first quarter; beyond this, growth is a leak to look at.
RSS_GROWTH = 1.25  # last quarter at most 25 % above the first, plus:
RSS_SLACK_MB = 10.0
# Metering runs every second and falls behind in bursts when other work takes the CPU
# (30 s seen in quick runs at a load average of 20); a lag that grows without bound
# passes this within minutes of a full run.
LAG_BOUND_S = 60.0
# Readings published but not stored: the ingest keeps up when it stays under this many
# seconds of the stream.
BACKLOG_BOUND_S = 10.0
FULL = {"vehicles": 500, "calibration_readings": 30_000, "seconds": 600}
QUICK = {"vehicles": 100, "calibration_readings": 5_000, "seconds": 30}


def endless_readings(vehicle_ids: list[str]) -> Iterator[tuple[str, bytes]]:
    """One reading per message, the vehicles in turn, a reading every 30 s each, riding;
    timed after the calibration's stream so that every reading is a new one."""
    odometers = [5_000_000 + index * 1000 for index in range(len(vehicle_ids))]
    step = 0
    while True:
        ts = START + dt.timedelta(days=30, seconds=30 * step)
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        for index, vehicle_id in enumerate(vehicle_ids):
            odometers[index] += 120
            reading = {"msg_id": str(uuid.uuid4()), "ts": stamp, "odometer_m": odometers[index],
                       "energy_wh": 100_000 + 3 * step, "battery_pct": 80}  # fmt: skip
            yield telemetry_topic(vehicle_id), json.dumps(reading).encode()
        step += 1


class PacedPublisher:
    """Publishes `rate` messages a second at QoS 1, in 50 ms ticks, until stopped; a
    message counts as published once the broker acknowledged it."""

    TICK_S = 0.05

    def __init__(self, port: int, messages: Iterator[tuple[str, bytes]], rate: float):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(5000)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.messages, self.rate = messages, rate
        self.published = 0
        self.acknowledged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self.TICK_S):
            due = int((time.monotonic() - started) * self.rate)
            while self.published < due:
                topic, payload = next(self.messages)
                self.client.publish(topic, payload, qos=1)
                self.published += 1

    def _on_publish(self, *_args) -> None:
        self.acknowledged += 1

    def stop(self, timeout: float = 120) -> int:
        """Stop publishing; returns the count once the broker acknowledged every message
        handed to the client (disconnecting earlier would drop those still queued)."""
        self._stop.set()
        self._thread.join()
        deadline = time.monotonic() + timeout
        while self.acknowledged < self.published and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.acknowledged < self.published:
            raise RuntimeError(
                f"the broker acknowledged {self.acknowledged} of {self.published} messages"
            )
        self.client.disconnect()
        self.client.loop_stop()
        return self.published


def web_metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            for line in page.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def wait_serving(port: int, role: BillingRole, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while web_metric(port, "billing_metering_lag_seconds") is None:
        if role.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("billing serve did not come up")
        time.sleep(0.2)


def wait_metered(port: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while web_metric(port, "billing_metering_lag_seconds") != 0.0:
        if time.monotonic() > deadline:
            raise RuntimeError("metering did not catch up with the calibration's readings")
        time.sleep(0.5)


def quarters(samples: list[float]) -> tuple[float, float]:
    """The largest value of the first and of the last quarter of `samples`."""
    quarter = max(1, len(samples) // 4)
    return max(samples[:quarter]), max(samples[-quarter:])


def soak(kind: str, shape: dict) -> dict:
    with (
        scratch_database(kind) as url,
        own_mosquitto() as broker_port,
        tempfile.TemporaryDirectory() as directory,
    ):
        vehicle_ids = seed_vehicles(url, shape["vehicles"])
        http_port = free_port()
        environment = {"DATABASE_URL": url, "BILLING_DATA_DIR": directory}
        serve = ["serve", "--port", str(http_port), "--threads", "2"]
        web = BillingRole("web", serve, environment, Path(directory) / "logs")
        web.start()
        metering = scheduler(url)  # the rate is measured with metering on, as in production
        calibration = shape["calibration_readings"]
        measured = concurrent(url, broker_port, stream(vehicle_ids, calibration, 1), calibration, 1)
        rate = 0.8 * measured
        ingest = Ingest(url, broker_port, "bench-soak")
        ingest.wait_connected()
        wait_serving(http_port, web)
        # Sampling starts with every process warm and the calibration's readings metered.
        wait_metered(http_port)
        samplers = {
            "ingest": RssSampler(ingest.process.pid),
            "scheduler": RssSampler(metering.pid),
            "web": RssSampler(web.pid),
        }
        already = stored_readings(url)
        publisher = PacedPublisher(broker_port, endless_readings(vehicle_ids), rate)
        lags, backlogs, started = [], [], time.monotonic()
        while time.monotonic() - started < shape["seconds"]:
            time.sleep(1)
            lag = web_metric(http_port, "billing_metering_lag_seconds")
            lags.append(lag if lag is not None else float("inf"))
            stored = ingest.metric("billing_ingest_readings_stored_total")
            backlogs.append((publisher.acknowledged - stored) / rate)
        published = publisher.stop()
        memory = {name: sampler.stop() for name, sampler in samplers.items()}
        ingest.wait_readings(published)
        stored = stored_readings(url) - already
        ingest.stop()
        metering.terminate()
        metering.wait(30)
        web.stop()
    return {
        "measured_readings_per_s": round(measured),
        "soak_readings_per_s": round(rate),
        "seconds": shape["seconds"],
        "published": published,
        "stored": stored,
        "memory": memory,
        "lags": lags,
        "backlogs_s": backlogs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 s instead of 10 minutes")
    arguments = parser.parse_args()
    shape = QUICK if arguments.quick else FULL
    kind = "postgresql" if postgres_server() else "sqlite"
    run = soak(kind, shape)
    figures = {"benchmark": "soak", "database": kind, **{k: run[k] for k in list(run)[:5]}}
    failures = []
    for name, memory in run["memory"].items():
        first, last = memory["rss_mb_first_quarter"], memory["rss_mb_last_quarter"]
        figures[f"{name}_rss_mb_first_quarter"] = first
        figures[f"{name}_rss_mb_last_quarter"] = last
        if last > first * RSS_GROWTH + RSS_SLACK_MB:
            failures.append(f"{name} memory grew from {first:.1f} to {last:.1f} MB")
    lag_first, lag_last = quarters(run["lags"])
    backlog_first, backlog_last = quarters(run["backlogs_s"])
    figures |= {
        "metering_lag_s_max": max(run["lags"]),
        "metering_lag_s_first_quarter": lag_first,
        "metering_lag_s_last_quarter": lag_last,
        "ingest_backlog_s_max": round(max(run["backlogs_s"]), 1),
        "ingest_backlog_s_first_quarter": round(backlog_first, 1),
        "ingest_backlog_s_last_quarter": round(backlog_last, 1),
    }
    if lag_last > LAG_BOUND_S:
        failures.append(f"the metering lag reached {lag_last:.0f} s in the last quarter")
    if backlog_last > BACKLOG_BOUND_S:
        failures.append(f"the ingest was {backlog_last:.0f} s behind in the last quarter")
    if run["stored"] != run["published"]:
        failures.append(f"{run['published']} published but {run['stored']} stored")
    figures["rss_growth_tolerance"] = f"x{RSS_GROWTH} + {RSS_SLACK_MB} MB"
    figures["flat_and_bounded"] = not failures
    for failure in failures:
        print(failure, file=sys.stderr)
    report(figures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
