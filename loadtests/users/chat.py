"""The chat user: a WebSocket client of the real chat service (contracts §6, docs/chat-protocol.md).

Each user is ``ld<seed>r<run>w<worker>u<n>@<region>`` (regions dealt round-robin, so load
is even across regions; ``<run>`` is the run id, so every run's users and conversations are
its own), asks a router ``GET /route?user=`` for its server (cached for the route's TTL,
re-asked on failure, routers tried in turn), connects with a bearer token from
``system.common.auth.issue_token`` and the lab secret, and resumes on every connect from
the last sequence it saw in each conversation: on the first connect from nothing, which for
a user of this run is only what was sent to it before it connected (and it releases the
server's hold on live messages at once, instead of after the server's resume grace).

An operation sends one message to another load user of the same process (so the
receiver is connected and measures delivery):

- ``chat.send``: send → ack, from the arrival's intended time (corrected) and from the
  real send (raw); the ack's id/conv/seq go to the ledger (``kind: chat``);
- ``chat.deliver``: measured on the receiving user from the message's ``sent_ts`` (raw)
  and the intended time carried in the body (corrected); each first delivery goes to the
  ledger (``kind: chat_received``) and is answered with a delivery receipt.

Delivery samples are observations, not arrivals: ``load.json`` counts them per operation.
websocket-client is pure Python over ``socket``, so it runs cooperatively under gevent.
"""
from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import quote

import gevent
from gevent.event import AsyncResult
import websocket
from locust import between

from loadtests.endpoints import regions_of
from loadtests.harness import lab
from loadtests.users.base import NinesUser

_PEERS: list["ChatUser"] = []          # connected chat users of this process: the recipients
_COUNTER = itertools.count()


class ChatError(Exception):
    """A send that was refused, timed out or lost its connection."""


