"""ASGI middleware that runs before any route: request ids, and the guard that refuses text no
database can store.

Request ids are taken from a sane `X-Request-ID` header or generated, stored on the request,
echoed in the response header (500s included) and in every error body, and put into log records.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import error_body
from core.errors import ApiErrorCode
from core.logs import request_id_var

REQUEST_ID_HEADER = "x-request-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _VALID_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            request_id_var.reset(token)


MAX_JSON_BODY_BYTES = 1024 * 1024
"""JSON bodies (sign-in, registration, key names) are tiny; a larger one is refused before parsing."""


def storable(text: str) -> bool:
    """False for text PostgreSQL cannot hold: a NUL character, or a lone UTF-16 surrogate (which
    JSON's `\\ud800` escape produces and UTF-8 cannot encode). psycopg raises on both, which was a
    500 on any route whose input reaches a query."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_storable(value: Any) -> bool:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return all(storable(key) and _json_storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_json_storable(item) for item in value)
    return True


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


class TextGuardMiddleware:
    """Refuses (400 `invalid_text`) a NUL or lone surrogate in the path, the query string, a header
    or a JSON body, in one place, before any route or database sees it.

    Multipart filenames are decoded with replacement and sanitised (`storage.sanitize_filename`),
    so they never carry either; a JSON body is parsed here once more, which costs microseconds
    for the small bodies this API takes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw_target = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        where = None
        if not storable(scope.get("path", "")) or b"\x00" in unquote_to_bytes(raw_target):
            where = "the path or query string"
        elif any(b"\x00" in value for _name, value in scope.get("headers") or []):
            where = "a header"
        if where is None and scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if _is_json(headers.get(b"content-type", b"")):
                body, more = b"", True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > MAX_JSON_BODY_BYTES:
                        await self._refuse(scope, send, 413, "payload_too_large", "The JSON body is too large.")
                        return
                try:
                    parsed = json.loads(body)
                except ValueError:  # malformed JSON: the route's own validation answers 422
                    parsed = None
                if not _json_storable(parsed):
                    where = "the JSON body"
                receive = _replay(body, receive)
        if where is not None:
            await self._refuse(
                scope, send, 400, ApiErrorCode.invalid_text,
                f"The request has a NUL character or a lone surrogate in {where}.",
            )
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, code: ApiErrorCode, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = JSONResponse(error_body(Request(scope), code, message), status_code=status)
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _replay(body: bytes, receive: Receive) -> Receive:
    """The already-read body once, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
