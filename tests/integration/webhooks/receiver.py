"""A webhook receiver for tests: a small HTTP server on 127.0.0.1 in a thread, answering each POST as told.

It verifies every request's signature with the `standardwebhooks` library (`Webhook(secret).verify`) as a real
receiver does, and records every attempt, so tests can check order, repeats, signatures and what was received.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay: float = 0.0
    """Seconds to wait before answering (longer than the deliverer's timeout: no answer)."""


Behaviour = Callable[[str, int], Answer]
"""(webhook-id, how many times this id was received before) → the answer."""


def always(status: int = 200) -> Behaviour:
    return lambda _id, _seen: Answer(status)


def fails_first(times: int, status: int = 500) -> Behaviour:
    """Each event fails `times` times, then succeeds."""
    return lambda _id, seen: Answer(status if seen < times else 200)


def never_answers(delay: float) -> Behaviour:
    """Answers only after `delay` (longer than the deliverer waits), and then with an error: never taken."""
    return lambda _id, _seen: Answer(504, delay)


@dataclass(frozen=True)
class Request:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    status: int
    verified: bool
    payload: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def study_seq(self) -> int:
        assert self.payload is not None, "not verified: no payload"
        return int(self.payload["data"]["study_seq"])

    @property
    def event_type(self) -> str:
        assert self.payload is not None, "not verified: no payload"
        return str(self.payload["type"])


@dataclass
class Receiver:
    behaviour: Behaviour = field(default_factory=always)
    secret: str | None = None
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._handle(self, headers, body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:  # a client that gave up: quiet
                return

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def _handle(self, handler: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        webhook_id = headers.get("webhook-id", "")
        payload: dict[str, Any] | None = None
        verified = False
        if self.secret is not None:
            try:
                payload = Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self._lock:
            seen = sum(1 for r in self.requests if r.webhook_id == webhook_id)
            answer = self.behaviour(webhook_id, seen)
            self.requests.append(Request(webhook_id, headers, body, answer.status, verified, payload))
        if answer.delay and self._closing.wait(answer.delay):
            return
        try:
            handler.send_response(answer.status)
            handler.send_header("content-length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:  # the deliverer gave up waiting
            return

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def accepted(self) -> list[Request]:
        """Requests answered 2xx (what the receiver took), in the order they came."""
        with self._lock:
            return [r for r in self.requests if r.ok]

    def accepted_seqs(self) -> list[int]:
        return [r.study_seq for r in self.accepted]

    def attempted_seqs(self) -> list[int]:
        with self._lock:
            return [r.study_seq for r in self.requests]

    def all_verified(self) -> bool:
        with self._lock:
            return bool(self.requests) and all(r.verified for r in self.requests)


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """`receivers(behaviour)` starts a receiver; all stop when the test ends."""
    made: list[Receiver] = []

    def make(behaviour: Behaviour | None = None) -> Receiver:
        receiver = Receiver(behaviour or always()).start()
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()
