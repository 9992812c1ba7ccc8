"""`billing run`, the main job: on embedded defaults it serves the API with a demo
customer, and the simulator's readings travel broker → ingest → metering → usage."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.services import require_program
from tests.waiting import wait_for_progress

pytestmark = pytest.mark.slow


def get(url: str, key: str | None = None) -> dict:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(base: str, process: subprocess.Popen, timeout: float = 300) -> dict:
    """/healthz once the web role serves: it prints its URL first, then imports the app,
    which takes a while on a loaded machine; fails at once if `billing run` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get(f"{base}/healthz")
        except OSError:
            assert process.poll() is None, f"billing run exited with {process.returncode}"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for_lines(process: subprocess.Popen, prefixes: list[str], timeout: float) -> dict:
    found, deadline = {}, time.monotonic() + timeout
    while len(found) < len(prefixes) and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        for prefix in prefixes:
            if line.startswith(prefix):
                found[prefix] = line[len(prefix) :].strip()
    return found


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_billing_run_serves_the_demo_and_meters_the_simulated_fleet(tmp_path, fresh_url, broker):
    """With Mosquitto installed it is the embedded broker; without, the amqtt fallback."""
    if broker == "mosquitto":
        require_program("mosquitto", "mosquitto")
    binary = "mosquitto" if broker == "mosquitto" else str(tmp_path / "no-mosquitto-here")
    environment = {
        **{k: v for k, v in os.environ.items() if k != "MQTT_URL"},
        "DATABASE_URL": fresh_url,
        "BILLING_DATA_DIR": str(tmp_path / "data"),
        "BILLING_HTTP_PORT": str(free_port()),
        "BILLING_BROKER_PORT": str(free_port()),
        "BILLING_METERING_INTERVAL_SECONDS": "1",
        "BILLING_BROKER_MOSQUITTO": binary,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "billing.cli", "run"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = wait_for_lines(
            process, ["Billing API:", "Admin key:", "Customer page:", "Finance page:"], timeout=60
        )
        base, key = lines["Billing API:"], lines["Admin key:"]
        assert wait_for_health(base, process) == {"status": "ok"}
        for page in ("Customer page:", "Finance page:"):
            assert lines[page].startswith(f"{base}/sign-in/link/")
            with urllib.request.urlopen(lines[page], timeout=30) as response:
                assert b'id="continue"' in response.read()
        customers = get(f"{base}/api/v1/customers", key)["items"]
        assert [c["name"] for c in customers] == ["Livraisons Picardes SAS"]
        # The previous month is closed and invoiced from the first start.
        [invoice] = get(f"{base}/api/v1/invoices", key)["items"]
        assert invoice["status"] == "finalized" and invoice["number"]
        usage_url = f"{base}/api/v1/customers/{customers[0]['id']}/usage"
        # A trip counts once its end is metered: wait for both, while the usage moves (the
        # first move waits for the ingest and the simulator to start, hence the longer stall).
        usage = wait_for_progress(
            lambda: get(usage_url, key),
            lambda usage: float(usage["total"]["distance_km"]) > 0 and usage["total"]["trips"] > 0,
            "metered distance and trips",
            stall_s=90,
        )
        assert float(usage["total"]["distance_km"]) > 0, usage
        assert usage["total"]["trips"] > 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        process.stdout.close()
    logs = sorted(path.name for path in (tmp_path / "data" / "logs").iterdir())
    assert logs == ["ingest.log", "scheduler.log", "simulator.log"]
