"""The system side of a development or CI machine: `install` and `doctor`.

    python3 scripts/machine.py install   # what `make install` runs first
    python3 scripts/machine.py doctor    # `make doctor`: what is present, missing, degraded

`install` installs the Debian packages of config/system-packages.txt that are missing,
when it can (root, apt); otherwise it prints the command to run and goes on, because the
project also runs with Python alone (the tests needing a missing component are skipped and
say why). It asks dpkg first, so that it costs a few milliseconds when nothing is missing.

Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_FILE = ROOT / "config" / "system-packages.txt"
APT_LISTS = Path("/var/lib/apt/lists")
# Several checkouts may run `make install` at once: wait for the dpkg lock, do not fail.
APT_OPTIONS = ["-o", "DPkg::Lock::Timeout=600", "-o", "APT::Get::Assume-Yes=true"]


def listed_packages(path: Path = PACKAGES_FILE) -> list[str]:
    """The packages of the list file: one a line, `#` starts a comment."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def missing_packages(packages: list[str]) -> list[str]:
    """The packages dpkg does not know as installed; all of them where there is no dpkg."""
    if shutil.which("dpkg-query") is None:
        return packages
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
    )
    installed = {
        name.split(":", 1)[0]
        for name, _, status in (line.partition(" ") for line in result.stdout.splitlines())
        if status == "installed"
    }
    return [package for package in packages if package not in installed]


def venv_packages() -> list[str]:
    """Debian's own Python creates no virtualenv without its venv package (no ensurepip);
    a Python installed otherwise brings ensurepip itself."""
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        if sys.executable.startswith("/usr/bin/"):
            return [f"python{sys.version_info.major}.{sys.version_info.minor}-venv"]
    return []


def install_command(packages: list[str], as_root: bool) -> list[list[str]]:
    """The apt commands that install `packages`: `apt-get update` first when this machine
    has no package lists yet (a fresh container), `sudo` when not run as root."""
    sudo = [] if as_root else ["sudo"]
    commands = []
    if not glob.glob(str(APT_LISTS / "*_Packages*")):
        commands.append([*sudo, "apt-get", "update"])
    # Recommends would pull a desktop in with chromium; what we need is listed.
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    commands.append([*sudo, *install])
    return commands


def install(_arguments: argparse.Namespace) -> int:
    missing = missing_packages(listed_packages() + venv_packages())
    if not missing:
        return 0
    can_apt = shutil.which("apt-get") is not None
    as_root = os.geteuid() == 0
    commands = install_command(missing, as_root)
    shown = " && ".join(shlex.join(command) for command in commands)
    if not (can_apt and as_root):
        where = "run" if can_apt else "install the equivalent of"
        print(
            f"system packages missing: {' '.join(missing)}\n"
            f"  {where}: {shown}\n"
            "  (the project runs without them; `make doctor` says what each one affects)",
            file=sys.stderr,
        )
        return 0
    print(f"installing system packages: {' '.join(missing)}", file=sys.stderr)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in commands:
        run = [command[0], *APT_OPTIONS, *command[1:]]
        if subprocess.run(run, env=environment).returncode != 0:
            # Stale package lists are the usual reason; refresh them once and try again.
            subprocess.run(["apt-get", *APT_OPTIONS, "update"], env=environment, check=True)
            subprocess.run(run, env=environment, check=True)
    return 0


# --- doctor ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    status: str  # "present", "missing", "degraded" or "not configured"
    detail: str


@dataclass(frozen=True)
class Component:
    name: str
    package: str  # the Debian package that brings it, "" for a service
    affects: str  # what goes wrong without it
    check: Callable[[], Finding]
    required: bool = False


def _library(name: str) -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def check_pango() -> Finding:
    if _library("libpango-1.0.so.0") and _library("libpangoft2-1.0.so.0"):
        return Finding("present", "libpango-1.0.so.0, libpangoft2-1.0.so.0")
    return Finding("missing", "WeasyPrint cannot be imported")


def check_harfbuzz_subset() -> Finding:
    if _library("libharfbuzz-subset.so.0") is None:
        return Finding("missing", "WeasyPrint subsets fonts with fontTools instead")
    harfbuzz = _library("libharfbuzz.so.0")
    # WeasyPrint uses HarfBuzz-Subset only from 4.1.0 on (hb_set_add_sorted_array).
    if harfbuzz is None or not harfbuzz.hb_version_atleast(4, 1, 0):
        return Finding("degraded", "HarfBuzz older than 4.1.0: WeasyPrint ignores it")
    harfbuzz.hb_version_string.restype = ctypes.c_char_p
    return Finding("present", f"HarfBuzz {harfbuzz.hb_version_string().decode()}")


