"""A real HTTP server on 127.0.0.1 in a daemon thread, for the tests' fake endpoints (the judge's chat server, the
Hub), and the one way they answer with JSON."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalServer:
    """Serves ``handler`` (a `BaseHTTPRequestHandler` class) on a free port of 127.0.0.1 until `close`;
    ``base_url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send_json(handler: BaseHTTPRequestHandler, obj: Any, status: int = 200,
              headers: dict[str, str] | None = None) -> None:
    """Answer the request ``handler`` is serving with ``obj`` as a JSON body, ``status`` and extra ``headers``."""
    data = json.dumps(obj).encode()
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
