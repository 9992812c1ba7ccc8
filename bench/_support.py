"""Shared by the benchmarks: scratch databases, a Mosquitto of our own, process figures,
and the calibration that makes figures from two machines comparable."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from billing import migrate
from billing.db import Database, make_engine
from billing.settings import PROJECT_ROOT, normalize_database_url

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_server() -> str | None:
    url = normalize_database_url(os.environ.get("DATABASE_URL") or LOCAL_POSTGRES)
    if not url.startswith("postgresql"):
        url = LOCAL_POSTGRES
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host, parsed.port or 5432), timeout=1):
            return url
    except OSError:
        return None


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """A migrated, empty database of `kind` ("postgresql" or "sqlite"), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite:///{Path(directory) / 'bench.db'}"
            _migrate(url)
            yield url
        return
    server = postgres_server()
    if server is None:
        raise RuntimeError("PostgreSQL is not reachable")
    name = f"billing_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


def database(url: str) -> Database:
    return Database.from_url(url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def own_mosquitto() -> Iterator[int]:
    """A Mosquitto on a free port with the project's queueing settings, anonymous access.

    The system Mosquitto keeps the default max_queued_messages of 1000 and would silently
    drop most of a burst; this one takes its limits from config/mosquitto.conf.
    """
    binary = shutil.which("mosquitto")
    if binary is None:
        raise RuntimeError("mosquitto is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "mosquitto.conf"
        config.write_text(_bench_config(port, Path(directory)))
        process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(port)
            yield port
        finally:
            process.terminate()
            process.wait(10)


def _bench_config(port: int, directory: Path) -> str:
    kept = []
    for line in (PROJECT_ROOT / "config" / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key in {"max_queued_messages", "max_queued_bytes", "max_inflight_messages"}:
            kept.append(line)
    return "\n".join(
        [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false", *kept, ""]
    )


def _wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The resident memory of a process every half second, to show it stays flat."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(OSError):
                self.samples.append(process_rss_mb(self.pid))

    def stop(self) -> dict[str, float]:
        """RSS at the end of the first and of the last quarter of the run, in MB."""
        self._stop.set()
        self._thread.join()
        samples = self.samples or [0.0]
        quarter = max(1, len(samples) // 4)
        return {
            "rss_mb_first_quarter": round(max(samples[:quarter]), 1),
            "rss_mb_last_quarter": round(max(samples[-quarter:]), 1),
        }


def self_peak_rss_mb() -> float:
    return process_peak_rss_mb(os.getpid())


CALIBRATION_ADDITIONS = 10_000_000
CALIBRATION_RUNS = 3


@functools.cache
def calibration_s() -> float:
    """CPU seconds of a plain Python loop of ten million additions, best of three runs.

    Every benchmark prints it beside its figures (`calibration_s`): an absolute figure
    divided by it, or compared with it, can be set against one from another machine. The
    best run is kept because a loaded machine only ever makes a run slower. Never change
    this workload: figures measured before would no longer compare.
    """
    best = float("inf")
    for _ in range(CALIBRATION_RUNS):
        started = time.process_time()
        total = 0
        for number in range(CALIBRATION_ADDITIONS):
            total += number
        best = min(best, time.process_time() - started)
    return round(best, 3)


def ratio(ours: float, limit: float) -> float:
    """How close a measured rate comes to the rate of its limit measured in the same run."""
    return round(ours / limit, 3)


def report(figures: dict) -> None:
    """Print the figures, with the machine's `calibration_s`; the last line of a
    benchmark's output is one JSON object."""
    sys.stdout.flush()
    print(json.dumps({**figures, "calibration_s": calibration_s()}))


def seed_fleet(url: str, name: str, vehicle_ids: list[str], held_from: dt.datetime) -> None:
    """A customer `cus_<name>` (Europe/Paris) with fleet `flt_<name>` holding the vehicles
    since `held_from`, inserted in bulk: benchmarks need thousands of vehicles quickly."""
    from sqlalchemy import insert

    from billing.devices.models import Customer, Fleet, FleetMembership, Vehicle

    db = database(url)
    now = dt.datetime.now(dt.UTC)
    customer_id, fleet_id = f"cus_{name}", f"flt_{name}"
    with db.session() as session:
        session.execute(
            insert(Customer).values(
                id=customer_id, name=f"{name.title()} SAS", email=f"{name}@bench.example",
                address_line1="1 rue", address_line2="", postal_code="80000", city="Amiens",
                country="FR", language="fr", timezone="Europe/Paris", currency="EUR",
                status="active", created_at=now, updated_at=now,
            )
        )  # fmt: skip
        session.execute(
            insert(Fleet).values(
                id=fleet_id, customer_id=customer_id, name=name, status="active",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        session.execute(
            insert(Vehicle),
            [
                {"id": vid, "fleet_id": fleet_id, "model": "s1", "serial": f"S-{vid}",
                 "status": "active", "created_at": now, "updated_at": now, "notes": ""}
                for vid in vehicle_ids
            ],
        )  # fmt: skip
        session.execute(
            insert(FleetMembership),
            [{"vehicle_id": v, "fleet_id": fleet_id, "started_at": held_from} for v in vehicle_ids],
        )
        session.commit()
    db.engine.dispose()


class BillingRole:
    """A `billing <command>` child process (ingest, schedule, serve) that a benchmark can
    kill and start again, as a supervisor would; each start logs to its own file."""

    def __init__(self, name: str, args: list[str], environment: dict[str, str], logs: Path):
        self.name, self.args, self.environment, self.logs = name, args, environment, logs
        self.starts = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.starts += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{self.name}-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "billing.cli", *self.args],
                env={**os.environ, **self.environment},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last commit, no disconnect."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)


def project_mosquitto(directory: Path, accounts, port: int = 0):
    """Mosquitto as `billing run` starts it (config/mosquitto.conf, persistence, password
    and ACL files from `accounts`) in `directory`; `port` 0 takes a free one, the previous
    port restarts it where it was with its saved sessions and queued messages."""
    from billing.broker.factory import start_embedded_broker
    from billing.settings import load_settings

    if shutil.which("mosquitto") is None:
        raise RuntimeError("mosquitto is not installed (make install; make doctor)")
    settings = load_settings(
        data_dir=directory, mqtt_url="", broker={"port": port, "refresh_seconds": 0}
    )
    return start_embedded_broker(settings, accounts, backend="mosquitto")


def metering_lag_s(db: Database) -> float:
    """Age of the oldest stored reading not yet in the usage (`billing_metering_lag_seconds`)."""
    from sqlalchemy import func, select

    from billing.db import utcnow
    from billing.telemetry.models import MeteringQueue

    with db.session() as session:
        oldest = session.scalar(select(func.min(MeteringQueue.enqueued_at)))
    return (utcnow() - oldest).total_seconds() if oldest else 0.0
