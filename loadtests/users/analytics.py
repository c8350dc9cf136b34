"""Analytics users: ``GET /metrics/query`` queries, and the dashboard WebSocket.

``AnalyticsQueryUser``: each operation queries one metric over the last minute
(``analytics.query``). ``DashboardUser``: holds ``/ws/dashboard`` open and turns every
pushed snapshot (not the cached one sent on connect) into an ``analytics.dashboard`` sample whose latency is the snapshot's
age on arrival (now − its ``ts``); a gap longer than three push intervals is a failed
sample ("stale dashboard"), which is how a user notices a stuck speed layer. Its
operation in the open model is a cheap ``GET /api/snapshot``.
"""
from __future__ import annotations

import json
import time
from typing import Any

import gevent
import websocket
from locust import between
from locust.contrib.fasthttp import FastHttpUser

from loadtests.harness import lab
from loadtests.users.base import NinesUser

METRICS = ("messages_per_second", "messages", "error_rate", "latency_p99", "delivered")
STALE_AFTER = 3.0        # seconds without a snapshot (the service pushes one a second)


class _AnalyticsHttp(NinesUser, FastHttpUser):
    abstract = True
    network_timeout = 10.0
    connection_timeout = 10.0

    def __init__(self, environment: Any) -> None:
        if not self.host and not environment.host:
            self.host = lab(environment).analytics
        super().__init__(environment)


class AnalyticsQueryUser(_AnalyticsHttp):
    operation = "analytics.query"
    think_time = between(0.5, 2.0)
    weight = 2

    def perform(self, intended_ts: float | None) -> None:
        metric = self.gen.rng.choice(METRICS)
        now = time.time()
        with self.client.get("/metrics/query", params={"metric": metric, "from": f"{now - 60:.0f}", "step": "1"},
                             name="analytics.query", catch_response=True,
                             context=self.context_for(intended_ts)) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:120]}")
            elif "points" not in (resp.json() or {}):
                resp.failure("the answer has no points")


class DashboardUser(_AnalyticsHttp):
    operation = "analytics.snapshot"
    think_time = between(1.0, 2.0)
    weight = 1

    def on_start(self) -> None:
        self.watcher = gevent.spawn(self._watch)

    def on_stop(self) -> None:
        self.watcher.kill(block=False)

    def perform(self, intended_ts: float | None) -> None:
        self.client.get("/api/snapshot", name="analytics.snapshot", context=self.context_for(intended_ts))

    def _watch(self) -> None:
        url = self.host.replace("http://", "ws://", 1).rstrip("/") + "/ws/dashboard"
        while True:
            start = time.time()
            try:
                ws = websocket.create_connection(url, timeout=self.gen.timeout)
            except Exception as exc:  # noqa: BLE001 - a failed connect is a sample; retry in a second
                self.fire("analytics.dashboard", start, exc)
                gevent.sleep(1.0)
                continue
            ws.settimeout(STALE_AFTER)
            last = time.time()
            first = True         # the snapshot sent on connect is the cached latest: not a push
            try:
                while True:
                    try:
                        snap = json.loads(ws.recv() or "{}")
                    except websocket.WebSocketTimeoutException:
                        now = time.time()
                        self.fire("analytics.dashboard", last, RuntimeError(
                            f"stale dashboard: no snapshot for {now - last:.1f} s"), end_ts=now)
                        last = now
                        continue
                    now = time.time()
                    ts = snap.get("ts")
                    born = float(ts) if isinstance(ts, (int, float)) and ts <= now else now
                    if not first:
                        self.fire("analytics.dashboard", born, None, end_ts=now)
                    first = False
                    last = now
            except Exception as exc:  # noqa: BLE001 - the socket broke: report, reconnect
                self.fire("analytics.dashboard", last, exc)
            finally:
                try:
                    ws.close(timeout=0.2)
                except Exception:  # noqa: BLE001
                    pass
