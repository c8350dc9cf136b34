"""Live checks: does a process of the lab answer a real request of its kind right now?

One check per role — SQL ``SELECT 1`` for PostgreSQL, ``PING`` for Redis, JetStream with a
known meta leader for NATS, ``GET /version`` for the fault proxy, ``GET /healthz`` for our
services — each bounded by a short timeout, so a paused process reads as unhealthy
rather than hanging the caller.
"""
from __future__ import annotations

import concurrent.futures
import socket
import urllib.request

from lab.servers import nats, postgres
from lab.servers.base import process_matches
from lab.state import LabState, ProcessRecord

TIMEOUT_SECONDS = 1.0
HOST = "127.0.0.1"


def http_ok(url: str, timeout: float = TIMEOUT_SECONDS) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def answers(record: ProcessRecord, timeout: float = TIMEOUT_SECONDS) -> bool:
    """True when the process answers the real request of its role."""
    port = record.ports.get("main")
    if port is None:
        return False
    try:
        if record.role == "postgres":
            return postgres.ready(port, timeout=timeout)
        if record.role == "redis":
            return redis_ping(port, timeout)
        if record.role == "nats":
            return nats_ready(record.ports["monitor"], timeout)
        if record.role == "proxy":
            return http_ok(f"http://127.0.0.1:{port}/version", timeout)
        return http_ok(f"http://127.0.0.1:{port}/healthz", timeout)
    except Exception:  # noqa: BLE001 - any failure to answer is "not healthy"
        return False


def redis_ping(port: int, timeout: float = TIMEOUT_SECONDS) -> bool:
    """PING over a raw socket: redis-py retries a timed-out command, which would take seconds."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def nats_ready(monitor_port: int, timeout: float = TIMEOUT_SECONDS) -> bool:
    """JetStream on, and, in a cluster, a known meta leader (a lone node is its own)."""
    jsz = nats.monitor(monitor_port, "/jsz", timeout=timeout)
    if jsz.get("disabled", False):
        return False
    meta = jsz.get("meta_cluster")
    if not meta:
        return nats.alive(monitor_port)
    return bool(meta.get("leader"))


def alive(record: ProcessRecord) -> bool:
    """True when the recorded pid still runs and is the process we started."""
    return record.pid is not None and process_matches(record.pid, record.create_time) is not None


def check(record: ProcessRecord) -> bool:
    """Healthy: alive, not paused, and answering."""
    return record.status not in ("paused", "stopped") and alive(record) and answers(record)


def check_all(state: LabState) -> dict[str, bool]:
    """Every process's health, checked in parallel."""
    records = list(state.processes.values())
    if not records:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(records))) as pool:
        return dict(zip((r.name for r in records), pool.map(check, records)))
