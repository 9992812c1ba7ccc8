"""`billing.mail.send_mail`: through a real SMTP server, or to the log without one."""

import logging

import pytest

from billing.mail import MailError, send_mail
from billing.net import free_port
from billing.settings import load_settings
from tests.smtp_server import smtp_server


def smtp_settings(tmp_path, port: int, **smtp):
    values = {"host": "127.0.0.1", "port": port, "starttls": False, **smtp}
    return load_settings(
        data_dir=tmp_path, smtp={"from_address": "billing@seller.example", **values}
    )


def test_a_message_reaches_the_smtp_server_with_its_headers_and_text(tmp_path):
    with smtp_server() as (port, mailbox):
        send_mail(
            smtp_settings(tmp_path, port), "compta@lp.example", "Relance", "Bonjour,\n€ 12,00\n"
        )
        received = mailbox.wait_for(1)
    assert received["To"] == "compta@lp.example"
    assert received["From"] == "billing@seller.example"
    assert received["Subject"] == "Relance"
    assert received["Message-ID"].endswith("@seller.example>")
    assert received.get_content().replace("\r\n", "\n") == "Bonjour,\n€ 12,00\n"


def test_without_a_host_the_message_goes_to_the_log(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="billing.mail")
    send_mail(load_settings(data_dir=tmp_path), "a@b.example", "Subject here", "the body text")
    [record] = [r for r in caplog.records if r.name == "billing.mail"]
    assert "a@b.example" in record.getMessage()
    assert "Subject here" in record.getMessage()
    assert "the body text" in record.getMessage()


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("a@b.example\r\nBcc: evil@x.example", "s"),
        ("a@b.example", "s\nBcc: evil@x.example"),
        ("", "s"),
    ],
)
def test_a_header_with_a_line_break_or_empty_is_refused(tmp_path, to, subject):
    with pytest.raises(ValueError, match="mail"):
        send_mail(load_settings(data_dir=tmp_path), to, subject, "text")


def test_an_unreachable_server_raises_mail_error_naming_it(tmp_path):
    port = free_port("127.0.0.1", 0)  # nothing listens there
    with pytest.raises(MailError, match=f"127.0.0.1:{port}"):
        send_mail(smtp_settings(tmp_path, port, timeout_seconds=2), "a@b.example", "s", "t")


def test_smtp_settings_come_from_the_environment(tmp_path):
    settings = load_settings(
        {"BILLING_SMTP_HOST": "mail.example", "BILLING_SMTP_PORT": "2525",
         "BILLING_SMTP_STARTTLS": "false", "BILLING_SMTP_FROM_ADDRESS": "x@y.example"},
        data_dir=tmp_path,
    )  # fmt: skip
    assert (settings.smtp.host, settings.smtp.port) == ("mail.example", 2525)
    assert settings.smtp.starttls is False
    assert settings.smtp.from_address == "x@y.example"
