"""One chat server: WebSocket endpoint, REST (history, presence), health and metrics.

``ChatService`` holds the state and the behaviour (connections, sending, resuming, HA
mechanisms); ``build_app`` is the thin Starlette shell over it for HTTP, and websocket.py
carries the WebSocket frames (picows behind uvicorn's upgrade). Start-up connects NATS
(required: without it nothing can be acked), creates the streams, starts the region's
consumer; PostgreSQL and Redis sit behind circuit breakers with fallbacks, so the server
serves while either is down. See docs/chat-protocol.md for the wire protocol.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import random
import time

import nats
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.errors import DependencyError
from system.chat import protocol
from system.chat.catchup import StreamWindow
from system.chat.delivery import ANY_SUBJECT, DecodedMessages, RegionConsumer, deliver_subject
from system.chat.exile_feed import ExileFeeds
from system.chat.history_cache import HistoryCache
from system.chat.live import LiveFeed
from system.chat.nats_writes import NatsWriter
from system.chat.presence import RedisDeps, SessionDirectory, local_answer
from system.chat.presence_sync import PresenceSync
from system.chat.protocol import FrameError
from system.chat.publisher import JetStreamPublisher
from system.chat.ratelimit import TokenBucket
from system.chat.sender_copy import SenderCopies
from system.chat.settings import ChatSettings
from system.chat.storage import MessageStore
from system.chat.streams import ensure_streams, event_payload
from system.chat.websocket import Connection
from system.common.auth import AuthError, bearer_from_header, verify_token
from system.common.breaker import BreakerOpen, CircuitBreaker
from system.common.config import ServiceConfig, typed_settings
from system.common.events import EventLog
from system.common.metrics import ServiceMetrics
from system.common.regions import UnknownUser, check_user, conversation_id, conversation_members, home_region

log = logging.getLogger("nineslab.chat")


RESUME_GRACE_SECONDS = 2.0
PRESENCE_BATCH_LIMIT = 1000


class ChatService:
    def __init__(self, config: ServiceConfig, *, config_path: str | None = None) -> None:
        self.config = config
        self.name = config.name
        self.region = config.region or config.regions[0]
        self.regions = list(config.regions)
        self.settings: ChatSettings = typed_settings(ChatSettings, config.settings, path=config_path)
        # the WebSocket transport's frame limit: a larger frame closes the socket with 1009
        self.max_frame_bytes = 4 * self.settings.max_message_bytes + 8192
        self.message_ids = protocol.message_ids()
        self.secret = config.secret_bytes()
        self.rng = random.Random()
        self.events = EventLog(self.name, config.events_file)
        self.metrics = ServiceMetrics(self.name)
        m = self.metrics
        self.m_sent = m.counter("chat_messages_acked", "Messages acked to senders")
        self.m_send_failed = m.counter("chat_send_failures", "Sends answered with an error", ("code",))
        self.m_stored = m.counter("chat_messages_stored", "Messages stored by this region's consumer")
        self.m_store_retries = m.counter("chat_store_retries", "Messages nak'ed because the store was down")
        self.m_pushed = m.counter("chat_messages_pushed", "Messages pushed to local sockets")
        self.m_conns = m.gauge("chat_connections", "Open WebSocket connections")
        self.m_ack_latency = m.histogram("chat_send_ack_seconds", "Send to JetStream-ack latency",
                                         (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        s = self.settings
        self.pg_breaker = CircuitBreaker("postgres", failure_threshold=s.breaker_failures,
                                         reset_timeout=s.breaker_reset, on_change=self._breaker_changed)
        self.redis_breaker = CircuitBreaker("redis", failure_threshold=s.breaker_failures,
                                            reset_timeout=s.breaker_reset, on_change=self._breaker_changed)
        for b in (self.pg_breaker, self.redis_breaker):
            m.set_state("breaker", b.name, "closed")
        m.set_state("breaker", "nats", "closed")
        if not config.deps.postgres or not config.deps.redis or not config.deps.nats:
            from lab.errors import ConfigError
            raise ConfigError("a chat server needs deps.postgres, deps.redis and deps.nats",
                              path=config_path, key="deps")
        self.store = MessageStore(config.deps.postgres, self.pg_breaker)
        self.redis = RedisDeps(config.deps.redis, self.redis_breaker)
        self.directory = SessionDirectory(self.redis, self.name, ttl=s.session_ttl)
        self.presence_sync = PresenceSync(self.name, self.region, self.regions, heartbeat=s.presence_heartbeat,
                                          stale_after=s.presence_stale_after,
                                          flush_interval=s.presence_flush_interval, metrics=m)
        self.cache = HistoryCache(self.redis, size=s.history_cache_size)
        self.sender_copies = SenderCopies(self)
        self.decoded = DecodedMessages()       # chat.<region> messages, shared by the two readers
        self.consumer = RegionConsumer(self)
        self.live = LiveFeed(self)
        self.exile_feeds = ExileFeeds(self)
        self.conns: dict[str, set[Connection]] = {}
        self.nc = None
        self.js = None
        self.publisher: JetStreamPublisher | None = None
        self.nats_ok = False
        self.tasks: list[asyncio.Task] = []
        self.sending: set[asyncio.Future] = set()
        self.windows: dict[str, StreamWindow] = {}

    # ---- HA state changes -------------------------------------------------------------
    def _breaker_changed(self, name: str, old: str, new: str, detail: str) -> None:
        self.events.emit("breaker", name, new, detail)
        self.metrics.set_state("breaker", name, new)
        if name == "redis" and new == "closed" and self.conns:
            # a restarted Redis has lost the session directory: put our users back at once
            task = asyncio.ensure_future(self._register_sessions(list(self.conns)))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _nats_disconnected(self) -> None:
        if self.nats_ok:
            self.nats_ok = False
            self._breaker_changed("nats", "closed", "open", "disconnected from NATS")

    async def _nats_reconnected(self) -> None:
        if not self.nats_ok:
            self.nats_ok = True
            self._breaker_changed("nats", "open", "closed", "reconnected to NATS")

    # ---- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        deadline = time.monotonic() + s.startup_timeout
        while True:
            try:
                # nats-py retries an initial connect forever when reconnects are unlimited
                self.nc = await asyncio.wait_for(nats.connect(
                    servers=self.config.deps.nats, name=self.name, connect_timeout=2,
                    allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                    ping_interval=5, max_outstanding_pings=2,
                    disconnected_cb=self._nats_disconnected, reconnected_cb=self._nats_reconnected,
                    error_cb=self._nats_error), max(0.5, deadline - time.monotonic()))
                break
            except Exception as exc:  # noqa: BLE001 - NoServersError, OSError: retry until the deadline
                if time.monotonic() > deadline:
                    raise DependencyError(f"cannot connect to NATS at {', '.join(self.config.deps.nats)} "
                                          f"within {s.startup_timeout:g} s ({type(exc).__name__}); "
                                          "is the NATS link up?") from exc
                await asyncio.sleep(0.3)
        self.nats_ok = True
        self.js = self.nc.jetstream(timeout=s.publish_timeout)
        await ensure_streams(self.js, s.stream_replicas, deadline=max(1.0, deadline - time.monotonic()))
        self.publisher = JetStreamPublisher(self.nc, timeout=s.publish_timeout, rng=self.rng,
                                            writer=NatsWriter(self.nc, flush_delay=s.nats_flush_delay))
        await self.publisher.start()
        await self.nc.subscribe(deliver_subject(self.name), cb=self._on_deliver)
        await self.nc.subscribe(ANY_SUBJECT, cb=self._on_deliver)
        await self.nc.subscribe(f"session.register.{self.region}", queue=f"chat-{self.region}",
                                cb=self._on_remote_session)
        await self.presence_sync.start(self.nc)
        await self.store.start()
        await self.live.start()
        await self.consumer.start()
        self.sender_copies.start()
        self.tasks.append(asyncio.create_task(self._watch_deps(), name="watch-deps"))
        self.tasks.append(asyncio.create_task(self._refresh_sessions(), name="refresh-sessions"))
        log.warning("%s serving region %s", self.name, self.region)

    async def _nats_error(self, exc) -> None:
        log.info("nats: %s", exc)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.consumer.stop()
        await self.live.stop()
        await self.exile_feeds.stop()
        await self.sender_copies.stop()
        await self.presence_sync.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), 3)
            with contextlib.suppress(Exception):
                await self.nc.close()
        await self.store.close()
        await self.redis.close()
        self.events.close()

    async def _watch_deps(self) -> None:
        """Probe PostgreSQL and Redis through their breakers, so they open (and close) without traffic."""
        while True:
            await asyncio.sleep(self.settings.dep_check_interval)
            with contextlib.suppress(DependencyError):
                await self.store.ping()
            with contextlib.suppress(DependencyError):
                await self.redis.run(self.redis.client.ping)

    async def _refresh_sessions(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.settings.session_ttl / 3))
            await self._register_sessions(list(self.conns))

    async def _register_sessions(self, users: list[str]) -> None:
        local, remote = [], collections.defaultdict(list)
        for u in users:
            try:
                home = home_region(u, self.regions)
            except UnknownUser:
                continue
            (local.append(u) if home == self.region else remote[home].append(u))
        with contextlib.suppress(DependencyError):
            await self.directory.register(local)
        for region, names in remote.items():   # a failed-over user: its home region's directory
            with contextlib.suppress(Exception):
                await self.nc.publish(f"session.register.{region}",
                                      json.dumps({"server": self.name, "users": names}).encode())

    async def _on_remote_session(self, msg) -> None:
        try:
            data = json.loads(msg.data)
            users = [check_user(u) for u in data["users"]]
            server = str(data["server"])
        except (ValueError, KeyError, TypeError, UnknownUser):
            return
        with contextlib.suppress(DependencyError):
            await SessionDirectory(self.redis, server, self.settings.session_ttl).register(users)

    # ---- delivery ---------------------------------------------------------------------
    async def _on_deliver(self, msg) -> None:
        try:
            items = protocol.loads(msg.data)
        except ValueError:
            return
        for user, mid, sent_ts, frame in items:
            # users homed here get the live feed, in order; exiles get their home's feed too
            # (exile_feed.py), and whichever path comes second is dropped here
            if self._home(user) != self.region and self.exile_feeds.pushed.add_new(mid):
                self.deliver_local(user, mid, sent_ts, frame)

    def deliver_local(self, user: str, mid: str, sent_ts, frame: str) -> None:
        for conn in self.conns.get(user, ()):
            if conn.held is not None:
                conn.held.append((mid, sent_ts, frame))
            else:
                self.deliver_local_frame(conn, mid, sent_ts, frame)

    # ---- connections ------------------------------------------------------------------
    def _home(self, user: str) -> str:
        try:
            return home_region(user, self.regions)
        except UnknownUser:
            return self.region

    def release_held(self, conn: Connection, already_sent: set[str] = frozenset()) -> None:
        """Push the live messages held since the connection opened, minus the replayed ones."""
        held, conn.held = conn.held, None
        for mid, sent_ts, frame in held or ():
            if mid not in already_sent:
                self.deliver_local_frame(conn, mid, sent_ts, frame)

    def deliver_local_frame(self, conn: Connection, mid: str, sent_ts, frame: str) -> None:
        if conn.inflight is None:
            conn.inflight = {}
        if len(conn.inflight) < 10_000:
            conn.inflight[mid] = sent_ts
        conn.push(frame)
        self.m_pushed.inc()

    def open_connection(self, transport, user: str) -> Connection:
        """A client's WebSocket is up: attach it, then say hello; its frames wait until then."""
        s = self.settings
        conn = Connection(transport, user, TokenBucket(s.rate_limit_per_second, s.rate_limit_burst,
                                                       time.monotonic()))
        self._in_order(conn, self._open(conn))
        return conn

    async def _open(self, conn: Connection) -> None:
        await self.attach(conn)
        conn.push(protocol.dumps({"type": "hello", "user": conn.user, "server": self.name,
                                  "region": self.region, "max_message_bytes": self.settings.max_message_bytes}))

    def close_connection(self, conn: Connection) -> None:
        conn.closed = True
        self._track(self._detach_after(conn, conn.busy))

    async def _detach_after(self, conn: Connection, busy: asyncio.Future | None) -> None:
        if busy is not None:            # an attach still running: detach after it, not before
            await asyncio.wait([busy])
        await self.detach(conn)

    def receive(self, conn: Connection, data: bytes) -> None:
        """One client frame. Frames are handled in the order the client sent them: while one is
        handled asynchronously (a resume, the attach) the ones after it wait in ``conn.backlog``."""
        if conn.closed:
            return
        if conn.backlog is not None:
            conn.backlog.append(data)
            return
        pending = self.handle_frame(conn, data)
        if pending is not None:
            self._in_order(conn, pending)

    def _in_order(self, conn: Connection, pending) -> None:
        if conn.backlog is None:
            conn.backlog = []
        conn.busy = self._track(self._finish(conn, pending))

    def _track(self, coro) -> asyncio.Future:
        task = asyncio.ensure_future(coro)
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)
        return task

    async def _finish(self, conn: Connection, pending) -> None:
        try:
            await pending
            while conn.backlog and not conn.closed:
                pending = self.handle_frame(conn, conn.backlog.pop(0))
                if pending is not None:
                    await pending
        except Exception:  # noqa: BLE001 - a bug in one frame must not stall the connection
            log.exception("handling a frame of %s failed", conn.user)
        finally:
            conn.backlog, conn.busy = None, None

    async def attach(self, conn: Connection) -> None:
        # hold live delivery until the client's resume is answered (a client that never
        # resumes gets its live messages after RESUME_GRACE_SECONDS)
        conn.held = []
        conn.hold_timer = asyncio.get_running_loop().call_later(RESUME_GRACE_SECONDS, self.release_held, conn)
        first = conn.user not in self.conns
        self.conns.setdefault(conn.user, set()).add(conn)
        self.m_conns.inc()
        if first:
            self.presence_sync.online(conn.user)
            await self._register_sessions([conn.user])
            home = self._home(conn.user)
            if home != self.region:
                # a failed-over user: read their home region's stream for them (exile_feed.py),
                # so they get messages live while their home region has no server; before the
                # resume reads the replay, so nothing falls between the two
                await self.exile_feeds.join(conn.user, home)

    async def detach(self, conn: Connection) -> None:
        conn.closed = True
        if conn.hold_timer is not None:
            conn.hold_timer.cancel()
        conns = self.conns.get(conn.user)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.conns[conn.user]
                self.presence_sync.offline(conn.user)
                home = self._home(conn.user)
                if home != self.region:
                    await self.exile_feeds.leave(conn.user, home)
                with contextlib.suppress(DependencyError, BreakerOpen):
                    await self.directory.unregister(conn.user)
        self.m_conns.dec()

    def handle_frame(self, conn: Connection, text):
        """Handle one client frame; an awaitable when the rest must wait for it (a resume, a close)."""
        s = self.settings
        try:
            frame = protocol.parse_client_frame(text, s.max_message_bytes)
            if isinstance(frame, protocol.Send):
                if not conn.bucket.take(time.monotonic()):
                    self.m_send_failed.labels(protocol.RATE_LIMITED).inc()
                    if conn.bucket.strikes >= s.flood_close_after:
                        conn.close(protocol.CLOSE_POLICY, "flood: rate limit ignored")
                        return None
                    raise FrameError(protocol.RATE_LIMITED, f"rate limit of {s.rate_limit_per_second:g} "
                                     "messages a second exceeded: slow down", frame.client_id)
                try:
                    self.send(conn, frame)
                except FrameError:
                    raise
                except Exception:  # noqa: BLE001 - a bug in one send must not kill the connection
                    log.exception("send failed")
                    conn.push(protocol.error_frame(protocol.INTERNAL, "internal error; the message was NOT sent",
                                                   frame.client_id))
            elif isinstance(frame, protocol.ClientAck):
                self.receipt(conn, frame.id)
            elif isinstance(frame, protocol.Resume):
                return self.resume(conn, frame.since)
            else:
                conn.push(protocol.dumps({"type": "pong", "ts": time.time()}))
        except FrameError as exc:
            if exc.code != protocol.RATE_LIMITED:
                self.m_send_failed.labels(exc.code).inc()
            conn.push(protocol.error_frame(exc.code, exc.message, exc.client_id))
        return None

    def publish_soon(self, subject: str, payload: bytes) -> None:
        """A fire-and-forget core NATS publish from synchronous code (nats_writes.py: it leaves
        with everything else written before the event loop turns again)."""
        self.publisher.writer.publish(subject, payload)

    def send(self, conn: Connection, frame: protocol.Send) -> None:
        """Publish a sent message; its ack (or error) frame follows from the PubAck callback
        (``_sent``). No task: sends of one connection go to NATS in the order they came, and
        one NATS connection keeps them in order to JetStream, so sequences follow that order."""
        started = time.monotonic()
        try:
            to_region = home_region(frame.to, self.regions)
        except UnknownUser as exc:
            raise FrameError(protocol.UNKNOWN_RECIPIENT, str(exc), frame.client_id) from None
        try:
            from_region = home_region(conn.user, self.regions)
        except UnknownUser:
            from_region = self.region
        mid = next(self.message_ids)
        msg = {"id": mid, "conv": conversation_id(conn.user, frame.to), "seq": None, "from": conn.user,
               "to": frame.to, "from_region": from_region, "to_region": to_region, "body": frame.body,
               "sent_ts": frame.sent_ts, "ts": time.time()}
        self.publisher.submit(f"chat.{to_region}", mid, protocol.encode(msg), deadline=self.settings.publish_deadline,
                              done=functools.partial(self._sent, conn, frame, msg, started))

    def _sent(self, conn: Connection, frame: protocol.Send, msg: dict, started: float, seq: int | None,
              exc: BaseException | None) -> None:
        if exc is not None:
            self.publish_soon(f"events.send_failed.{self.region}", event_payload(
                "send_failed", self.region, client_id=frame.client_id, reason=type(exc).__name__))
            self.m_send_failed.labels(protocol.UNAVAILABLE).inc()
            conn.push(protocol.error_frame(protocol.UNAVAILABLE, "the message could not be made durable "
                                           f"({type(exc).__name__}); it was NOT sent: retry", frame.client_id))
            return
        msg["seq"] = seq
        conn.push(protocol.ack_frame(frame.client_id, msg["id"], msg["conv"], seq, msg["ts"]))
        self.m_sent.inc()
        self.m_ack_latency.observe(time.monotonic() - started)
        self.sender_copies.add(msg)

    def receipt(self, conn: Connection, mid: str) -> None:
        if conn.inflight is None or mid not in conn.inflight:
            return
        sent_ts = conn.inflight.pop(mid)
        latency = (time.time() - sent_ts) * 1000 if isinstance(sent_ts, (int, float)) else None
        self.publish_soon(f"events.delivered.{self.region}",
                          event_payload("delivered", self.region, id=mid, latency_ms=latency))

    async def catch_up(self, user: str, since: dict[str, int]) -> list[dict]:
        """Messages to ``user`` still in JetStream after their home consumer's ack floor
        (catchup.py); [] when JetStream does not answer within a second or two."""
        region = self._home(user)
        window = self.windows.get(region)
        if window is None:
            window = self.windows[region] = StreamWindow(self.js, region)
        try:
            return await asyncio.wait_for(window.messages_for(user, since), 3.0)
        except Exception as exc:  # noqa: BLE001 - no consumer yet, NATS down: replay the store only
            log.info("catch-up of %s from chat.%s skipped: %s", user, region, type(exc).__name__)
            return []

    async def resume(self, conn: Connection, since: dict[str, int]) -> None:
        # the stream first, then the store: a message acked in between is in both (deduplicated
        # by id below), never in neither
        if conn.hold_timer is not None:     # the resume releases them, however long its reads take
            conn.hold_timer.cancel()
        pending = await self.catch_up(conn.user, since)
        source = "postgres"
        try:
            msgs = await self.store.undelivered(conn.user, since)
        except DependencyError:
            source = "cache"
            try:
                msgs = [m for m in await self.cache.history(conn.user, 0, limit=self.settings.history_cache_size)
                        if m["to"] == conn.user and m["seq"] > since.get(m["conv"], 0)]
            except DependencyError:
                source, msgs = "none", []
        if pending:
            by_id = {m["id"]: m for m in msgs}
            by_id.update((m["id"], m) for m in pending)
            msgs = sorted(by_id.values(), key=lambda m: m["seq"])
        for m in msgs:
            self.deliver_local_one(conn, m)
        conn.push(protocol.dumps({"type": "resumed", "count": len(msgs), "source": source}))
        self.release_held(conn, {m["id"] for m in msgs})

    def deliver_local_one(self, conn: Connection, m: dict) -> None:
        if conn.inflight is None:
            conn.inflight = {}
        if len(conn.inflight) < 10_000:
            conn.inflight[m["id"]] = m.get("sent_ts")
        conn.push(protocol.message_frame(m))

    # ---- REST -------------------------------------------------------------------------
    async def history(self, user: str, since: int, conv: str | None, limit: int) -> tuple[list[dict], str]:
        try:
            return await self.store.history(user, since, conv, limit), "postgres"
        except DependencyError:
            try:
                return await self.cache.history(user, since, conv, limit), "cache"
            except DependencyError as exc:
                raise DependencyError("history is unavailable: PostgreSQL and Redis are both down") from exc

    async def presence(self, user: str) -> dict:
        """``{state, region, as_of, stale}`` from the cross-region replica (presence_sync.py);
        for a user homed here the region's session directory decides (presence.py)."""
        home = home_region(user, self.regions)
        answer = self.presence_sync.query(user, home)
        if home == self.region:
            answer = local_answer(await self.directory.presence(user), answer, self.region)
        return answer.as_dict()

    def readiness(self) -> tuple[bool, dict]:
        nats_ok = bool(self.nc and self.nc.is_connected)
        body = {"ok": nats_ok, "server": self.name, "region": self.region,
                "dependencies": {"nats": "ok" if nats_ok else "down",
                                 "postgres": self.pg_breaker.state, "redis": self.redis_breaker.state}}
        if not nats_ok:
            body["failing"] = ["nats"]
        body["degraded"] = [b.name for b in (self.pg_breaker, self.redis_breaker) if b.state != "closed"]
        return nats_ok, body


