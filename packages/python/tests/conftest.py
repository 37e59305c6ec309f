"""Shared fixtures of the package's own suite: a webhook receiver on a loopback port, as a
partner would run one. The ``linkbox`` and ``linkbox_tenant`` fixtures come from the
installed wheel's pytest plugin, not from here."""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

pytest_plugins = ["pytester"]


class Received:
    def __init__(self, path: str, headers: Dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body
        self.json: Any = json.loads(body)


class Receiver:
    """Records every POST and answers 200."""

    def __init__(self) -> None:
        self.received: List[Received] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._arrived:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    receiver._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, event: str, timeout: float = 10.0) -> Received:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for item in self.received:
                    if item.headers.get("x-m2m-event") == event:
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [item.headers.get("x-m2m-event") for item in self.received]
                    raise AssertionError(f"no {event} webhook within {timeout} s (got {seen})")
                self._arrived.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()
