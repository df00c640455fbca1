"""What the API reads before any route does: a bounded request body and, for JSON, UTF-8 of bounded depth.

A plain ASGI middleware in front of the `/api/` routes. A body over MAX_BODY_BYTES is refused with 413 (by its
Content-Length, or as soon as a streamed body passes the limit) without being read further. A JSON body must be
UTF-8 (RFC 8259): a UTF-16/32 body, or bytes that are not UTF-8 (Latin-1 text), is refused rather than decoded
into something else; so is nesting deeper than MAX_JSON_DEPTH. Each refusal is a problem+json answer naming the
body and the line and column. A body that passes is handed on unchanged.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trialstack.api.problems import problem

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
DRAIN_BYTES = 256 * 1024 * 1024
_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line}, column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def json_body_problem(data: bytes) -> str | None:
    """Why a JSON body is refused before parsing (encoding, depth), or None."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return f"the body is {name} (byte order mark): JSON bodies are UTF-8"
    nul = data.find(b"\x00")
    if nul >= 0:
        return f"NUL byte at offset {nul}: the body is UTF-16 or UTF-32, or not text; JSON bodies are UTF-8"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, line_start = data.count(b"\n", 0, error.start) + 1, data.rfind(b"\n", 0, error.start) + 1
        where = f"line {line}, column {error.start - line_start + 1}"
        byte = data[error.start : error.start + 1].hex().upper()
        return f"not UTF-8: byte 0x{byte} at {where} ({error.reason}); JSON bodies are UTF-8"
    depth = 0
    for token in _STRUCTURE.finditer(text):
        mark = token[0]
        if mark in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"nested more than {MAX_JSON_DEPTH} levels deep at {_position(text, token.start())}"
        elif mark in "]}":
            depth -= 1
    return None


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class RequestBodyGuard:
    """Bounded, UTF-8, reasonably flat JSON bodies for every route under `prefix`."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/", max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.prefix = prefix
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _WITHOUT_BODY or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send, message.get("more_body", False))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(headers.get(b"content-type", b"").decode("latin-1")):
            reason = json_body_problem(body)
            if reason is not None:
                response = problem(400, "Malformed JSON body", f"body: {reason}", "malformed-body", "body")
                await response(scope, receive, send)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, more: bool = True) -> None:
        """Answer 413. The rest of the body is read and dropped first (up to DRAIN_BYTES, memory stays flat):
        a client still sending would otherwise see the connection reset instead of the answer."""
        drained = 0
        while more and drained < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        limit = f"{self.max_bytes // 1024} KiB"
        response = problem(413, "Request body too large", f"body: more than {limit}", "body-too-large", "body")
        await response(scope, receive, send)