class ChatUser(NinesUser):
    operation = "chat.send"
    think_time = between(0.5, 2.0)
    weight = 3

    def on_start(self) -> None:
        from system.common.auth import issue_token

        eps = lab(self.environment)
        if not eps.routers:
            raise ChatError(f"the lab in {eps.state_dir} has no router endpoints")
        if eps.secret is None:
            raise ChatError(f"the lab in {eps.state_dir} has no readable secret file")
        gen = self.gen
        n = next(_COUNTER)
        regions = regions_of(eps.chat)
        self.region = regions[n % len(regions)]
        self.user_id = f"ld{gen.seed}r{gen.run_id}w{gen.index}u{n}@{self.region}"
        self.token = issue_token(eps.secret, self.user_id, ttl_seconds=24 * 3600)
        self.routers = list(eps.routers)
        self.router_turn = n
        self.route: dict[str, Any] | None = None
        self.route_expires = 0.0
        self.ws: websocket.WebSocket | None = None
        self.reader: gevent.Greenlet | None = None
        self.pending: dict[str, AsyncResult] = {}
        self.since: dict[str, int] = {}
        self.seen: set[str] = set()
        self.sends = itertools.count(1)
        try:
            self._connect()
        except Exception:  # noqa: BLE001 - the first operation reconnects and reports it
            self.ws = None
        _PEERS.append(self)

    def on_stop(self) -> None:
        if self in _PEERS:
            _PEERS.remove(self)
        self._drop_connection()

    # --- connection ----------------------------------------------------------------

    def _route(self) -> dict[str, Any]:
        if self.route and time.time() < self.route_expires:
            return self.route
        errors = []
        for i in range(len(self.routers)):
            router = self.routers[(self.router_turn + i) % len(self.routers)]
            try:
                import requests

                r = requests.get(f"{router}/route", params={"user": self.user_id}, timeout=self.gen.timeout)
                if r.status_code == 200:
                    self.route = r.json()
                    self.route_expires = time.time() + float(self.route.get("ttl_seconds", 30))
                    return self.route
                errors.append(f"{router}: HTTP {r.status_code}")
            except Exception as exc:  # noqa: BLE001 - try the next router
                errors.append(f"{router}: {type(exc).__name__}")
        self.router_turn += 1
        raise ChatError("no route: " + "; ".join(errors))

    def _connect(self) -> None:
        route = self._route()
        url = f"{route['server']}?token={quote(self.token)}"
        try:
            ws = websocket.create_connection(url, timeout=self.gen.timeout)
        except Exception as exc:
            self.route = None        # re-ask a router next time: the server may be gone
            raise ChatError(f"connect to {route['server']} failed: {type(exc).__name__}: {exc}") from exc
        ws.settimeout(None)
        self.ws = ws
        # always, also with nothing seen yet: the user name is this run's, so "from the start"
        # is from the start of this run, never another run's history
        ws.send(json.dumps({"type": "resume", "since": self.since}))
        self.reader = gevent.spawn(self._read, ws)

    def _drop_connection(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                ws.close(timeout=0.5)
            except Exception:  # noqa: BLE001
                pass
        for result in self.pending.values():
            if not result.ready():
                result.set_exception(ChatError("connection lost before the ack"))
        self.pending.clear()

    def _read(self, ws: websocket.WebSocket) -> None:
        try:
            while True:
                text = ws.recv()
                if not text:
                    break
                self._on_frame(json.loads(text), time.time(), ws)
        except Exception:  # noqa: BLE001 - the connection is gone; the next send reconnects
            pass
        if self.ws is ws:
            self.route = None
            self._drop_connection()

    def _on_frame(self, frame: dict[str, Any], now: float, ws: websocket.WebSocket) -> None:
        kind = frame.get("type")
        if kind in ("ack", "error"):
            result = self.pending.pop(str(frame.get("client_id")), None)
            if result is not None:
                result.set((frame, now))
        elif kind == "message":
            self._on_message(frame, now, ws)

    def _on_message(self, m: dict[str, Any], now: float, ws: websocket.WebSocket) -> None:
        mid = str(m.get("id"))
        try:
            ws.send(json.dumps({"type": "ack", "id": mid}))     # delivery receipt
        except Exception:  # noqa: BLE001
            pass
        conv, seq = m.get("conv"), m.get("seq")
        if isinstance(conv, str) and isinstance(seq, int):
            self.since[conv] = max(seq, self.since.get(conv, 0))
        if mid in self.seen:
            return
        self.seen.add(mid)
        self.gen.write_ledger("chat_received", id=mid, user=self.user_id, conv=conv, seq=seq, ts=now)
        sent_ts = m.get("sent_ts")
        if not isinstance(sent_ts, (int, float)):
            return
        try:
            intended = float(json.loads(m.get("body") or "{}").get("i") or sent_ts)
        except (ValueError, AttributeError):
            intended = float(sent_ts)
        self.environment.events.request.fire(
            request_type="WS", name="chat.deliver", response_time=(now - sent_ts) * 1000.0,
            response_length=len(m.get("body") or ""), exception=None, response=None,
            context={"intended_ts": intended, "start_ts": float(sent_ts), "end_ts": now, "region": self.region})

    # --- the operation -------------------------------------------------------------

    def perform(self, intended_ts: float | None) -> None:
        start = time.time()
        peers = [p for p in _PEERS if p is not self] or [self]
        to = self.gen.rng.choice(peers).user_id
        try:
            if self.ws is None:
                self._connect()
            client_id = f"{self.user_id}-{next(self.sends)}"
            body = json.dumps({"i": intended_ts if intended_ts is not None else start, "c": client_id})
            result: AsyncResult = AsyncResult()
            self.pending[client_id] = result
            sent_ts = time.time()
            assert self.ws is not None
            self.ws.send(json.dumps({"type": "send", "client_id": client_id, "to": to, "body": body,
                                     "sent_ts": sent_ts}))
            try:
                frame, acked_at = result.get(timeout=max(0.1, self.gen.timeout - (sent_ts - start)))
            except gevent.Timeout:
                self.pending.pop(client_id, None)
                self.route = None          # a server that stopped answering: reconnect via a router
                self._drop_connection()
                raise ChatError(f"no ack within {self.gen.timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001 - every failure is a sample
            if not isinstance(exc, ChatError):
                self._drop_connection()
            self.fire(self.operation, start, exc, intended_ts, region=self.region)
            return
        if frame.get("type") == "error":
            err = ChatError(f"{frame.get('code')}: {frame.get('message')}")
            self.fire(self.operation, start, err, intended_ts, end_ts=acked_at, region=self.region)
            return
        self.fire(self.operation, start, None, intended_ts, end_ts=acked_at, region=self.region)
        from system.common.regions import home_region

        self.gen.write_ledger("chat", id=frame.get("id"), conv=frame.get("conv"), seq=frame.get("seq"),
                              **{"from": self.user_id}, to=to,
                              to_region=home_region(to, regions_of(lab(self.environment).chat)),
                              ts=frame.get("ts"), client_id=client_id)
