"""The live side of analytics on real servers: the error-rate alert fires and resolves (log,
metric, events file, page data), the dashboard WebSocket pushes changing snapshots, the
query API refuses bad input clearly, and the batch layer agrees with the speed layer."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
import websockets

from analytics_helpers import publish, wait_for

pytestmark = [pytest.mark.infra, pytest.mark.slow]


class Publisher:
    """Publishes a steady trickle of events in a thread until stopped (``failed_every``:
    one send_failed event for every N messages)."""

    def __init__(self, nats_url: str, failed_every: int | None, prefix: str) -> None:
        self.nats_url, self.failed_every, self.prefix = nats_url, failed_every, prefix
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            fails = 10 // self.failed_every if self.failed_every else 0
            await publish(self.nats_url, 10, failed=fails, delivered=10, prefix=f"{self.prefix}{n}-",
                          latency_ms=20 + n % 50)
            n += 1
            await asyncio.sleep(0.1)   # pacing the trickle, not synchronisation

    def __enter__(self) -> "Publisher":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def test_error_rate_alert_fires_and_resolves(env):
    svc = env.service(alert_window_seconds=3, alert_min_events=10)
    with Publisher(env.nats, failed_every=2, prefix="bad"):       # 50 % failures
        wait_for(lambda: svc.get("/api/alerts").json()["alerts"][0]["firing"], "alert firing", timeout=20)
        assert "analytics_alert_firing{alert=\"error_rate\"} 1.0" in svc.get("/metrics").text
        assert svc.get("/api/snapshot").json()["alerts"][0]["firing"]
    with Publisher(env.nats, failed_every=None, prefix="good"):   # no failures: the rate falls
        wait_for(lambda: not svc.get("/api/alerts").json()["alerts"][0]["firing"], "alert resolved", timeout=20)
    lines = [json.loads(l) for l in svc.events_file.read_text().splitlines()]
    states = [e["state"] for e in lines if e["kind"] == "alert"]
    assert states[:2] == ["firing", "resolved"]
    assert "analytics_alert_firing{alert=\"error_rate\"} 0.0" in svc.get("/metrics").text


def test_dashboard_websocket_pushes_changing_snapshots(env):
    svc = env.service()

    async def watch() -> list[dict]:
        snaps = []
        async with websockets.connect(f"ws://127.0.0.1:{svc.port}/ws/dashboard") as ws:
            while len(snaps) < 4:
                snaps.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        return snaps

    with Publisher(env.nats, failed_every=None, prefix="ws"):
        snaps = asyncio.run(watch())
    assert {"active_conversations", "messages_per_second", "error_rate", "p99_latency_ms"} <= set(snaps[-1])
    totals = [s["totals"]["messages"] for s in snaps]
    assert totals == sorted(totals) and totals[-1] > totals[0]
    assert snaps[-1]["active_conversations"] > 0 and snaps[-1]["p99_latency_ms"] is not None
    assert all(b["ts"] - a["ts"] < 2.5 for a, b in zip(snaps, snaps[1:]))   # about once a second


def test_query_api_bad_input_and_batch_merge(env):
    svc = env.service(batch_horizon_seconds=0)
    past = time.time() - 600
    asyncio.run(publish(env.nats, 300, failed=30, delivered=300, ts=past, spread_seconds=100, latency_ms=150))
    start, end = past - 1, past + 110
    wait_for(lambda: svc.total("messages", start, end) == 300, "speed layer counted")
    series = svc.get("/metrics/query", metric="messages", **{"from": start, "to": end, "step": 10}).json()
    speed_points = series["points"]
    assert len(speed_points) == 12 and sum(p["value"] for p in speed_points) == 300
    assert httpx.post(svc.url + "/api/batch", timeout=30).json()["watermark"] > end
    merged = svc.get("/metrics/query", metric="messages", **{"from": start, "to": end, "step": 10}).json()["points"]
    assert merged == speed_points   # now served by the batch layer: the same numbers
    assert svc.total("failed", start, end) == 30
    p99 = svc.get("/metrics/query", metric="latency_p99", **{"from": start, "to": end, "step": 200}).json()
    assert 100 < p99["points"][0]["value"] <= 200
    for params, word in [({"metric": "nope"}, "unknown metric"), ({"metric": "messages.mars"}, "unknown region"),
                         ({"metric": "messages", "from": 10, "to": 5}, "must be after"),
                         ({"metric": "messages", "step": 0}, "at least 1"),
                         ({"metric": "messages", "from": 0, "to": 1e9}, "points"),
                         ({"metric": "messages", "step": "x"}, "step")]:
        r = svc.get("/metrics/query", **params)
        assert r.status_code == 422 and word in r.json()["error"], (params, r.text)
    assert svc.get("/metrics/query").status_code == 422
    assert svc.get("/healthz").status_code == 200 and svc.get("/readyz").json()["status"] == "ready"
