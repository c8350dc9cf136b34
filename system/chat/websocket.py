"""The chat WebSocket transport: picows frames behind uvicorn's HTTP server.

uvicorn serves every HTTP request of the chat server (REST, health, metrics) through Starlette
and hands a WebSocket upgrade to the protocol class its ``ws`` setting names.
``upgrade_protocol(service)`` is that class: it replays the upgrade request into a picows
protocol, whose handshake, parser and framer are compiled, and the chat service is called once
a frame (``ChatService.receive``) and writes straight to the socket (``Connection.push``):
no ASGI event dict, queue or task a frame. The wire stays the same: the same port and path,
the token in the ``Authorization`` header or ``?token=``, HTTP 401 with ``{"error"}`` at the
handshake, close codes 1008 (flood), 1009 (frame over the transport limit), 1012 (server
shutting down), 1013 (a client that does not read).
"""
from __future__ import annotations

import asyncio
import collections
import logging
from urllib.parse import parse_qs

import orjson
from picows import WSCloseCode, WSListener, WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener
from picows import WSAutoPingStrategy
from picows.picows import WSProtocol

from system.chat import protocol
from system.common.auth import AuthError, bearer_from_header, verify_token
from system.common.regions import UnknownUser, check_user

log = logging.getLogger("nineslab.chat.websocket")

WS_PATH = b"/ws"
HANDSHAKE_TIMEOUT = 5.0
READ_BUFFER = 2048            # picows grows it for larger frames; small keeps an idle connection cheap
OUT_LIMIT = 10_000            # frames queued for a client whose socket stopped taking them
CLOSE_TIMEOUT = 2.0           # after our close frame, how long the client has to answer with its own


class Connection:
    """One client WebSocket: its user, rate limit, receipts and frames waiting their turn.

    ``push`` writes to the socket at once; only while the socket's write buffer is full
    (``pause``) are frames queued, and a client that stops reading is closed with 1013 (it
    resumes elsewhere). ``backlog`` holds client frames while an earlier one of the same
    connection is still being handled asynchronously (the attach, a resume), so they are
    handled in the order they were sent.
    """

    __slots__ = ("transport", "user", "bucket", "out", "inflight", "closed", "held", "hold_timer", "backlog",
                 "busy")

    def __init__(self, transport, user: str, bucket) -> None:
        self.transport, self.user, self.bucket = transport, user, bucket
        self.out: collections.deque[str] | None = None          # only while the socket is paused
        self.inflight: dict[str, float | None] | None = None     # pushed id -> sent_ts, for receipts
        self.closed = False
        # live messages that arrive before the client's resume is answered: held back so the
        # replay of older stored messages never comes after a newer live one
        self.held: list[tuple[str, object, str]] | None = None
        self.hold_timer: asyncio.TimerHandle | None = None
        self.backlog: list[bytes] | None = []   # until attached: frames wait for the hello
        self.busy: asyncio.Future | None = None  # the task handling the frame the backlog waits for

    def push(self, frame: str | bytes) -> None:
        if self.closed:
            return
        if self.out is None:
            self.transport.send(WSMsgType.TEXT, frame)
            return
        self.out.append(frame)
        if len(self.out) > OUT_LIMIT:      # a client that does not read: drop it, it will resume
            self.out.clear()
            self.close(protocol.CLOSE_TRY_AGAIN, "not reading")

    def pause(self) -> None:
        if self.out is None:
            self.out = collections.deque()

    def resume(self) -> None:
        waiting, self.out = self.out, None
        while waiting and self.out is None and not self.closed:
            self.transport.send(WSMsgType.TEXT, waiting.popleft())
        if waiting and self.out is not None:   # paused again: the rest stays first in line
            self.out = waiting

    def close(self, code: int, reason: str = "") -> None:
        """Send what is queued (the error frames that explain the close) and the close frame; hang
        up when the client answers with its close frame (``ChatSocket``), or ``CLOSE_TIMEOUT`` later.
        Hanging up at once would reset a client still sending, before it read why."""
        if self.closed:
            return
        waiting, self.out = self.out or (), None
        for frame in waiting:
            self.transport.send(WSMsgType.TEXT, frame)
        self.closed = True
        self.transport.send_close(WSCloseCode(code), reason.encode()[:120])
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.transport.disconnect)


