"""Broker passwords are hashed exactly as mosquitto_passwd 2.0 hashes them."""

import base64
import subprocess
from pathlib import Path

import pytest

from billing.devices.credentials import (
    SALT_BYTES,
    mosquitto_hash,
    new_broker_password,
    verify_mosquitto_hash,
)
from tests.services import require_program


def test_a_hash_is_the_line_mosquitto_passwd_writes_for_the_same_salt(tmp_path: Path):
    require_program("mosquitto_passwd", "mosquitto")
    password_file = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(password_file), "VEH-1", "s3cret-Pässword"],
        check=True,
    )
    username, theirs = password_file.read_text().strip().split(":", 1)
    _empty, _kind, iterations, salt, _digest = theirs.split("$")
    ours = mosquitto_hash(
        "s3cret-Pässword", iterations=int(iterations), salt=base64.b64decode(salt)
    )
    assert (username, ours) == ("VEH-1", theirs)


def test_a_hash_has_mosquittos_default_shape():
    empty, kind, iterations, salt, digest = mosquitto_hash("password").split("$")
    assert (empty, kind, iterations) == ("", "7", "101")
    assert len(base64.b64decode(salt)) == SALT_BYTES
    assert len(base64.b64decode(digest)) == 64


def test_a_hash_verifies_its_own_password_only():
    password_hash = mosquitto_hash("right", iterations=1000)
    assert verify_mosquitto_hash("right", password_hash)
    assert not verify_mosquitto_hash("wrong", password_hash)
    assert not verify_mosquitto_hash("", password_hash)


def test_the_same_password_hashes_differently_each_time():
    assert mosquitto_hash("same") != mosquitto_hash("same")


@pytest.mark.parametrize(
    "malformed",
    ["", "plain", "$6$salt$digest", "$7$many$c2FsdA==$ZGlnZXN0", "$7$101$%%%$%%%", "$7$101$a$b$c"],
)
def test_a_malformed_hash_verifies_nothing(malformed: str):
    assert not verify_mosquitto_hash("anything", malformed)


def test_a_salt_mosquitto_would_refuse_is_refused():
    with pytest.raises(ValueError, match="12-byte salts"):
        mosquitto_hash("password", salt=b"x" * 32)


def test_new_passwords_are_long_random_and_safe_in_a_url():
    passwords = {new_broker_password() for _ in range(100)}
    assert len(passwords) == 100
    for password in passwords:
        assert len(password) >= 43
        assert set(password) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
