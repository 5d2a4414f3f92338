"""Fixtures of the eval tests: a small OpenAI-compatible chat server on 127.0.0.1 (real HTTP, in a thread)."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from local_http import LocalServer, send_json


class FakeChatServer:
    """An OpenAI-compatible ``POST /v1/chat/completions`` endpoint.

    ``replies``: a queue of replies, each a string (the assistant's content), an int (answer with that HTTP
    status and an error body) or ``(status, headers)`` (an error with extra headers, e.g. ``Retry-After``); when
    empty, ``default`` answers. Every request body is kept in ``requests`` and its arrival time (``time.monotonic``)
    in ``arrivals``; ``latency`` seconds pass before each answer. Requests are served concurrently; the most
    served at one time is ``max_in_flight``.
    """

    def __init__(self) -> None:
        self.replies: list[str | int | tuple[int, dict[str, str]]] = []
        self.default: Callable[[dict], str] = lambda body: "Rating: [[7]]"
        self.requests: list[dict] = []
        self.arrivals: list[float] = []
        self.latency = 0.0
        self.max_in_flight = 0
        in_flight = [0]
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # http.server's method name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    server.requests.append(body)
                    server.arrivals.append(time.monotonic())
                    reply = server.replies.pop(0) if server.replies else server.default(body)
                    in_flight[0] += 1
                    server.max_in_flight = max(server.max_in_flight, in_flight[0])
                time.sleep(server.latency)
                with lock:
                    in_flight[0] -= 1
                headers: dict[str, str] = {}
                if isinstance(reply, tuple):
                    reply, headers = reply
                if isinstance(reply, int):
                    send_json(self, {"error": {"message": f"status {reply}", "type": "server_error"}}, reply, headers)
                    return
                content = json.dumps(body["messages"][-1]["content"])
                send_json(self, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                    "usage": {"prompt_tokens": len(content) // 4, "completion_tokens": len(reply) // 4,
                              "total_tokens": len(content) // 4 + len(reply) // 4}})

        self.server = LocalServer(Handler)
        self.url = f"{self.server.base_url}/v1"

    def close(self) -> None:
        self.server.close()


@pytest.fixture(name="chat_server")
def chat_server_fixture() -> Iterator[FakeChatServer]:
    server = FakeChatServer()
    try:
        yield server
    finally:
        server.close()


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
