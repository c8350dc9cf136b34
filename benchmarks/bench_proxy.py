"""Fault proxy benchmark: direct loopback against the same traffic through the proxy,
measured side by side in one run.

    python benchmarks/bench_proxy.py [--quick] [--server URL] [--json FILE]

Starts an upstream (a uvloop echo/source server in its own process) and our proxy
server (``python -m chaos.proxy serve``; or uses ``--server``), then measures:

* added round-trip latency per hop with no toxic: p50/p99 of 1-byte ping-pongs,
  through the proxy minus direct;
* throughput of one stream (upstream → client), direct, through the proxy with no
  toxic, and through the proxy with a latency toxic;
* connections per second (connect, 1-byte echo, close), direct and through the proxy;
* 1,000 concurrent connections each echoing a message, counting errors.

Targets (Toxiproxy's published figures): added p50 ≤ 100 µs per hop; throughput ≥ 50 %
of direct and ≥ 500 MB/s; 1,000 concurrent connections without an error.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BLOCK = memoryview(b"\xa5" * (1 << 20))


# -- upstream server (runs in its own process) ------------------------------------------

class UpstreamProtocol(asyncio.Protocol):
    """First line picks the mode: ``E`` echoes, ``S <n>`` sends n bytes then closes."""

    def connection_made(self, transport):
        self.transport = transport
        self.mode = None
        self.buffer = b""
        self.remaining = 0
        self.paused = False

    def data_received(self, data):
        if self.mode == "E":
            self.transport.write(data)
            return
        self.buffer += data
        if b"\n" not in self.buffer:
            return
        line, rest = self.buffer.split(b"\n", 1)
        self.buffer = b""
        if line.startswith(b"S"):
            self.mode = "S"
            self.remaining = int(line[1:])
            self._send()
        else:
            self.mode = "E"
            self.transport.write(b"\n")
            if rest:
                self.transport.write(rest)

    def _send(self):
        while self.remaining > 0 and not self.paused:
            size = min(self.remaining, len(BLOCK))
            self.transport.write(BLOCK[:size])
            self.remaining -= size
        if self.remaining <= 0:
            self.transport.close()

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        if self.mode == "S":
            self._send()


async def serve_upstream(port_file: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", 0, backlog=4096)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


# -- measurements ------------------------------------------------------------------------

def open_echo(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"E\n")
    assert sock.recv(1) == b"\n"
    return sock


def ping_pong(address: tuple[str, int], rounds: int) -> list[float]:
    sock = open_echo(address)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        sock.sendall(b"x")
        sock.recv(1)
        samples.append((time.perf_counter_ns() - start) / 1000)
    sock.close()
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stream_throughput(address: tuple[str, int], size: int) -> float:
    """MB/s of ``size`` bytes sent by the upstream to the client."""
    sock = socket.create_connection(address)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    start = time.perf_counter()
    sock.sendall(b"S%d\n" % size)
    received = 0
    while True:
        n = sock.recv_into(view)
        if not n:
            break
        received += n
    elapsed = time.perf_counter() - start
    sock.close()
    assert received == size, (received, size)
    return size / elapsed / 1e6


def connection_rate(address: tuple[str, int], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        sock = socket.create_connection(address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"E\nx")
        got = b""
        while len(got) < 2:
            chunk = sock.recv(2 - len(got))
            if not chunk:
                break
            got += chunk
        sock.close()
    return count / (time.perf_counter() - start)


async def concurrent_connections(address: tuple[str, int], count: int) -> tuple[int, float]:
    """Open ``count`` connections at once, echo on each, return (errors, seconds)."""
    errors = 0
    opened = []

    async def one(i: int):
        nonlocal errors
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 20)
            opened.append(writer)
            message = b"E\n%06d" % i
            writer.write(message)
            await writer.drain()
            reply = await asyncio.wait_for(reader.readexactly(7), 20)
            if reply != b"\n%06d" % i:
                errors += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - start
    for writer in opened:
        writer.close()
    return errors, elapsed


class ProcessCpu:
    """CPU seconds a process spends inside ``with`` blocks (immune to other load)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.total = 0.0

    def _now(self) -> float:
        if self.pid is None:
            return 0.0
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> "ProcessCpu":
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.total += self._now() - self._start

    def take(self) -> float:
        total, self.total = self.total, 0.0
        return total


# -- orchestration -----------------------------------------------------------------------

def start_process(argv: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=ROOT)


