"""`billing run`: every role of the service as child processes of one command, for a
single machine. Production runs the same roles as separate services instead.

The web API runs in the main process; the ingest consumer, the scheduler and the demo
simulator run as `billing …` child processes, each logging to its own file in
<data_dir>/logs. A child that dies is restarted after a delay that doubles with each death
in a row (1 s, 2 s, 4 s… up to a minute), and a child that stayed up a minute starts
afresh; one that died `give_up_after` times in a row cannot come up, and the supervisor
gives up (`billing run` then stops everything and exits with an error) rather than
restart it forever. The embedded broker (billing.broker) lives as long as this process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 60.0
STABLE_AFTER_S = 60.0  # a child up this long has come up: its next death is a first one
GIVE_UP_AFTER = 8
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
    deaths_in_a_row: int = 0
    restart_at: float | None = None  # when dead: the instant of its next start


class Supervisor:
    """Starts `billing` subcommands as children, restarts those that die, stops them all."""

    def __init__(
        self,
        log_directory: Path,
        *,
        restart_delay: float = RESTART_DELAY_S,
        max_restart_delay: float = MAX_RESTART_DELAY_S,
        stable_after: float = STABLE_AFTER_S,
        give_up_after: int = GIVE_UP_AFTER,
        on_give_up: Callable[[Child], None] | None = None,
    ):
        self.log_directory = log_directory
        self.children: list[Child] = []
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.stable_after = stable_after
        self.give_up_after = give_up_after
        self.on_give_up = on_give_up
        self.gave_up: Child | None = None  # the child that could not come up
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
        while not self._stopping.wait(0.2):
            for child in self.children:
                if self._stopping.is_set():
                    return
                if child.restart_at is not None:
                    if time.monotonic() >= child.restart_at:
                        child.restart_at = None
                        child.restarts += 1
                        self._launch(child)
                    continue
                code = child.process.poll() if child.process else None
                if code is not None:
                    self._schedule_restart(child, code)

    def _schedule_restart(self, child: Child, code: int) -> None:
        if time.monotonic() - child.started_at >= self.stable_after:
            child.deaths_in_a_row = 0
        child.deaths_in_a_row += 1
        if child.deaths_in_a_row >= self.give_up_after:
            log.error(
                "%s died %d times in a row (last exit code %s); giving up (see %s)",
                child.name, child.deaths_in_a_row, code, child.log_file,
            )  # fmt: skip
            self.gave_up = child
            self._stopping.set()
            if self.on_give_up is not None:
                self.on_give_up(child)
            return
        delay = restart_delay(child.deaths_in_a_row, self.restart_delay, self.max_restart_delay)
        log.warning(
            "%s exited with code %s; restarting in %.0f s (see %s)",
            child.name, code, delay, child.log_file,
        )  # fmt: skip
        child.restart_at = time.monotonic() + delay


def restart_delay(deaths_in_a_row: int, base: float, maximum: float) -> float:
    """How long to wait before restarting a child that died this many times in a row."""
    return min(base * 2 ** (deaths_in_a_row - 1), maximum)
