"""A tiny, fast HTTP server on 127.0.0.1 that can be made to stall: the generator's test target.

Answers every request with ``200 ok``. ``--stall-after N --stall-seconds S``: after the
N-th request the whole server stops answering for S seconds (requests keep arriving and
are answered when the stall ends), the way a GC pause or a stuck event loop looks from
outside. Prints ``port=<P>`` once listening. asyncio with uvloop when available, so the
server is not the bottleneck of a generator benchmark.

    python -m loadtests.trivial_server --port 0 --stall-after 300 --stall-seconds 1
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _State:
    def __init__(self, stall_after: int, stall_seconds: float) -> None:
        self.count = 0
        self.stall_after = stall_after
        self.stall_seconds = stall_seconds
        self.stall_until = 0.0
        self.stall_started: float | None = None


class _Http(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:     # requests without bodies (GET) are all this serves
            _, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self._answer()

    def _answer(self) -> None:
        s = self.state
        s.count += 1
        now = time.monotonic()
        if s.stall_after and s.count == s.stall_after and s.stall_started is None:
            s.stall_started = now
            s.stall_until = now + s.stall_seconds
            print(f"stall start={time.time():.3f} seconds={s.stall_seconds}", flush=True)
        delay = s.stall_until - now
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._write)
        else:
            self._write()

    def _write(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)


async def serve(port: int, stall_after: int, stall_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    state = _State(stall_after, stall_seconds)
    server = await loop.create_server(lambda: _Http(state), "127.0.0.1", port, backlog=1024)
    print(f"port={server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stall-after", type=int, default=0)
    ap.add_argument("--stall-seconds", type=float, default=0.0)
    args = ap.parse_args(argv)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.stall_after, args.stall_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
