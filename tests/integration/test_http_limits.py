"""Request size limits over real HTTP (waitress, as `billing serve` runs it): a body over
the limit is refused from its declared length, in the API's error format, without the
server waiting for or reading the body; a length that lies cannot stretch the limit.
(Chunked bodies are cut by the application: test_hostile_requests.)"""

import json
import socket
from urllib.parse import urlsplit

import pytest

from billing import create_app
from billing.db import Database
from tests.live_server import live_server

LIMIT = 1024 * 1024


@pytest.fixture
def base_url(settings, tmp_path):
    # An empty database: none of these requests gets as far as looking up a key.
    database = Database.from_url(f"sqlite:///{tmp_path / 'http.db'}")
    with live_server(create_app(settings, database)) as url:
        yield url
    database.engine.dispose()


def exchange(base_url: str, head: bytes, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send a raw request and read the first response to its end (the server closes)."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port)) as connection:
        connection.sendall(head + b"\r\n\r\n" + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    header, _, content = received.partition(b"\r\n\r\n")
    status_line, *lines = header.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, content


def request_head(content_length: int, *, close: bool = True) -> bytes:
    lines = [
        "POST /api/v1/customers HTTP/1.1",
        "Host: billing.test",
        "Content-Type: application/json",
        f"Content-Length: {content_length}",
    ]
    if close:
        lines.append("Connection: close")
    return "\r\n".join(lines).encode()


def test_a_20_mb_body_is_refused_from_its_length_in_the_error_format(base_url):
    # None of the body is sent: the answer comes from the headers alone.
    status, headers, content = exchange(base_url, request_head(20 * 2**20))

    assert status == 413
    assert headers["content-type"] == "application/json"
    error = json.loads(content)["error"]
    assert error["code"] == "request_entity_too_large"
    assert set(error) == {"code", "message", "details"}


def test_a_length_promising_more_than_is_sent_gets_413_not_a_wait(base_url):
    status, _headers, content = exchange(base_url, request_head(LIMIT + 1), b"{}")

    assert status == 413
    assert json.loads(content)["error"]["code"] == "request_entity_too_large"


def test_a_body_at_the_limit_reaches_the_application(base_url):
    status, _headers, content = exchange(base_url, request_head(LIMIT), b" " * LIMIT)

    assert status == 401  # read, then refused for want of a key
    assert json.loads(content)["error"]["code"] == "unauthenticated"


def test_a_length_shorter_than_the_body_reads_no_further(base_url):
    # The server takes the 2 declared bytes as the body; what follows is another request.
    next_request = b"DELETE /api/v1/customers/x HTTP/1.1\r\nConnection: close\r\n\r\n"
    status, _headers, content = exchange(
        base_url, request_head(2, close=False), b"{}" + next_request
    )

    assert status == 401
    first, _, second = content.partition(b"HTTP/1.1 ")
    assert json.loads(first)["error"]["code"] == "unauthenticated"
    assert second.startswith(b"401 ")  # the "rest of the body", parsed as a request
