"""The system side of setup (scripts/machine.py): what `make install` installs or asks for,
and what `make doctor` reports."""

import argparse
import importlib.util
import re
import sys

import pytest

from billing.settings import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("machine", PROJECT_ROOT / "scripts" / "machine.py")
machine = sys.modules.setdefault("machine", importlib.util.module_from_spec(spec))
spec.loader.exec_module(machine)

DEBIAN_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def test_the_package_list_holds_what_the_renderer_broker_and_browser_tests_need():
    packages = machine.listed_packages()
    assert all(DEBIAN_NAME.fullmatch(package) for package in packages), packages
    assert {"libharfbuzz-subset0", "fonts-dejavu-core", "mosquitto", "chromium"} <= set(packages)
    assert len(packages) == len(set(packages))


def test_the_template_font_is_the_one_the_list_installs():
    template = (PROJECT_ROOT / "billing" / "invoicing" / "templates" / "invoice.typ").read_text()
    assert 'font: "DejaVu Sans"' in template


def test_a_machine_without_package_lists_updates_them_before_installing(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "APT_LISTS", tmp_path)
    assert machine.install_command(["mosquitto"], as_root=True) == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "mosquitto"],
    ]
    (tmp_path / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4").touch()
    assert machine.install_command(["mosquitto"], as_root=False) == [
        ["sudo", "apt-get", "install", "-y", "--no-install-recommends", "mosquitto"],
    ]


def test_without_root_install_prints_the_command_and_carries_on(monkeypatch, capsys):
    monkeypatch.setattr(machine, "missing_packages", lambda packages: ["libharfbuzz-subset0"])
    monkeypatch.setattr(machine.os, "geteuid", lambda: 1000)

    assert machine.install(argparse.Namespace()) == 0

    message = capsys.readouterr().err
    assert "system packages missing: libharfbuzz-subset0" in message
    assert "sudo apt-get install -y --no-install-recommends libharfbuzz-subset0" in message


def test_nothing_missing_installs_nothing(monkeypatch, capsys):
    monkeypatch.setattr(machine, "missing_packages", lambda packages: [])
    monkeypatch.setattr(machine.subprocess, "run", pytest.fail)

    assert machine.install(argparse.Namespace()) == 0
    assert capsys.readouterr().err == ""


def test_the_doctor_reports_each_component_and_what_a_missing_one_affects(monkeypatch, capsys):
    monkeypatch.setattr(machine, "_library", lambda name: None)  # no Pango, no HarfBuzz
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")

    assert machine.doctor(argparse.Namespace()) == 1  # Pango is required

    report = capsys.readouterr().out
    for name in (component.name for component in machine.COMPONENTS):
        assert re.search(rf"^{name} +(present|missing|degraded|not configured) ", report, re.M)
    assert re.search(r"^harfbuzz-subset +missing ", report, re.M)
    assert "not byte-stable" in report and "(Debian package libharfbuzz-subset0)" in report
    assert re.search(r"^postgresql +missing .*127\.0\.0\.1:1", report, re.M)
