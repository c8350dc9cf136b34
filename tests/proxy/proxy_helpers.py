"""Helpers of the fault proxy tests: server processes, upstream TCP servers, socket reads."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import httpx

START_DEADLINE_SECONDS = 15.0
LISTENING = re.compile(r"API listening on (http://\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A proxy server subprocess; stopped with SIGTERM (then SIGKILL) in ``stop``."""

    def __init__(self, argv: list[str], log_path: Path, url: str | None = None) -> None:
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "LOG_LEVEL": "info"})
        self.url = url or self._wait_for_url()
        self._wait_healthy()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"proxy server did not start: {self.log_path.read_text(errors='replace')}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/version", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"proxy server at {self.url} never answered")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


def start_ours(tmp: Path, *extra: str) -> ServerProcess:
    argv = [sys.executable, "-m", "chaos.proxy", "serve", "--port", "0", "--seed", "7", *extra]
    return ServerProcess(argv, tmp / "nineslab-proxy.log")


def start_real(tmp: Path, binary: str) -> ServerProcess:
    port = free_port()
    return ServerProcess([binary, "-host", "127.0.0.1", "-port", str(port)], tmp / "toxiproxy.log",
                         url=f"http://127.0.0.1:{port}")




class Upstream:
    """A TCP server on 127.0.0.1:0 running ``handler(conn)`` in a thread per connection."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass


def echo(conn: socket.socket) -> None:
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def sink(conn: socket.socket) -> None:
    """Reads until EOF and discards."""
    while conn.recv(65536):
        pass


def create_proxy(api: httpx.Client, name: str, upstream: str, listen: str = "127.0.0.1:0") -> tuple[str, int]:
    reply = api.post("/proxies", json={"name": name, "upstream": upstream, "listen": listen})
    assert reply.status_code == 201, reply.text
    host, port = reply.json()["listen"].rsplit(":", 1)
    return host, int(port)


def connect(address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def recv_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk
