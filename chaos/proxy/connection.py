"""A proxied connection: the client socket, the upstream socket and the two links between.

:class:`Side` is the asyncio protocol of one socket; it hands reads to the link that
reads from it and back-pressure signals to the link that writes to it. A connection
ends as a whole: when one link has closed its destination, the other link sees end of
stream, drains, and closes its own. ``abort()`` ("down", delete, shutdown) closes both
sockets at once; ``reset()`` (reset_peer) makes every later close an RST.
"""
from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from typing import Callable

from chaos.proxy.link import Link

log = logging.getLogger("chaos.proxy")

_LINGER_ZERO = struct.pack("ii", 1, 0)
WRITE_BUFFER_HIGH = 1 << 20  # pause the source only when this much is unsent: fewer pause/resume turns


class Side(asyncio.Protocol):
    """One socket of a proxied connection."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader: Link | None = None   # the link that reads from this socket
        self.writer: Link | None = None   # the link that writes to this socket
        self.lost = False
        self.closing = False
        self._paused: set[str] = set()
        self.early: list[bytes | None] = []  # read before the connection was wired
        self.on_lost: Callable[["Side"], None] | None = None
        self.on_made: Callable[["Side"], None] | None = None

    # asyncio protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)  # type: ignore[attr-defined]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        if reader is None:  # the client spoke before upstream answered: keep it for the link
            self.early.append(data)
            self.transport.pause_reading()  # type: ignore[union-attr]
            return
        reader.feed(data)

    def eof_received(self) -> bool:
        if self.reader is not None:
            self.reader.feed_eof()
        else:
            self.early.append(None)
        return True  # keep the socket: the connection decides when it closes

    def pause_writing(self) -> None:
        if self.writer is not None:
            self.writer.dest_paused_changed(True)

    def resume_writing(self) -> None:
        if self.writer is not None:
            self.writer.dest_paused_changed(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.writer is not None:
            self.writer.dest_paused_changed(False)
        if self.reader is not None:
            self.reader.feed_eof()
        if self.on_lost is not None:
            self.on_lost(self)

    # used by links
    def set_paused(self, reason: str, paused: bool) -> None:
        if self.transport is None or self.lost or self.closing:
            return
        before = bool(self._paused)
        if paused:
            self._paused.add(reason)
        else:
            self._paused.discard(reason)
        after = bool(self._paused)
        if after and not before:
            self.transport.pause_reading()
        elif before and not after:
            self.transport.resume_reading()

    def close(self) -> None:
        """Full close after the buffered bytes are sent (an RST if linger was zeroed)."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.transport.close()

    def abort(self) -> None:
        if self.transport is None:
            return
        self.closing = True
        self.transport.abort()

    def linger_zero(self) -> None:
        if self.transport is None or self.lost:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            except OSError:
                pass


class Connection:
    """Client and upstream sockets of one accepted connection, and their two links."""

    def __init__(self, client: Side, server: Side, *, rng: random.Random,
                 on_done: Callable[["Connection"], None]) -> None:
        self.client = client
        self.server = server
        self._on_done = on_done
        self.done = False
        self.upstream = Link("upstream", client, server, rng=rng,
                             on_finished=self._link_finished, on_reset=self.reset)
        self.downstream = Link("downstream", server, client, rng=rng,
                               on_finished=self._link_finished, on_reset=self.reset)
        client.reader, client.writer = self.upstream, self.downstream
        server.reader, server.writer = self.downstream, self.upstream

    def replay_early(self) -> None:
        """Hand the links what the sockets delivered before they existed."""
        for side in (self.client, self.server):
            early, side.early = side.early, []
            for data in early:
                if data is None:
                    side.reader.feed_eof()  # type: ignore[union-attr]
                else:
                    side.reader.feed(data)  # type: ignore[union-attr]

    def links(self) -> tuple[Link, Link]:
        return self.upstream, self.downstream

    def _link_finished(self, link: Link) -> None:
        other = self.downstream if link is self.upstream else self.upstream
        if not other.finished:
            other.feed_eof()  # the socket it reads from has just been closed
        if self.upstream.finished and self.downstream.finished:
            self._end()

    def reset(self) -> None:
        """Make both sockets close with an RST (reset_peer)."""
        self.client.linger_zero()
        self.server.linger_zero()

    def abort(self) -> None:
        """Close both sockets now, dropping what is buffered ("down", delete, shutdown)."""
        for link in self.links():
            link.cancel()
        self.client.abort()
        self.server.abort()
        self._end()

    def _end(self) -> None:
        if self.done:
            return
        self.done = True
        for link in self.links():
            link.cancel()
        self._on_done(self)