def check_fonts() -> Finding:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        found = glob.glob("/usr/share/fonts/**/DejaVuSans.ttf", recursive=True)
        if found:
            return Finding("present", f"{found[0]} (fc-match missing: not asked to fontconfig)")
        return Finding("missing", "no DejaVuSans.ttf and no fc-match to find another")
    matched = subprocess.run(
        [fc_match, "DejaVu Sans"], capture_output=True, text=True
    ).stdout.strip()
    if matched.startswith("DejaVuSans"):
        return Finding("present", f"fontconfig gives {matched}")
    return Finding("missing", f"fontconfig gives {matched or 'nothing'} for DejaVu Sans")


def check_binary(name: str) -> Callable[[], Finding]:
    def check() -> Finding:
        path = shutil.which(name)
        return Finding("present", path) if path else Finding("missing", f"no {name} on PATH")

    return check


def check_chromium() -> Finding:
    # The portal's browser tests launch exactly this path (Playwright's executable_path).
    if os.access("/usr/bin/chromium", os.X_OK):
        return Finding("present", "/usr/bin/chromium")
    return Finding("missing", "no /usr/bin/chromium")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def check_postgres() -> Finding:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        # The PostgreSQL tests also use a local server when one answers.
        if _reachable("127.0.0.1", 5432):
            return Finding("present", "DATABASE_URL unset; a server answers on 127.0.0.1:5432")
        return Finding("not configured", "DATABASE_URL unset: SQLite; nothing on 127.0.0.1:5432")
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    if _reachable(host, port):
        return Finding("present", f"DATABASE_URL's server answers on {host}:{port}")
    return Finding("missing", f"DATABASE_URL is set but nothing answers on {host}:{port}")


def check_mqtt_url() -> Finding:
    url = os.environ.get("MQTT_URL", "")
    parts = urlsplit(url or "mqtt://127.0.0.1:1883")
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    if _reachable(host, port):
        return Finding("present", f"a broker answers on {host}:{port}")
    if url:
        return Finding("missing", f"MQTT_URL is set but nothing answers on {host}:{port}")
    return Finding("not configured", "MQTT_URL unset and nothing on 127.0.0.1:1883")


COMPONENTS = (
    Component("pango", "libpango-1.0-0", "invoice PDFs (WeasyPrint)", check_pango, True),
    Component(
        "harfbuzz-subset", "libharfbuzz-subset0",
        "invoice PDFs: without it not byte-stable between renderings, about 2x slower",
        check_harfbuzz_subset,
    ),
    Component(
        "fonts", "fonts-dejavu-core",
        "invoice PDFs are set in DejaVu Sans; without it in whatever fontconfig finds",
        check_fonts,
    ),
    Component(
        "mosquitto", "mosquitto",
        "`billing run` falls back to a development broker (MQTT 3.1.1, no persistence); "
        "broker, ingest and `billing run` tests are skipped",
        check_binary("mosquitto"),
    ),
    Component(
        "mosquitto_passwd", "mosquitto", "the broker password-file tests are skipped",
        check_binary("mosquitto_passwd"),
    ),
    Component(
        "chromium", "chromium", "the web portal's browser tests are skipped", check_chromium
    ),
    Component(
        "postgresql", "", "the PostgreSQL tests are skipped; production needs it",
        check_postgres,
    ),
    Component(
        "mqtt broker", "", "the simulator tests (they publish to MQTT_URL or 127.0.0.1:1883) "
        "are skipped", check_mqtt_url,
    ),
)  # fmt: skip


def doctor(_arguments: argparse.Namespace) -> int:
    """Print each component's state; non-zero only when a required one is missing."""
    failed = False
    for component in COMPONENTS:
        finding = component.check()
        print(f"{component.name:<17} {finding.status:<15} {finding.detail}")
        if finding.status in {"missing", "degraded"}:
            source = f" (Debian package {component.package})" if component.package else ""
            print(f"{'':<17} affects: {component.affects}{source}")
            failed = failed or component.required
    missing = missing_packages(listed_packages())
    if missing:
        print(f"not installed from config/system-packages.txt: {' '.join(missing)}")
        print("  `make install` installs them as root; otherwise: " + " && ".join(
            shlex.join(command) for command in install_command(missing, os.geteuid() == 0)
        ))  # fmt: skip
    else:
        print("every package of config/system-packages.txt is installed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True)
    commands.add_parser("install", help="install the missing system packages").set_defaults(
        run=install
    )
    commands.add_parser("doctor", help="what is present, missing or degraded").set_defaults(
        run=doctor
    )
    arguments = parser.parse_args()
    return arguments.run(arguments)


if __name__ == "__main__":
    sys.exit(main())