def wait_for(predicate, what: str, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not start")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 20 s)")
    parser.add_argument("--server", help="API URL of a running proxy server to measure instead of ours")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--serve-upstream", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        import uvloop
        uvloop.run(serve_upstream(args.serve_upstream))
        return 0

    rounds = 2000 if args.quick else 10000
    stream_size = (256 if args.quick else 512) << 20
    conn_count = 500 if args.quick else 2000
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-proxy-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    port_file = tmp / "upstream.port"
    upstream = start_process([sys.executable, __file__, "--serve-upstream", str(port_file)], tmp / "upstream.log")
    server = None
    try:
        up_port = int(wait_for(lambda: port_file.exists() and port_file.read_text(), "upstream"))
        direct = ("127.0.0.1", up_port)
        if args.server:
            url = args.server.rstrip("/")
        else:
            log = tmp / "proxy.log"
            server = start_process([sys.executable, "-m", "chaos.proxy", "serve", "--port", "0", "--seed", "1"], log)
            url = wait_for(lambda: (re.search(r"API listening on (http://\S+)", log.read_text()) or [None, None])[1],
                           "proxy server")
        api = httpx.Client(base_url=url, timeout=30)
        wait_for(lambda: api.get("/version").status_code == 200, "proxy API")
        api.delete("/proxies/bench")
        listen = api.post("/proxies", json={"name": "bench", "listen": "127.0.0.1:0",
                                            "upstream": f"127.0.0.1:{up_port}"}).json()["listen"]
        proxied = ("127.0.0.1", int(listen.rsplit(":", 1)[1]))
        results: dict[str, object] = {"rounds": rounds, "stream_bytes": stream_size, "server": url}

        print(f"fault proxy benchmark ({'quick' if args.quick else 'full'}), proxy API {url}, "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        cpu = ProcessCpu(server.pid if server is not None else None)
        ping_pong(direct, 200), ping_pong(proxied, 200)  # warm up both paths
        d_rtt, p_rtt = [], []
        for _ in range(5):  # interleave so both paths see the same machine load
            d_rtt += ping_pong(direct, rounds // 5)
            with cpu:
                p_rtt += ping_pong(proxied, rounds // 5)
        rtt_cpu_us = cpu.take() * 1e6 / rounds
        d50, d99, p50, p99 = (percentile(d_rtt, 0.5), percentile(d_rtt, 0.99),
                              percentile(p_rtt, 0.5), percentile(p_rtt, 0.99))
        results["rtt_us"] = {"direct_p50": d50, "direct_p99": d99, "proxy_p50": p50, "proxy_p99": p99,
                             "added_p50": p50 - d50, "added_p99": p99 - d99}
        results["rtt_us"]["proxy_cpu_per_round_trip"] = rtt_cpu_us
        print(f"round trip (µs)        direct p50 {d50:7.1f} p99 {d99:7.1f} | proxy p50 {p50:7.1f} p99 {p99:7.1f}"
              f" | added per hop p50 {p50 - d50:6.1f} p99 {p99 - d99:6.1f}  (target p50 ≤ 100)"
              + (f"; proxy CPU {rtt_cpu_us:.1f} µs per round trip" if cpu.pid else ""))

        direct_tp, proxy_tp = [], []
        for _ in range(5):  # interleaved: a shared machine's load hits both paths alike
            direct_tp.append(stream_throughput(direct, stream_size))
            with cpu:
                proxy_tp.append(stream_throughput(proxied, stream_size))
        gb_cpu_ms = cpu.take() * 1e3 / (5 * stream_size / 1e9)
        api.post("/proxies/bench/toxics", json={"type": "latency", "attributes": {"latency": 5}})
        latency_tp = [stream_throughput(proxied, stream_size) for _ in range(3)]
        api.delete("/proxies/bench/toxics/latency_downstream")
        d_tp, p_tp, l_tp = (statistics.median(direct_tp), statistics.median(proxy_tp),
                            statistics.median(latency_tp))
        results["throughput_MBps"] = {"direct": d_tp, "proxy": p_tp, "proxy_latency_5ms": l_tp,
                                      "ratio": p_tp / d_tp, "ratio_latency": l_tp / d_tp}
        results["throughput_MBps"]["proxy_cpu_ms_per_GB"] = gb_cpu_ms
        print(f"throughput (MB/s)      direct {d_tp:7.0f} | proxy {p_tp:7.0f} ({p_tp / d_tp:4.0%})"
              f" | proxy + latency 5 ms {l_tp:7.0f} ({l_tp / d_tp:4.0%})  (target ≥ 50 % and ≥ 500)"
              + (f"; proxy CPU {gb_cpu_ms:.0f} ms per GB" if cpu.pid else ""))

        d_cps = connection_rate(direct, conn_count)
        with cpu:
            p_cps = connection_rate(proxied, conn_count)
        conn_cpu_us = cpu.take() * 1e6 / conn_count
        results["connections_per_second"] = {"direct": d_cps, "proxy": p_cps, "ratio": p_cps / d_cps,
                                             "proxy_cpu_us_per_connection": conn_cpu_us}
        print(f"connections per second direct {d_cps:7.0f} | proxy {p_cps:7.0f} ({p_cps / d_cps:4.0%})"
              + (f"; proxy CPU {conn_cpu_us:.0f} µs per connection" if cpu.pid else ""))

        errors_direct, t_direct = asyncio.run(concurrent_connections(direct, 1000))
        errors_proxy, t_proxy = asyncio.run(concurrent_connections(proxied, 1000))
        results["concurrent_1000"] = {"direct_errors": errors_direct, "proxy_errors": errors_proxy,
                                      "direct_seconds": t_direct, "proxy_seconds": t_proxy}
        print(f"1,000 concurrent conns direct {errors_direct} errors in {t_direct:.2f} s"
              f" | proxy {errors_proxy} errors in {t_proxy:.2f} s  (target 0 errors)")
        api.delete("/proxies/bench")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0
    finally:
        if server is not None:
            stop_process(server)
        stop_process(upstream)


if __name__ == "__main__":
    sys.exit(main())
