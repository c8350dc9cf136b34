"""The router process: a probe loop per chat server (real time) feeding the pure health state
machine, and a small HTTP API: ``GET /route?user=U`` (contracts §6), ``GET /status`` (the health
table), ``/healthz``, ``/readyz``, ``/metrics``. Every health and failover change is logged to
the events file and exported as a metric.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.errors import ConfigError
from system.common.config import ServiceConfig, typed_settings
from system.common.events import EventLog
from system.common.metrics import ServiceMetrics
from system.common.regions import UnknownUser
from system.router.discovery import DiscoveryFile, diff as discovery_diff
from system.router.health import HEALTHY, HealthPolicy, ServerHealth
from system.router.routing import choose, failover_changes, region_down

log = logging.getLogger("nineslab.router")


class RouterSettings(HealthPolicy):
    model_config = ConfigDict(extra="ignore")
    route_ttl: float = Field(30.0, gt=0)
    discovery_file: str | None = None          # chat servers joining and leaving (lab.runtime.discovery)
    discovery_interval: float = Field(1.0, gt=0)


def ws_url(http_url: str) -> str:
    return http_url.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + "/ws"


class RouterService:
    def __init__(self, config: ServiceConfig, *, config_path: str | None = None) -> None:
        self.config, self.name = config, config.name
        self.regions = list(config.regions)
        self.settings: RouterSettings = typed_settings(RouterSettings, config.settings, path=config_path)
        for peer_name, peer in config.peers.items():
            if peer.region not in self.regions:
                raise ConfigError(f"peer {peer_name} is in region {peer.region!r}, not one of {self.regions}",
                                  path=config_path, key=f"peers.{peer_name}.region")
        self.peers = dict(config.peers)
        self.health = {n: ServerHealth(n, p.region, self.settings) for n, p in config.peers.items()}
        self.events = EventLog(self.name, config.events_file)
        self.metrics = ServiceMetrics(self.name)
        self.m_routes = self.metrics.counter("router_routes", "Routes handed out", ("region", "failed_over"))
        self.m_no_route = self.metrics.counter("router_no_route", "Route requests answered 503")
        for n in self.health:
            self.metrics.set_state("health", n, "unknown")
        self.down = {r: False for r in self.regions}
        self.probed = set()
        self.first_round_done = False
        self.client: httpx.AsyncClient | None = None
        self.tasks: list[asyncio.Task] = []
        self.probes: dict[str, asyncio.Task] = {}
        self.discovery = DiscoveryFile(self.settings.discovery_file) if self.settings.discovery_file else None

    def healthy(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {r: [] for r in self.regions}
        for h in self.health.values():
            if h.state == HEALTHY:
                out[h.region].append(h.name)
        return out

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=self.settings.check_timeout,
                                        limits=httpx.Limits(max_keepalive_connections=0))
        for name in self.health:
            self.probes[name] = asyncio.create_task(self._probe_loop(name), name=f"probe-{name}")
        if self.discovery is not None:
            self.tasks.append(asyncio.create_task(self._discovery_loop(), name="discovery"))

    async def _discovery_loop(self) -> None:
        while True:
            members = self.discovery.poll()
            if members is not None:
                self.apply_members(members)
            await asyncio.sleep(self.settings.discovery_interval)

    def apply_members(self, members: dict) -> None:
        """Health-check servers that joined (unknown until their first probe); forget those that
        left at once, so no user is routed to a server being drained."""
        joined, left = discovery_diff(self.peers, members)
        for name in left:
            self.probes.pop(name).cancel()
            del self.peers[name], self.health[name]
            self.probed.discard(name)
            self.events.emit("discovery", name, "left", "no longer in the discovery file: not routed")
        for name in joined:
            peer = members[name]
            if peer.region not in self.regions:
                log.warning("discovery: %s is in unknown region %r; ignored", name, peer.region)
                continue
            self.peers[name] = peer
            self.health[name] = ServerHealth(name, peer.region, self.settings)
            self.metrics.set_state("health", name, "unknown")
            self.events.emit("discovery", name, "joined", f"health-checking {peer.url}")
            self.probes[name] = asyncio.create_task(self._probe_loop(name), name=f"probe-{name}")
        if left:
            self._update_failover()

    async def stop(self) -> None:
        for t in (*self.tasks, *self.probes.values()):
            t.cancel()
        await asyncio.gather(*self.tasks, *self.probes.values(), return_exceptions=True)
        if self.client:
            await self.client.aclose()
        self.events.close()

    async def probe(self, name: str) -> tuple[bool, str]:
        url = self.peers[name].url.rstrip("/") + "/readyz"
        try:
            resp = await asyncio.wait_for(self.client.get(url), self.settings.check_timeout)
        except (httpx.HTTPError, asyncio.TimeoutError, OSError) as exc:
            return False, f"{type(exc).__name__} from {url}"
        if resp.status_code == 200:
            return True, "ready"
        return False, f"{url} answered {resp.status_code}: {resp.text[:120]}"

    async def _probe_loop(self, name: str) -> None:
        h = self.health[name]
        while True:
            ok, detail = await self.probe(name)
            changed = h.observe(ok, time.time(), detail)
            self.probed.add(name)
            if changed:
                self.events.emit("health", name, changed, detail)
                self.metrics.set_state("health", name, changed)
            self._update_failover()
            await asyncio.sleep(h.next_delay())

    def _update_failover(self) -> None:
        if not self.first_round_done and len(self.probed) < len(self.health):
            return                                  # judge regions only once every server was probed
        self.first_round_done = True
        after = region_down(self.regions, self.healthy())
        for region, state in failover_changes(self.down, after):
            self.events.emit("failover", region, state,
                             "no healthy chat server: users go to the next region" if state == "failed_over"
                             else "a chat server is healthy again")
            self.metrics.set_state("failover", region, state)
        self.down = after

    def route(self, user: str) -> dict | None:
        choice = choose(user, self.regions, self.healthy())
        if choice is None:
            self.m_no_route.inc()
            return None
        self.m_routes.labels(choice.region, str(choice.failed_over).lower()).inc()
        peer = self.peers[choice.server]
        http = (peer.public_url or peer.url).rstrip("/")
        return {"user": user, "region": choice.region, "home_region": choice.home,
                "failed_over": choice.failed_over, "server": ws_url(http), "server_name": choice.server,
                "http": http, "ttl_seconds": self.settings.route_ttl, "router": self.name}

    def status(self) -> dict:
        return {"router": self.name, "regions": {r: {"failed_over": d} for r, d in self.down.items()},
                "servers": {n: {"region": h.region, "state": h.state, "failures": h.failures,
                                "successes": h.successes, "detail": h.last_detail, "changed_at": h.changed_at}
                            for n, h in self.health.items()}}


def build_app(service: RouterService) -> Starlette:
    async def route(request: Request) -> Response:
        user = request.query_params.get("user")
        if not user:
            return JSONResponse({"error": "missing ?user=<user id>"}, status_code=400)
        try:
            body = service.route(user)
        except UnknownUser as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if body is None:
            return JSONResponse({"error": "no region has a healthy chat server", "user": user}, status_code=503)
        return JSONResponse(body)

    async def status(request: Request) -> Response:
        return JSONResponse(service.status())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "router": service.name})

    async def readyz(request: Request) -> Response:
        ready = service.first_round_done or len(service.probed) >= len(service.health)
        body = {"ok": ready, "router": service.name}
        if not ready:
            body["failing"] = ["first health-check round not finished"]
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        data, ctype = service.metrics.render()
        return Response(data, media_type=ctype)

    return Starlette(routes=[Route("/route", route), Route("/status", status), Route("/healthz", healthz),
                             Route("/readyz", readyz), Route("/metrics", metrics)])