class ChatSocket(WSListener):
    """What picows calls for one accepted WebSocket."""

    def __init__(self, service, user: str) -> None:
        super().__init__()
        self.service, self.user = service, user
        self.conn: Connection | None = None
        self.fragments: list[bytes] | None = None

    def on_ws_connected(self, transport) -> None:
        self.conn = self.service.open_connection(transport, self.user)

    def on_ws_frame(self, transport, frame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            data = frame.get_payload_as_bytes()
            if frame.fin:
                self.service.receive(self.conn, data)
            else:
                self.fragments = [data]
        elif kind is WSMsgType.CONTINUATION and self.fragments is not None:
            self.fragments.append(frame.get_payload_as_bytes())
            if sum(map(len, self.fragments)) > self.service.max_frame_bytes:
                self.fragments = None
                self.conn.close(protocol.CLOSE_TOO_BIG, "message too big")
            elif frame.fin:
                data, self.fragments = b"".join(self.fragments), None
                self.service.receive(self.conn, data)
        elif kind is WSMsgType.CLOSE:
            if not self.conn.closed:         # the client closes: answer; else it answers our close
                self.conn.closed = True
                transport.send_close(frame.get_close_code())
            transport.disconnect()
        # PING is answered by picows itself; PONG needs nothing

    def on_ws_disconnected(self, transport) -> None:
        if self.conn is not None:
            self.service.close_connection(self.conn)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.pause()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.resume()


def token_of(request) -> str | None:
    """The bearer token of an upgrade request: the ``Authorization`` header, else ``?token=``."""
    token = bearer_from_header(request.headers.get("authorization"))
    if token:
        return token
    query = request.path.partition(b"?")[2]
    values = parse_qs(query.decode("latin-1")).get("token") if query else None
    return values[0] if values else None


def listener_for(service, request):
    """A ``ChatSocket`` for an authenticated upgrade to /ws; a 401 (or 404) response otherwise."""
    if request.path.partition(b"?")[0] != WS_PATH:
        return None
    try:
        user = check_user(verify_token(service.secret, token_of(request)))
    except (AuthError, UnknownUser) as exc:
        body = orjson.dumps({"error": str(exc)})
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
            401, body, {"Content-Type": "application/json"}), None)
    return ChatSocket(service, user)


def upgrade_protocol(service) -> type:
    """The protocol class for uvicorn's ``ws`` setting: picows serves the upgraded connection."""
    picows_log = logging.getLogger("nineslab.chat.picows")
    max_frame = service.max_frame_bytes

    class ChatUpgrade(asyncio.BufferedProtocol):
        """uvicorn makes it, gives it the socket and the upgrade request, then makes it the socket's
        protocol; every call goes on to the picows protocol. Listed in uvicorn's connections, so a
        graceful shutdown closes it with 1012."""

        def __init__(self, config, server_state, app_state) -> None:
            self.connections = server_state.connections
            self.ws = WSProtocol(None, None, False, lambda request: listener_for(service, request), picows_log,
                                 True, HANDSHAKE_TIMEOUT, False, 20.0, 20.0, WSAutoPingStrategy.PING_WHEN_IDLE,
                                 True, max_frame, None, READ_BUFFER)

        def connection_made(self, transport) -> None:
            self.connections.add(self)
            self.ws.connection_made(transport)

        def data_received(self, data: bytes) -> None:      # the upgrade request, replayed by uvicorn
            view = memoryview(data)
            while view:
                buf = self.ws.get_buffer(len(view))
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                self.ws.buffer_updated(n)
                view = view[n:]

        def get_buffer(self, size_hint: int):
            return self.ws.get_buffer(size_hint)

        def buffer_updated(self, nbytes: int) -> None:
            self.ws.buffer_updated(nbytes)

        def eof_received(self):
            return self.ws.eof_received()

        def pause_writing(self) -> None:
            self.ws.pause_writing()

        def resume_writing(self) -> None:
            self.ws.resume_writing()

        def connection_lost(self, exc) -> None:
            self.connections.discard(self)
            self.ws.connection_lost(exc)

        def shutdown(self) -> None:
            listener = self.ws.listener
            if isinstance(listener, ChatSocket) and listener.conn is not None:
                listener.conn.close(WSCloseCode.SERVICE_RESTART, "server shutting down")
            elif self.ws.transport is not None:
                self.ws.transport.disconnect()

    return ChatUpgrade
