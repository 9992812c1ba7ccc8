"""`billing run`: every role of the service as child processes of one command, for a
single machine. Production runs the same roles as separate services instead.

The web API runs in the main process; the ingest consumer, the scheduler and the demo
simulator run as `billing …` child processes, restarted if they die, each logging to its
own file in <data_dir>/logs. The embedded broker (billing.broker) lives as long as this
process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RESTART_DELAY_S = 2.0
STOP_TIMEOUT_S = 15.0


@dataclass
class Child:
    name: str
    args: list[str]
    environment: dict[str, str]
    log_file: Path
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


class Supervisor:
    """Starts `billing` subcommands as children, restarts those that die, stops them all."""

    def __init__(self, log_directory: Path):
        self.log_directory = log_directory
        self.children: list[Child] = []
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def add(self, name: str, args: list[str], environment: dict[str, str]) -> None:
        self.log_directory.mkdir(parents=True, exist_ok=True)
        child = Child(name, args, {**os.environ, **environment}, self.log_directory / f"{name}.log")
        self.children.append(child)
        self._launch(child)

    def start_watching(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        """SIGTERM every child (each finishes its current batch), then wait for them."""
        self._stopping.set()
        for child in self.children:
            if child.process and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %s s; killing it", child.name, STOP_TIMEOUT_S)
                child.process.kill()
                child.process.wait()

    def _launch(self, child: Child) -> None:
        with child.log_file.open("ab") as output:
            child.process = subprocess.Popen(
                [sys.executable, "-m", "billing.cli", *child.args],
                env=child.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        child.started_at = time.monotonic()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for child in self.children:
                code = child.process.poll() if child.process else None
                if code is None or self._stopping.is_set():
                    continue
                child.restarts += 1
                log.warning(
                    "%s exited with code %s; restarting (see %s)", child.name, code, child.log_file
                )
                time.sleep(RESTART_DELAY_S)
                if not self._stopping.is_set():
                    self._launch(child)
