"""The application served over real HTTP by the production server, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from billing.http_server import HttpServer


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 with the limits of `billing serve`; yields
    its base URL. The app's database must be usable from the server's threads."""
    settings = app.extensions["billing.settings"]
    server = HttpServer(
        app, "127.0.0.1", 0, threads=2, max_request_bytes=settings.http_max_request_bytes
    )
    thread = threading.Thread(target=server.run, name="live-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.close()
        thread.join()
