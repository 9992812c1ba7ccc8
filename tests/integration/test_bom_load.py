"""`billing bom load` and `billing bom list`, and the versioning of bills of materials: a
version from which a part was made never changes."""

import shutil
from pathlib import Path

import pytest
import yaml

from billing.components import services
from billing.components.services import DEFAULT_BOM_DIRECTORY
from billing.errors import Invalid
from tests.conftest import NOW


@pytest.fixture
def bom_dir(cli, tmp_path: Path) -> Path:
    directory = tmp_path / "bom"
    shutil.copytree(DEFAULT_BOM_DIRECTORY, directory)
    assert cli("db", "upgrade").exit_code == 0
    return directory


def edit_component(path: Path, code: str, **changes) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for component in data["components"]:
        if component["code"] == code:
            component.update(changes)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_loading_the_example_twice_creates_one_version(cli, bom_dir: Path):
    first = cli("bom", "load", str(bom_dir))
    assert first.exit_code == 0, first.output
    assert first.output == "created: s1 version 1 (s1.yaml)\n"
    again = cli("bom", "load", str(bom_dir))
    assert again.output == "unchanged: s1 version 1 (s1.yaml)\n"
    listed = cli("bom", "list")
    assert listed.output == "s1\tv1\teditable\t12 components\n"


def test_an_edit_replaces_an_unused_version(cli, bom_dir: Path):
    cli("bom", "load", str(bom_dir))
    edit_component(bom_dir / "s1.yaml", "tyre-front", unit_cost="32.00")
    result = cli("bom", "load", str(bom_dir))
    assert result.output == "replaced: s1 version 1 (s1.yaml)\n"


def test_a_faulty_file_loads_nothing_and_names_file_and_field(cli, bom_dir: Path):
    edit_component(bom_dir / "s1.yaml", "battery", lifetime={"cycles": -3})
    (bom_dir / "s2.yaml").write_text("model: s2\ncurrency: EUR\ncomponents: []\n")
    result = cli("bom", "load", str(bom_dir), catch_exceptions=True)
    assert result.exit_code == 1
    assert "s1.yaml: components.4.lifetime.cycles: must not be negative" in result.output
    assert "s2.yaml: components: must have at least one component" in result.output
    assert cli("bom", "list").output == ""


def test_a_file_that_is_not_yaml_is_named(cli, bom_dir: Path):
    (bom_dir / "broken.yaml").write_text("model: [s1\n")
    result = cli("bom", "load", str(bom_dir), catch_exceptions=True)
    assert result.exit_code == 1
    assert "broken.yaml: _schema: not valid YAML" in result.output


def test_a_locked_version_is_never_changed_an_edit_adds_a_version(session, tmp_path: Path):
    directory = tmp_path / "bom"
    shutil.copytree(DEFAULT_BOM_DIRECTORY, directory)
    [loaded] = services.load_boms_from_directory(session, directory, NOW)
    version = services.get_bom_version(session, "s1", loaded.version)
    services.lock_bom_version(session, version, NOW)
    session.commit()
    original = version.definition
    edit_component(directory / "s1.yaml", "tyre-front", unit_cost="32.00")
    [edited] = services.load_boms_from_directory(session, directory, NOW)
    assert (edited.version, edited.outcome) == (2, services.NEW_VERSION)
    assert services.get_bom_version(session, "s1", 1).definition == original
    assert services.get_bom_version(session, "s1").to_bom().component("tyre-front").unit_cost == 32


def test_a_bom_cannot_change_currency(session):
    data = yaml.safe_load((DEFAULT_BOM_DIRECTORY / "s1.yaml").read_text(encoding="utf-8"))
    services.save_bom(session, data, NOW)
    with pytest.raises(Invalid) as raised:
        services.save_bom(session, {**data, "currency": "CHF"}, NOW)
    assert raised.value.details == {"currency": ["the BOM of s1 is in EUR"]}
