"""The HTTP shell of the analytics service: the query API over the serving layer, the live
dashboard (page + WebSocket), stats, health and Prometheus metrics; and the background
tasks (ingest loops, batch layer, one snapshot a second).

::

    GET /metrics/query?metric=&from=&to=&step=   a series from the merged batch + speed rollups
    GET /  (= /dashboard)                          the live dashboard page
    WS  /ws/dashboard                              one snapshot a second
    GET /api/snapshot  /api/stats  /api/alerts
    POST /api/batch                                run the batch layer now
    GET /healthz /readyz /metrics
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from importlib import resources
from typing import Annotated

import nats
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel

from system.analytics import serving
from system.analytics.config import AnalyticsConfig
from system.analytics.consumer import Inbox, Ingestor, IngestStats
from system.analytics.dashboard import Snapshotter
from system.common.events import EventLog
from system.analytics.store import AnalyticsStore
from system.analytics.streams import subscribe_consumers
from system.common.streams import ensure_streams

log = logging.getLogger("nineslab.analytics")


class ErrorBody(BaseModel):
    error: str


class Point(BaseModel):
    t: int
    value: float | None


class SeriesBody(BaseModel):
    metric: str
    start: int
    end: int
    step: int
    points: list[Point]


def make_metrics() -> tuple[CollectorRegistry, dict]:
    reg = CollectorRegistry()
    return reg, {
        "ingested": Counter("analytics_events_ingested", "Events counted (exactly once), by status", ["status"],
                            registry=reg),
        "duplicates": Counter("analytics_events_duplicate", "Redelivered events recognised and skipped",
                              registry=reg),
        "bad": Counter("analytics_events_bad", "Stream messages that were not chat events", registry=reg),
        "expired": Counter("analytics_events_expired", "Events older than the raw-event retention, not counted",
                           registry=reg),
        "pruned": Counter("analytics_rows_pruned", "Rows deleted by the retention, by table", ["table"],
                          registry=reg),
        "lag": Histogram("analytics_ingest_lag_seconds", "Event time to commit of its count", registry=reg,
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)),
        "pending": Gauge("analytics_consumer_pending", "Messages not yet fetched, by stream", ["stream"],
                         registry=reg),
        "alert": Gauge("analytics_alert_firing", "1 while the alert fires", ["alert"], registry=reg),
        "error_rate": Gauge("analytics_error_rate", "Error rate over the alert window", registry=reg),
        "mps": Gauge("analytics_messages_per_second", "Messages a second (dashboard window)", registry=reg),
        "batch_runs": Counter("analytics_batch_runs", "Batch layer recomputations", registry=reg),
        "watermark": Gauge("analytics_batch_watermark", "Seconds below this come from the batch layer",
                           registry=reg),
    }


class Runtime:
    """The service's moving parts, started and stopped by the app's lifespan."""

    def __init__(self, config: AnalyticsConfig) -> None:
        self.config = config
        self.registry, self.metrics = make_metrics()
        self.store = AnalyticsStore(config.deps.postgres,
                                    retention_seconds=config.settings.raw_retention_seconds)
        self.stats = IngestStats()
        self.events = EventLog(config.name, config.events_file)
        self.snapshotter = Snapshotter(self.store, config.settings, self.stats, events=self.events,
                                       metrics=self.metrics)
        self.nc = None
        self.consuming = False
        self.sockets: set[WebSocket] = set()
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._consume(), name="consume"),
                      asyncio.create_task(self._snapshots(), name="snapshots"),
                      asyncio.create_task(self._batches(), name="batch")]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)
        await self.store.close()
        self.events.close()

    async def _consume(self) -> None:
        s = self.config.settings
        delay = 0.2
        while True:   # connect, make the streams and consumers, then consume; retry on failure
            try:
                await self.store.pool()
                if self.nc is None or self.nc.is_closed:
                    self.nc = await nats.connect(self.config.deps.nats, name=self.config.name,
                                                 max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                                 connect_timeout=2)
                js = self.nc.jetstream(timeout=5)
                await ensure_streams(js, s.stream_replicas)
                inboxes = {"CHAT": Inbox(), "EVENTS": Inbox()}
                subs = await subscribe_consumers(js, s.ack_wait_seconds, s.max_ack_pending,
                                                 {name: inbox.put for name, inbox in inboxes.items()})
                ingestor = Ingestor(self.store, self.stats, fetch_batch=s.fetch_batch, metrics=self.metrics)
                self.consuming = True
                try:
                    await asyncio.gather(*(ingestor.run(name, inbox, w) for name, inbox in inboxes.items()
                                           for w in range(s.workers_per_stream)))
                finally:
                    for sub in subs.values():
                        with contextlib.suppress(Exception):
                            await sub.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying: NATS or PostgreSQL may come later
                self.consuming = False
                log.warning("consumer not running (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _snapshots(self) -> None:
        interval = self.config.settings.snapshot_interval_seconds
        while True:
            started = time.monotonic()
            try:
                snap = await self.snapshotter.tick()
                await self._broadcast(snap)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be down; try next second
                log.warning("snapshot failed: %s", exc)
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))

    async def _broadcast(self, snap: dict) -> None:
        for ws in list(self.sockets):
            try:
                await asyncio.wait_for(ws.send_json(snap), 2)
            except Exception:  # noqa: BLE001 - a gone client is dropped
                self.sockets.discard(ws)

    async def run_batch(self) -> dict:
        s = self.config.settings
        until = int(time.time()) - s.batch_horizon_seconds
        start, end = await self.store.recompute(until, s.batch_lookback_seconds, time.time())
        self.metrics["batch_runs"].inc()
        self.metrics["watermark"].set(end)
        # after the recomputation, never before: it may still need the oldest raw events
        pruned = await self.store.prune()
        for table, rows in pruned.items():
            self.metrics["pruned"].labels(table).inc(rows)
        return {"recomputed_from": start, "watermark": end, "pruned": pruned}

    async def _batches(self) -> None:
        while True:
            await asyncio.sleep(self.config.settings.batch_interval_seconds)
            try:
                await self.run_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("batch layer run failed: %s", exc)


def create_app(config: AnalyticsConfig) -> FastAPI:
    rt = Runtime(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(title="nineslab analytics", version="1.0.0", lifespan=lifespan,
                  description="Exactly-once chat analytics: speed + batch layers, merged queries, live dashboard.")
    app.state.runtime = rt
    page = resources.files("system.analytics").joinpath("static/dashboard.html").read_text()

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body")) or "query"
        return JSONResponse({"error": f"invalid {field}: {first.get('msg', 'invalid')}", "field": field},
                            status_code=422)

    @app.get("/metrics/query", response_model=SeriesBody, responses={422: {"model": ErrorBody},
                                                                      503: {"model": ErrorBody}})
    async def query(metric: Annotated[str, Query(max_length=100)],
                    from_: Annotated[float | None, Query(alias="from")] = None,
                    to: float | None = None,
                    step: Annotated[float, Query()] = 1.0):
        now = time.time()
        end = to if to is not None else now
        start = from_ if from_ is not None else end - 300
        try:
            q = serving.parse_metric(metric, config.regions)
            first, last, n = serving.buckets(start, end, step)
        except serving.QueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        try:
            if q.kind == "mean":
                rows = [(sec, "b:" + lab, v) for sec, lab, v in await rt.store.merged("latency_bucket", None, first, last)]
                rows += [(sec, "sum", v) for sec, _lab, v in await rt.store.merged("latency_sum", None, first, last)]
            else:
                rows = await rt.store.merged(q.rollup_metric, q.label, first, last)
        except Exception as exc:  # noqa: BLE001 - the database is down: say so
            return JSONResponse({"error": f"pg-analytics is not usable now ({type(exc).__name__}); retry later"},
                                status_code=503)
        return {"metric": metric, "start": first, "end": last, "step": int(step),
                "points": serving.series(q, rows, first, int(step), n)}

    @app.get("/", response_class=HTMLResponse)
    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page)

    @app.websocket("/ws/dashboard")
    async def ws_dashboard(ws: WebSocket) -> None:
        await ws.accept()
        rt.sockets.add(ws)
        try:
            if rt.snapshotter.latest:
                await ws.send_json(rt.snapshotter.latest)
            while True:
                await ws.receive_text()   # the client says nothing; this notices it leaving
        except WebSocketDisconnect:
            pass
        finally:
            rt.sockets.discard(ws)

    @app.get("/api/snapshot")
    async def snapshot() -> dict:
        return rt.snapshotter.latest or {}

    @app.get("/api/alerts")
    async def alerts() -> dict:
        return {"alerts": [rt.snapshotter.alert.as_dict()]}

    @app.get("/api/stats")
    async def stats() -> dict:
        st = rt.stats
        return {"ingested": st.ingested, "duplicates": st.duplicates, "expired": st.expired, "bad": st.bad,
                "batches": st.batches,
                "lag_p50_seconds": st.lag_quantile(0.5), "lag_p99_seconds": st.lag_quantile(0.99),
                "pending": st.pending, "consuming": rt.consuming}

    @app.post("/api/batch", responses={503: {"model": ErrorBody}})
    async def batch():
        try:
            return await rt.run_batch()
        except Exception as exc:  # noqa: BLE001
            return JSONResponse({"error": f"batch run failed: {exc}"}, status_code=503)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorBody}})
    async def readyz():
        problems = {}
        try:
            await rt.store.ping()
        except Exception as exc:  # noqa: BLE001
            problems["postgres"] = f"{type(exc).__name__}: {exc}"
        if rt.nc is None or not rt.nc.is_connected:
            problems["nats"] = "not connected"
        elif not rt.consuming:
            problems["nats"] = "consumers not bound yet"
        if problems:
            return JSONResponse({"status": "unavailable", "error": "not ready: " + ", ".join(problems),
                                 "not_ready": problems}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(rt.registry), media_type=CONTENT_TYPE_LATEST)

    return app
