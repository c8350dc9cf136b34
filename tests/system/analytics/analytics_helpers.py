"""Helpers of the analytics tests: the service as a process, and chat-shaped events
published straight into JetStream (as the chat servers do, contracts §6)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lab.servers.base import free_port
from waiting import wait_for  # noqa: F401 - re-exported for the tests

REGIONS = ["us-east", "eu-west", "ap-south"]


class Service:
    def __init__(self, tmp: Path, name: str, pg_dsn: str, nats_urls: list[str], settings: dict | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.events_file = tmp / f"{name}.events.jsonl"
        config = {"name": name, "role": "analytics", "region": None, "host": "127.0.0.1", "port": self.port,
                  "regions": REGIONS, "log_file": str(tmp / f"{name}.log"),
                  "deps": {"postgres": pg_dsn, "nats": nats_urls},
                  "settings": {"ack_wait_seconds": 2, **(settings or {})}, "events_file": str(self.events_file)}
        self.config_path = tmp / f"{name}.json"
        self.config_path.write_text(json.dumps(config))
        self.out = tmp / f"{name}.out"
        self.popen: subprocess.Popen | None = None

    def start(self, ready: bool = True) -> "Service":
        with open(self.out, "ab") as fh:
            self.popen = subprocess.Popen([sys.executable, "-m", "system.analytics", "--config", str(self.config_path)],
                                          stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                          env=dict(os.environ))
        if ready:
            try:
                wait_for(lambda: self.popen.poll() is None
                         and httpx.get(self.url + "/readyz", timeout=1).status_code == 200, "analytics ready")
            except AssertionError:
                self.stop()
                raise AssertionError(f"analytics did not become ready: {self.out.read_text()[-3000:]}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode if self.popen else None

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10)

    def total(self, metric: str, start: float, end: float) -> float:
        r = self.get("/metrics/query", metric=metric, **{"from": start, "to": end, "step": max(1, int(end - start))})
        r.raise_for_status()
        return sum(p["value"] or 0 for p in r.json()["points"])


async def publish(nats_url: str, messages: int, *, failed: int = 0, delivered: int = 0, ts: float | None = None,
                  prefix: str = "m", conversations: int = 50, latency_ms: float = 40.0,
                  spread_seconds: float = 0.0) -> None:
    """Publish chat messages, delivered events and send_failed events, acked by JetStream."""
    import nats
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(timeout=10)
        base = ts if ts is not None else time.time()
        futures = []

        async def one(subject: str, body: dict, msg_id: str) -> None:
            await js.publish(subject, json.dumps(body).encode(), headers={"Nats-Msg-Id": msg_id})

        for i in range(messages):
            region = REGIONS[i % 3]
            t = base + (spread_seconds * i / max(1, messages)) if ts is not None else time.time()
            body = {"id": f"{prefix}{i}", "conv": f"c{i % conversations}", "seq": i, "from": "a", "to": "b",
                    "from_region": "us-east", "to_region": region, "body": "hi", "sent_ts": t, "ts": t}
            futures.append(one(f"chat.{region}", body, f"{prefix}{i}"))
            if len(futures) >= 500:
                await asyncio.gather(*futures)
                futures = []
        for i in range(delivered):
            t = base if ts is not None else time.time()
            futures.append(one(f"events.delivered.{REGIONS[i % 3]}",
                               {"id": f"{prefix}{i}", "type": "delivered", "region": REGIONS[i % 3], "ts": t,
                                "latency_ms": latency_ms}, f"d-{prefix}{i}"))
        for i in range(failed):
            t = base if ts is not None else time.time()
            futures.append(one(f"events.send_failed.{REGIONS[i % 3]}",
                               {"id": f"{prefix}f{i}", "type": "send_failed", "region": REGIONS[i % 3], "ts": t},
                               f"f-{prefix}{i}"))
            if len(futures) >= 500:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
    finally:
        await nc.close()
