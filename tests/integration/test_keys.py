"""API keys: shown once, stored only as a digest, created from the command line."""

from pathlib import Path

from sqlalchemy import select

from billing.models import metadata
from tests.conftest import auth


def test_keys_create_prints_the_new_key_alone_on_standard_output(cli, tmp_path: Path):
    assert cli("db", "upgrade").exit_code == 0
    result = cli("keys", "create", "--role", "finance", "--name", "compta")
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    key = result.stdout.strip()
    assert key.startswith("bk_") and len(key) > 40
    database_file = (tmp_path / "cli.db").read_bytes()
    assert key.encode() not in database_file
    assert key[3:].encode() not in database_file
    listing = cli("keys", "list").stdout
    assert "finance" in listing and key not in listing


def test_keys_create_refuses_a_scope_that_does_not_fit_the_role(cli):
    cli("db", "upgrade")
    result = cli("keys", "create", "--role", "operator")
    assert result.exit_code == 2
    assert "an operator key needs at least one fleet" in result.output
    result = cli("keys", "create", "--role", "customer", "--scope", "cus_nope")
    assert result.exit_code == 2
    assert "customer cus_nope does not exist" in result.output


def test_no_plain_key_is_stored_in_any_table(session, keys):
    stored = []
    for table in metadata.sorted_tables:
        for row in session.execute(select(table)):
            stored.extend(str(value) for value in row)
    everything = "\n".join(stored)
    for key in keys.values():
        assert key not in everything
        assert key[3:20] not in everything


def test_a_key_created_on_the_command_line_works_on_the_api(cli, tmp_path: Path):
    from billing import create_app
    from billing.settings import load_settings

    cli("db", "upgrade")
    key = cli("keys", "create", "--role", "admin").stdout.strip()
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'cli.db'}")
    client = create_app(settings).test_client()
    assert client.get("/api/v1/customers", headers=auth(key)).status_code == 200
    revoke_id = cli("keys", "list").stdout.split("\t")[0]
    assert cli("keys", "revoke", revoke_id).exit_code == 0
    assert client.get("/api/v1/customers", headers=auth(key)).status_code == 401
