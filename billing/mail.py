"""Outgoing e-mail: plain-text messages through the SMTP server of the [smtp] settings.

With no host configured (the embedded default) nothing leaves the machine: the message is
written to the log, whole, so that a sign-in link can be read there. The sign-in e-mails
and the dunning e-mails go through `send_mail`; it raises `MailError` when the server
cannot be reached or refuses the message, so that the caller decides what to tell.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from billing.settings import Settings
from billing.text import UnsafeText, clean_text

log = logging.getLogger(__name__)


class MailError(Exception):
    """The message could not be handed to the SMTP server; the message says why."""


def send_mail(settings: Settings, to: str, subject: str, text: str) -> None:
    """Send `text` to `to` with `subject`, from `settings.smtp.from_address`.

    Without `settings.smtp.host`, log it instead (at INFO, on the `billing.mail` logger).
    Header fields holding a line break or a control character are refused (ValueError):
    a recipient or subject taken from input must not add headers.
    """
    smtp = settings.smtp
    message = EmailMessage()
    message["From"] = _header(smtp.from_address, "from_address")
    message["To"] = _header(to, "to")
    message["Subject"] = _header(subject, "subject")
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=smtp.from_address.rpartition("@")[2] or None)
    message.set_content(text)
    if not smtp.host:
        log.info("mail (no SMTP host configured) to %s: %s\n%s", to, subject, text)
        return
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.username:
                server.login(smtp.username, smtp.password)
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise MailError(f"could not send mail through {smtp.host}:{smtp.port}: {error}") from error
    log.info("mail sent to %s: %s", to, subject)


def _header(value: str, name: str) -> str:
    try:
        cleaned = clean_text(value)
    except UnsafeText as error:
        raise ValueError(f"mail {name}: {error}") from None
    if not cleaned.strip():
        raise ValueError(f"mail {name} is empty")
    return cleaned