def _token(request) -> str | None:
    return bearer_from_header(request.headers.get("authorization")) or request.query_params.get("token")


def build_app(service: ChatService, *, lifespan: bool = True) -> Starlette:
    def authed(request: Request) -> str:
        return verify_token(service.secret, _token(request))

    def err(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def history(request: Request) -> Response:
        try:
            user = authed(request)
            q = request.query_params
            since, limit = int(q.get("since", 0)), min(int(q.get("limit", s_limit())), s_limit())
            if not 0 <= since < 2 ** 62 or limit < 1:
                return err(400, "since must be an integer >= 0 and limit an integer >= 1")
            conv = q.get("conv")
            if conv is not None and user not in conversation_members(conv):
                return err(403, f"conversation {conv!r} is not yours")
        except AuthError as exc:
            return err(401, str(exc))
        except UnknownUser as exc:
            return err(400, str(exc))
        except ValueError:
            return err(400, "since and limit must be integers")
        try:
            msgs, source = await service.history(user, since, conv, limit)
        except DependencyError as exc:
            return err(503, str(exc))
        return JSONResponse({"user": user, "source": source, "messages": msgs})

    def s_limit() -> int:
        return service.settings.history_limit

    async def presence(request: Request) -> Response:
        try:
            authed(request)
            if "users" in request.query_params:         # a contact list: many users in one call
                users = [check_user(u) for u in request.query_params["users"].split(",")]
                if len(users) > PRESENCE_BATCH_LIMIT:
                    return err(400, f"ask for at most {PRESENCE_BATCH_LIMIT} users at a time, not {len(users)}")
                return JSONResponse({"presence": {u: await service.presence(u) for u in users}})
            user = check_user(request.query_params.get("user", ""))
            answer = await service.presence(user)
        except AuthError as exc:
            return err(401, str(exc))
        except UnknownUser as exc:
            return err(400, str(exc))
        return JSONResponse({"user": user, "status": answer["state"], **answer})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "server": service.name})

    async def readyz(request: Request) -> Response:
        ok, body = service.readiness()
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        data, ctype = service.metrics.render()
        return Response(data, media_type=ctype)

    lifespan_on = lifespan

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    return Starlette(routes=[Route("/history", history),
                             Route("/presence", presence), Route("/healthz", healthz),
                             Route("/readyz", readyz), Route("/metrics", metrics)],
                     lifespan=lifespan if lifespan_on else None)
