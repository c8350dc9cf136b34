"""The autoscaler process: one loop a region — scrape every replica's ``/metrics``, ask the pure
policy (``policy.py``), act through the lab runtime (``lab.runtime.scaling``) — and a small HTTP
API: ``/status`` (replicas, load and the last decision a region), ``/healthz``, ``/readyz``,
``/metrics``.

Every decision and every step of a replica's life is an event in the events file (contracts §5,
kind ``autoscale``) and a metric: ``scale_out``/``scale_in`` on the region, then ``ready``
(answers), ``routed`` (every router finds it healthy) for a new replica, and ``draining``
(out of discovery), ``drained`` (no router lists it), ``stopped`` for a leaving one. A leaving
replica is stopped only after the routers dropped it, so no user is sent to it while it stops;
its connected clients reconnect through a router and resume from their last sequence.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.errors import ConfigError
from lab.state import LabState, load_state
from system.autoscaler import load_signal
from system.autoscaler.policy import HOLD, IN, OUT, AutoscaleSettings, Decision, RegionPolicy
from system.common.config import ServiceConfig, typed_settings
from system.common.events import EventLog
from system.common.metrics import ServiceMetrics

log = logging.getLogger("nineslab.autoscaler")
ROUTED_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2


class AutoscalerService:
    def __init__(self, config: ServiceConfig, *, config_path: str | None = None) -> None:
        self.name, self.regions = config.name, list(config.regions)
        self.settings: AutoscaleSettings = typed_settings(AutoscaleSettings, config.settings, path=config_path)
        extra = config.model_extra or {}
        if not extra.get("state_dir"):
            raise ConfigError("the autoscaler needs state_dir (the lab it scales)", path=config_path, key="state_dir")
        self.state_dir, self.topology_file = extra["state_dir"], extra.get("topology_file")
        self.events = EventLog(self.name, config.events_file)
        self.metrics = ServiceMetrics(self.name)
        self.m_replicas = self.metrics.gauge("autoscaler_replicas", "Serving replicas", ("region",))
        self.m_load = self.metrics.gauge("autoscaler_load_per_replica", "Load signal a replica", ("region",))
        self.m_decisions = self.metrics.counter("autoscaler_decisions", "Scaling actions", ("region", "action"))
        self.policies = {r: RegionPolicy(self.settings) for r in self.regions}
        self.last: dict[str, dict] = {}
        self.scrapes: dict[str, load_signal.Scrape] = {}
        self.abort = threading.Event()       # tells a replica start in a worker thread to give up
        self.scaler = None
        self.client: httpx.AsyncClient | None = None
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        from lab.runtime.scaling import Scaler     # the lab side; imported here to keep the app light
        self.scaler = await asyncio.to_thread(Scaler, self.state_dir, topology_file=self.topology_file,
                                              abort=self.abort)
        self.client = httpx.AsyncClient(timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0))
        for region in self.regions:
            self.tasks.append(asyncio.create_task(self._region_loop(region), name=f"scale-{region}"))

    async def stop(self) -> None:
        self.abort.set()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.client:
            await self.client.aclose()
        self.events.close()

    def emit(self, subject: str, state: str, detail: str) -> None:
        self.events.emit("autoscale", subject, state, detail)
        self.metrics.set_state("autoscale", subject, state)

    # --- the loop ----------------------------------------------------------------------

    async def _region_loop(self, region: str) -> None:
        while self._own_status() != "running":      # `nines up` is the state file's writer until then
            await asyncio.sleep(POLL_SECONDS)
        while True:
            await asyncio.sleep(self.settings.evaluation_interval)
            try:
                await self.evaluate(region)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed round must not end the region's scaling
                log.warning("%s: evaluation failed: %s: %s", region, type(exc).__name__, exc)
                self.emit(region, "error", f"{type(exc).__name__}: {exc}"[:300])

    def _own_status(self) -> str | None:
        with contextlib.suppress(Exception):
            return load_state(self.state_dir).processes[self.name].status
        return None

    async def evaluate(self, region: str) -> Decision:
        state = load_state(self.state_dir)
        replicas = self.scaler.replicas(self.settings.template, region, state)
        load = await self.sample([r.name for r in replicas], state)
        decision = self.policies[region].decide(time.time(), len(replicas), load)
        self.m_replicas.labels(region).set(len(replicas))
        if decision.load_per_replica is not None:
            self.m_load.labels(region).set(decision.load_per_replica)
        self.last[region] = {"replicas": [r.name for r in replicas], "decision": decision.__dict__}
        if decision.action == HOLD:
            return decision
        self.m_decisions.labels(region, decision.action).inc()
        self.emit(region, "scale_out" if decision.action == OUT else "scale_in",
                  f"{decision.current} -> {decision.desired} replicas: {decision.reason}")
        if decision.action == OUT:
            for _ in range(decision.desired - decision.current):
                await self.scale_out(region)
        elif decision.action == IN:
            await self.scale_in(replicas[-1].name)
        self.policies[region].acted(decision, time.time())
        return decision

    async def sample(self, names: list[str], state: LabState) -> float | None:
        async def scrape(name: str) -> tuple[str, load_signal.Scrape | None]:
            try:
                resp = await self.client.get(state.endpoints[name].rstrip("/") + "/metrics")
                resp.raise_for_status()
                return name, load_signal.parse(resp.text, time.monotonic())
            except (httpx.HTTPError, KeyError, ValueError):
                return name, None
        now = {n: s for n, s in await asyncio.gather(*(scrape(n) for n in names)) if s is not None}
        values = load_signal.per_replica(self.settings.metric, now, self.scrapes)
        self.scrapes.update(now)
        return load_signal.region_load(values, len(names))

    # --- actions -----------------------------------------------------------------------

    async def scale_out(self, region: str) -> str:
        began = time.time()
        record = await asyncio.to_thread(self.scaler.add, self.settings.template, region)
        self.emit(record.name, "ready", f"answers {time.time() - began:.1f} s after the scale-out began")
        routers = await self._until_routers(lambda servers: servers.get(record.name, {}).get("state") == "healthy",
                                            ROUTED_TIMEOUT_SECONDS)
        self.emit(record.name, "routed", f"healthy in {', '.join(routers)} {time.time() - began:.1f} s "
                                         "after the scale-out began")
        return record.name

    async def scale_in(self, name: str) -> None:
        await asyncio.to_thread(self.scaler.drain, name)
        self.emit(name, "draining", "out of discovery; waiting for the routers to drop it")
        routers = await self._until_routers(lambda servers: name not in servers, self.settings.drain_timeout)
        self.emit(name, "drained", f"no longer routed by {', '.join(routers) or 'any router'}")
        await asyncio.to_thread(self.scaler.remove, name)
        self.emit(name, "stopped", "stopped; its clients reconnect through a router and resume")

    async def _until_routers(self, ok, timeout: float) -> list[str]:
        """Poll every router's ``/status`` until ``ok(servers)`` holds for each (or ``timeout``
        passes: a router that is down does not hold scaling up)."""
        state = load_state(self.state_dir)
        routers = {r.name: state.endpoints.get(r.name) for r in state.processes_by(role="router")}
        deadline = time.monotonic() + timeout
        done: list[str] = []
        while True:
            for name, url in routers.items():
                if name in done or not url:
                    continue
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    if ok((await self.client.get(url.rstrip("/") + "/status")).json().get("servers", {})):
                        done.append(name)
            if len(done) == len(routers) or time.monotonic() > deadline:
                return sorted(done)
            await asyncio.sleep(POLL_SECONDS)

    def status(self) -> dict:
        return {"autoscaler": self.name, "settings": self.settings.model_dump(), "regions": self.last}


def build_app(service: AutoscalerService) -> Starlette:
    async def status(request: Request) -> Response:
        return JSONResponse(service.status())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "autoscaler": service.name})

    async def metrics(request: Request) -> Response:
        data, ctype = service.metrics.render()
        return Response(data, media_type=ctype)

    return Starlette(routes=[Route("/status", status), Route("/healthz", healthz), Route("/readyz", healthz),
                             Route("/metrics", metrics)])
