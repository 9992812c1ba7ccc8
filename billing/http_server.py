"""The production HTTP server: waitress, bounded like the application.

Waitress reads a whole request body before it calls the application. Its own limit is set
to the application's, so that a body over it is refused from its Content-Length without
being read (or as soon as a chunked body passes it), and a Content-Length that promises
more than is sent does not keep a connection waiting for bytes the limit would refuse.
The errors waitress answers itself (413, malformed HTTP) leave in the API's error format.
"""

from __future__ import annotations

import json
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask


class _JsonErrorTask(ErrorTask):
    def execute(self) -> None:
        error = self.request.error
        code = error.reason.lower().replace(" ", "_")
        body = json.dumps(
            {"error": {"code": code, "message": str(error.body), "details": {}}}
        ).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


class HttpServer:
    """A waitress server for an application: `run()` serves until `close()`."""

    def __init__(self, app: Any, host: str, port: int, *, threads: int, max_request_bytes: int):
        # Waitress's socket map: its listeners, then each connection.
        self._sockets: dict[int, Any] = {}
        # Waitress refuses a body of max_request_body_size bytes or more; the application
        # takes up to max_request_bytes included.
        self._server = create_server(
            app,
            self._sockets,
            host=host,
            port=port,
            threads=threads,
            ident="billing",
            max_request_body_size=max_request_bytes + 1,
        )
        for listener in self._sockets.values():
            if isinstance(listener, BaseWSGIServer):
                listener.channel_class = _JsonErrorChannel

    @property
    def port(self) -> int:
        """The port it listens on (a free one when it was asked for port 0)."""
        return self._server.effective_port

    def run(self) -> None:
        self._server.run()

    def close(self) -> None:
        """Stop serving, open connections included; `run()` returns. From any thread."""
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._sockets)
