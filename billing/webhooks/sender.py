"""Sending one signed request to a receiver: the small interface the outbox talks to.

Redirects are not followed (a receiver that moved re-registers its URL), and only the
status code and the first bytes of an answer are kept.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

ANSWER_EXCERPT = 200  # bytes of a failed answer kept in the delivery log


@dataclass(frozen=True)
class Answer:
    """What came back: the status code (None when nothing did) and, on failure, why."""

    status_code: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer: ...


class HttpSender:
    """POSTs over HTTP or HTTPS (certificates verified), with a timeout for the whole wait."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        parts = urlsplit(url)
        host = parts.hostname or ""  # endpoints' URLs are validated to name a host
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, parts.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            excerpt = response.read(ANSWER_EXCERPT).decode("utf-8", "replace")
        except TimeoutError:
            return Answer(None, f"no answer within {timeout:g} s")
        except (OSError, http.client.HTTPException) as error:
            return Answer(None, f"{type(error).__name__}: {error}"[:500])
        finally:
            connection.close()
        if 200 <= response.status < 300:
            return Answer(response.status)
        return Answer(response.status, f"HTTP {response.status}: {excerpt}".strip())
