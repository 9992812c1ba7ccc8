"""Mosquitto as a child process: the embedded broker of `billing run` when it is installed.

Its configuration is config/mosquitto.conf, the file production uses, with the port, the
user and the paths of this machine's data directory put in.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from billing.broker.embedded import EmbeddedBroker
from billing.broker.rules import ACL_FILE, PASSWORD_FILE, AccessRules, write_broker_files
from billing.devices.credentials import BrokerAccounts
from billing.mqtt import BrokerAddress, login_answer
from billing.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

MOSQUITTO_CONF = PROJECT_ROOT / "config" / "mosquitto.conf"


class MosquittoBroker(EmbeddedBroker):
    """Mosquitto as a child process, configured from config/mosquitto.conf."""

    protocol = mqtt.MQTTv5
    # Generous: on a loaded machine a start (or a CONNACK) takes seconds, and giving up
    # makes `billing run` fail where waiting would have worked.
    TIMEOUT_S = 60.0

    def __init__(
        self, settings: Settings, accounts: Callable[[], BrokerAccounts], port: int, binary: str
    ):
        super().__init__(settings, accounts, port)
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self.config_file = self.directory / "mosquitto.conf"
        self.log_file = self.directory / "mosquitto.log"

    def _launch(self, rules: AccessRules) -> None:
        write_broker_files(rules, self.directory)
        self.config_file.write_text(
            embedded_mosquitto_config(
                MOSQUITTO_CONF.read_text(encoding="utf-8"),
                host=self.address.host,
                port=self.address.port,
                directory=self.directory.resolve(),
                user=pwd.getpwuid(os.geteuid()).pw_name,
            ),
            encoding="utf-8",
        )
        with self.log_file.open("ab") as log_output:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_file)],
                stdout=log_output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._wait_until_serving()

    def _apply(self, rules: AccessRules) -> None:
        write_broker_files(rules, self.directory)
        if self.process is None or self.process.poll() is not None:
            return
        # Mosquitto re-reads its password and ACL files on SIGHUP, at its next turn of loop:
        # a login arriving meanwhile would still meet the old rules. Its log says when the
        # reload begins, and its single thread handles no login until the reload ends.
        log_size = self.log_file.stat().st_size
        self.process.send_signal(signal.SIGHUP)
        if not self._wait_for_log(b"Reloading config.", after=log_size):
            log.warning("Mosquitto did not log its reload within %s s", self.TIMEOUT_S)

    def _wait_for_log(self, line: bytes, after: int) -> bool:
        deadline = time.monotonic() + self.TIMEOUT_S
        while time.monotonic() < deadline:
            with self.log_file.open("rb") as log_output:
                log_output.seek(after)
                if line in log_output.read():
                    return True
            time.sleep(0.01)
        return False

    def _shutdown(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=self.TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error("Mosquitto did not stop within %s s; killing it", self.TIMEOUT_S)
            self.process.kill()
            self.process.wait()

    def _wait_until_serving(self) -> None:
        try:
            self._poll_until_serving()
        except BaseException:
            self._shutdown()
            raise

    def _poll_until_serving(self) -> None:
        # A login, not just an open port: it proves that the files were read and that the
        # main loop, which also handles the reload signal, is running.
        assert self.process is not None
        deadline = time.monotonic() + self.TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Mosquitto exited at start:\n{self._log_tail()}")
            if _login_accepted(self.address, self.protocol, deadline - time.monotonic()):
                return
            time.sleep(0.05)
        raise RuntimeError(f"Mosquitto did not accept the ingest login:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


EMBEDDED_SETTINGS = ("listener", "user", "persistence_location", "password_file", "acl_file")


def embedded_mosquitto_config(
    production_config: str, *, host: str, port: int, directory: Path, user: str
) -> str:
    """config/mosquitto.conf with the embedded broker's port, user and files in `directory`.

    Everything else is kept as it is, so that the production file stays the one source of
    the broker's settings.
    """
    if any(character.isspace() for character in str(directory)):
        raise ValueError(f"Mosquitto's configuration cannot name a path with spaces: {directory}")
    values = {
        "listener": f"{port} {host}",
        "user": user,
        "persistence_location": str(directory),
        "password_file": str(directory / PASSWORD_FILE),
        "acl_file": str(directory / ACL_FILE),
    }
    lines, replaced = [], []
    for line in production_config.splitlines():
        words = line.split(maxsplit=1)
        if words and words[0] in values:
            replaced.append(words[0])
            line = f"{words[0]} {values[words[0]]}"
        lines.append(line)
    if sorted(replaced) != sorted(EMBEDDED_SETTINGS):
        raise ValueError(
            f"{MOSQUITTO_CONF} must set each of {', '.join(EMBEDDED_SETTINGS)} exactly once"
        )
    header = "# Generated by `billing run` from config/mosquitto.conf: edit that file instead.\n"
    return header + "\n".join(lines) + "\n"


def _login_accepted(
    address: BrokerAddress, protocol: mqtt.MQTTProtocolVersion, timeout_s: float = 2.0
) -> bool:
    """Whether a client can log in; False while the port is closed, an error if refused."""
    answer = login_answer(address, protocol, timeout_s)
    if answer is not None and answer.is_failure:
        raise RuntimeError(f"the broker refused the ingest login: {answer}")
    return answer is not None
