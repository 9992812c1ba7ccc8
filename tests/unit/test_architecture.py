"""The architecture's contracts (.importlinter) hold, and cover every package."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"
LAYERED = {"views.py", "commands.py", "services.py", "models.py"}


def _contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return parser


def test_every_contract_is_kept():
    # In a process of its own: import-linter reconfigures logging, which other tests read.
    linter = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(linter), "--config", str(CONFIG), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:]


def test_every_package_with_layers_is_a_container_of_the_layers_contract():
    containers = set(_contracts()["importlinter:contract:layers"]["containers"].split())
    packages = {
        f"billing.{path.parent.name}"
        for path in (ROOT / "billing").glob("*/*.py")
        if path.name in LAYERED
    }
    assert packages - containers == set(), "add them to the layers contract's containers"
