"""A proxied connection: the client socket, the upstream socket and the two links between.

:class:`Side` drives one non-blocking socket straight from the event loop's reader and
writer callbacks. While the link reading it has no toxic (the fast path), Linux
``splice(2)`` is available and the traffic is a bulk stream (a read of 64 KiB or more),
bytes move socket → pipe → socket inside the kernel and never enter Python; otherwise
they are read into ``bytes`` and handed to the link.
Writes go out at once when the socket takes them, and the rest waits in a queue
(bytes still in the splice pipe always leave first, so order is kept across a switch
between the two paths). A queue above ``WRITE_HIGH`` pauses the source of the link
writing here until it falls under ``WRITE_LOW``.

A connection ends as a whole: when one link has closed its destination, the other link
sees end of stream, drains, and closes its own (Toxiproxy has no half-close).
``abort()`` ("down", delete, shutdown) closes both sockets at once; ``reset()``
(reset_peer) makes every later close an RST.
"""
from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import random
import socket
import struct
from typing import Callable

from chaos.proxy.link import Link

log = logging.getLogger("chaos.proxy")

_LINGER_ZERO = struct.pack("ii", 1, 0)
READ_SIZE = 256 * 1024
WRITE_HIGH = 1 << 20   # queued bytes that pause the source
WRITE_LOW = 256 * 1024  # ... and that resume it
PIPE_SIZE = 1 << 20  # the usual pipe-max-size; fewer, larger splices (falls back to 64 KiB)
SPLICE_THRESHOLD = 64 * 1024  # a read this large marks a bulk stream; small messages skip the pipe
_F_SETPIPE_SZ = 1031
SPLICE = hasattr(os, "splice") and hasattr(os, "SPLICE_F_NONBLOCK")
_SPLICE_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if SPLICE else 0
_GONE = (ConnectionError, BrokenPipeError)


class Side:
    """One socket of a proxied connection, read and written from loop callbacks."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = loop
        self.reader: Link | None = None   # the link that reads from this socket
        self.writer: Link | None = None   # the link that writes to this socket
        self.lost = False                 # the socket is closed (by us or by an error)
        self.closing = False              # close once the queue is flushed
        self._eof = False
        self._reading = False
        self._writing = False
        self._paused: set[str] = set()
        self._out: collections.deque[memoryview] = collections.deque()
        self._out_size = 0
        self._pipe: tuple[int, int] | None = None
        self._pipe_pending = 0
        self._write_paused = False
        self._bulk = False  # splice once reads show a bulk stream
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    # -- reading ----------------------------------------------------------------

    def start_reading(self) -> None:
        self._update_reading()

    def set_paused(self, reason: str, paused: bool) -> None:
        if paused:
            self._paused.add(reason)
        else:
            self._paused.discard(reason)
        self._update_reading()

    def _update_reading(self) -> None:
        want = not (self._paused or self._eof or self.lost or self.reader is None)
        if want and not self._reading:
            self.loop.add_reader(self.fd, self._on_readable)
            self._reading = True
        elif not want and self._reading:
            self.loop.remove_reader(self.fd)
            self._reading = False

    def _on_readable(self) -> None:
        link = self.reader
        if self._bulk and link.fast:
            dest = link.dest
            if dest._splice_ready():
                self._splice_to(link, dest)
                return
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if not data:
            self._at_eof()
            return
        if len(data) >= SPLICE_THRESHOLD and SPLICE:
            self._bulk = True  # a stream, not requests: worth a pipe to splice through
        link.feed(data)

    def _splice_to(self, link: Link, dest: "Side") -> None:
        try:
            n = os.splice(self.fd, dest._pipe[1], PIPE_SIZE, flags=_SPLICE_FLAGS)  # type: ignore[index]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if n == 0:
            self._at_eof()
            return
        link.received += n
        link.sent += n
        dest._pipe_pending += n
        dest._flush()

    def _at_eof(self) -> None:
        self._eof = True
        self._update_reading()
        if self.reader is not None:
            self.reader.feed_eof()

    # -- writing ----------------------------------------------------------------

    def write(self, data: bytes | memoryview) -> None:
        if self.lost or self.closing:
            return
        if not self._out and not self._pipe_pending:
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._fail(exc)
                return
            if n == len(data):
                return
            data = memoryview(data)[n:]
        self._out.append(memoryview(data))
        self._out_size += len(data)
        self._want_writable()
        if self._out_size > WRITE_HIGH and not self._write_paused:
            self._write_paused = True
            if self.writer is not None:
                self.writer.dest_paused_changed(True)

    def _splice_ready(self) -> bool:
        """True when bytes may be spliced here: nothing queued, a pipe at hand."""
        if self._out or self._pipe_pending or self.lost or self.closing:
            return False
        if self._pipe is None:
            try:
                self._pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                return False
            try:
                import fcntl
                fcntl.fcntl(self._pipe[1], _F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass
        return True

    def _want_writable(self) -> None:
        if not self._writing and not self.lost:
            self.loop.add_writer(self.fd, self._flush)
            self._writing = True

    def _flush(self) -> None:
        """Send what waits: the splice pipe first, then the queue."""
        try:
            while self._pipe_pending:
                n = os.splice(self._pipe[0], self.fd, self._pipe_pending,  # type: ignore[index]
                              flags=_SPLICE_FLAGS)
                self._pipe_pending -= n
            while self._out:
                head = self._out[0]
                n = self.sock.send(head)
                self._out_size -= n
                if n < len(head):
                    self._out[0] = head[n:]
                    break
                self._out.popleft()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fail(exc)
            return
        if self._pipe_pending or self._out:
            self._want_writable()
            if self._pipe_pending and self.writer is not None and self.writer.fast:
                self.writer.source.set_paused("dest", True)
            return
        if self._writing:
            self.loop.remove_writer(self.fd)
            self._writing = False
        if self.writer is not None and self.writer.fast:
            self.writer.source.set_paused("dest", False)
        if self._write_paused and self._out_size <= WRITE_LOW:
            self._write_paused = False
            if self.writer is not None:
                self.writer.dest_paused_changed(False)
        if self.closing:
            self._close_now()

    # -- closing ----------------------------------------------------------------

    def close(self) -> None:
        """Full close after the queued bytes are sent (an RST if linger was zeroed)."""
        if self.closing or self.lost:
            return
        self.closing = True
        if not self._out and not self._pipe_pending:
            self._close_now()

    def abort(self) -> None:
        """Close now, dropping whatever is queued."""
        self.closing = True
        self._close_now()

    def _close_now(self) -> None:
        if self.lost:
            return
        self.lost = True
        if self._reading:
            self.loop.remove_reader(self.fd)
            self._reading = False
        if self._writing:
            self.loop.remove_writer(self.fd)
            self._writing = False
        self._out.clear()
        self._out_size = 0
        self._pipe_pending = 0
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
        self.sock.close()

    def _fail(self, exc: OSError) -> None:
        """The peer went away (reset, broken pipe): treat as end of stream on both links."""
        if not isinstance(exc, _GONE) and exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT):
            log.warning("socket error: %s", exc)
        self._close_now()
        if self.writer is not None:
            self.writer.dest_paused_changed(False)
        if self.reader is not None:
            self.reader.feed_eof()

    def linger_zero(self) -> None:
        if self.lost:
            return
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
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

    def links(self) -> tuple[Link, Link]:
        return self.upstream, self.downstream

    def start_reading(self) -> None:
        self.client.start_reading()
        self.server.start_reading()

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
