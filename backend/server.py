"""uvicorn's HTTP protocol with the two deadlines it lacks, for an API reached without nginx.

uvicorn times out only idle keep-alive connections: a client that opens a connection and trickles
its headers, or stops sending a body half way, holds the connection (and, for a body, the upload's
temporary file and a request task) for as long as it likes; one such client was held 60 s and
would have been held forever. nginx has `client_header_timeout` / `client_body_timeout`; this is
the same for the server itself, selected with `uvicorn ... --http backend.server:DeadlineHttpProtocol`
(every documented start does):

- HEADER_TIMEOUT_SECONDS from a request's first byte (or the connection's opening) to the end of
  its headers, however the bytes trickle in;
- BODY_TIMEOUT_SECONDS without a single body byte while a body is expected. The clock stops while
  uvicorn itself has paused reading because the app is behind (flow control), so a slow disk
  never cuts off a fast client.

A timed-out request in its headers gets `408` and the connection is closed; one in its body has
the connection closed, which the upload sees as a disconnect (its partial file is removed).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from core.settings import get_settings

logger = logging.getLogger(__name__)

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class DeadlineHttpProtocol(HttpToolsProtocol):
    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.header_timeout = settings.HEADER_TIMEOUT_SECONDS
        self.body_timeout = settings.BODY_TIMEOUT_SECONDS
        self.deadline: asyncio.TimerHandle | None = None
        self.in_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.in_body:
            self._arm(self.body_timeout)  # any body byte restarts the idle clock
        super().data_received(data)

    def handle_websocket_upgrade(self) -> None:
        self._cancel()  # the connection now belongs to the WebSocket protocol
        self.in_body = False
        super().handle_websocket_upgrade()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_body = False
        if self.deadline is None:  # a keep-alive connection's next request: its headers' clock starts now
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.in_body = True
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_body = False
        self._cancel()

    def _arm(self, seconds: float) -> None:
        self._cancel()
        self.deadline = self.loop.call_later(seconds, self._expired)

    def _cancel(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if self.in_body and self.flow.read_paused:  # the app is behind, not the client
            self._arm(self.body_timeout)
            return
        phase = "body" if self.in_body else "headers"
        logger.info("closing a connection whose request %s stalled", phase, extra={"client": self.client})
        if not self.in_body and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()
