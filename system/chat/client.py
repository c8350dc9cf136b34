"""An asyncio chat client for tests and tools (the wire protocol is docs/chat-protocol.md).

``ChatClient`` asks a router for its route (cached for the route's TTL), opens the WebSocket
with a bearer token, resumes from the last sequence it saw in every conversation, drops
duplicates by id, and answers every message with a delivery receipt. When the connection
drops it re-asks a router (each in turn), reconnects with backoff and jitter, and resumes:
so after a server crash it loses nothing that was acknowledged.

    client = ChatClient("alice@us-east", token, routers=["http://127.0.0.1:40020"])
    await client.connect()
    ack = await client.send("bob@eu-west", "hi")        # {"id", "conv", "seq", ...}
    msg = await client.receive(timeout=5)                # {"type": "message", ...}
    await client.close()

A send is acked only after JetStream stored it; a send whose connection dropped before the
ack raises ``ConnectionLost`` and may or may not have been stored (retry it: the receiver
drops duplicates only by id, so a retried send can arrive twice with two ids).
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time

import httpx
import websockets

from lab.errors import DependencyError
from system.common.retry import Backoff


class ChatClientError(DependencyError):
    """The chat service refused or could not complete a request."""


class SendRefused(ChatClientError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ConnectionLost(ChatClientError):
    """The connection dropped before the server answered."""


class NoRoute(ChatClientError):
    """No router answered with a route."""


class ChatClient:
    def __init__(self, user: str, token: str, *, routers: list[str] | None = None, server: str | None = None,
                 reconnect: bool = True, rng: random.Random | None = None, router_timeout: float = 2.0) -> None:
        if not routers and not server:
            raise ValueError("give routers (router base URLs) or server (a ws:// URL)")
        self.user, self.token = user, token
        self.routers = list(routers or [])
        self.fixed_server = server
        self.reconnect = reconnect
        self.rng = rng or random.Random()
        self.router_timeout = router_timeout
        self.since: dict[str, int] = {}
        self.seen: set[str] = set()
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.errors: list[dict] = []
        self.route: dict | None = None
        self.route_expires = 0.0
        self.connections = 0
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future] = {}
        self._ws = None
        self._connected = asyncio.Event()
        self._resumed = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self._http = httpx.AsyncClient(timeout=router_timeout)

    # ---- routing ----------------------------------------------------------------------
    async def ask_router(self) -> dict:
        """A fresh route from the first router that answers (routers are tried in turn)."""
        last = None
        start = self.rng.randrange(len(self.routers))
        for i in range(len(self.routers)):
            base = self.routers[(start + i) % len(self.routers)]
            try:
                resp = await self._http.get(f"{base}/route", params={"user": self.user})
                if resp.status_code == 200:
                    route = resp.json()
                    self.route, self.route_expires = route, time.monotonic() + float(route.get("ttl_seconds", 30))
                    return route
                last = f"{base} answered {resp.status_code}: {resp.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{base}: {type(exc).__name__}"
        raise NoRoute(f"no router gave a route for {self.user}: {last}")

    async def server_url(self, fresh: bool = False) -> str:
        if self.fixed_server:
            return self.fixed_server
        if fresh or self.route is None or time.monotonic() >= self.route_expires:
            await self.ask_router()
        return self.route["server"]

    # ---- connection -------------------------------------------------------------------
    async def connect(self, timeout: float = 15.0) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(self._resumed.wait(), timeout)
        except asyncio.TimeoutError:
            raise ConnectionLost(f"{self.user}: not connected after {timeout:g} s") from None

    async def _run(self) -> None:
        policy, attempt, fresh = Backoff(0.05, 2.0, 1.0), 0, False
        while not self._closing:
            try:
                url = await self.server_url(fresh)
                async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {self.token}"},
                                              open_timeout=5, max_size=None, ping_interval=None) as ws:
                    self._ws = ws
                    self.connections += 1
                    attempt = 0
                    await ws.send(json.dumps({"type": "resume", "since": self.since}))
                    self._connected.set()
                    await self._read(ws)
            except websockets.exceptions.InvalidStatus as exc:
                if exc.response.status_code == 401:
                    self.errors.append({"code": "unauthorized", "message": exc.response.body.decode(errors="replace")})
                    self._closing = True
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException, ChatClientError,
                    httpx.HTTPError):
                pass
            finally:
                self._ws = None
                self._connected.clear()
                self._resumed.clear()
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(ConnectionLost(f"{self.user}: connection dropped before the ack"))
                self._pending.clear()
            if self._closing or not self.reconnect:
                break
            fresh = True            # the server we had failed: ask a router again
            await asyncio.sleep(policy.delay(attempt, self.rng))
            attempt += 1

    async def _read(self, ws) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "message":
                await ws.send(json.dumps({"type": "ack", "id": frame["id"]}))
                if frame["id"] in self.seen:
                    continue
                self.seen.add(frame["id"])
                frame["received_ts"] = time.time()
                if frame["seq"] > self.since.get(frame["conv"], 0):
                    self.since[frame["conv"]] = frame["seq"]
                self.inbox.put_nowait(frame)
            elif kind == "ack":
                fut = self._pending.pop(frame.get("client_id"), None)
                if fut and not fut.done():
                    fut.set_result(frame)
            elif kind == "error":
                fut = self._pending.pop(frame.get("client_id"), None) if frame.get("client_id") else None
                if fut and not fut.done():
                    fut.set_exception(SendRefused(frame["code"], frame["message"]))
                else:
                    self.errors.append(frame)
            elif kind == "resumed":
                self._resumed.set()

    # ---- operations -------------------------------------------------------------------
    async def send(self, to: str, body: str, timeout: float = 10.0) -> dict:
        """Send and wait for the ack: ``{"type": "ack", "client_id", "id", "conv", "seq", "ts"}``."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            raise ConnectionLost(f"{self.user}: not connected") from None
        client_id = f"{self.user}-{next(self._ids)}"
        fut = asyncio.get_running_loop().create_future()
        self._pending[client_id] = fut
        try:
            await self._ws.send(json.dumps({"type": "send", "client_id": client_id, "to": to, "body": body,
                                            "sent_ts": time.time()}))
        except (AttributeError, websockets.exceptions.WebSocketException) as exc:
            self._pending.pop(client_id, None)
            raise ConnectionLost(f"{self.user}: connection dropped while sending") from exc
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(client_id, None)
            raise ConnectionLost(f"{self.user}: no ack within {timeout:g} s") from None

    async def send_raw(self, text: str | bytes) -> None:
        await self._connected.wait()
        await self._ws.send(text)

    async def receive(self, timeout: float = 10.0) -> dict:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def receive_n(self, n: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            out.append(await self.receive(max(0.01, deadline - time.monotonic())))
        return out

    async def history(self, since: int = 0, conv: str | None = None) -> dict:
        url = await self.server_url()
        base = url.replace("ws://", "http://").replace("wss://", "https://").rsplit("/ws", 1)[0]
        params = {"since": since, **({"conv": conv} if conv else {})}
        resp = await self._http.get(f"{base}/history", params=params,
                                    headers={"Authorization": f"Bearer {self.token}"})
        if resp.status_code != 200:
            raise ChatClientError(f"history: {resp.status_code} {resp.text[:200]}")
        return resp.json()

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._http.aclose()
