"""The Toxiproxy 2.12 HTTP API as an ASGI application.

Routes, status codes, JSON shapes and error texts follow upstream's ``api.go``:
success bodies are compact JSON (``application/json``, no trailing newline); errors are
``{"error":...,"status":...}`` plus a newline as ``text/plain; charset=utf-8`` (Go's
``http.Error``); an unknown path is ``404 page not found``; a known path with another
method is an empty 405; a ``Mozilla/`` user agent gets 403 (the API has no
authentication, so browsers must not reach it); matched routes carry an
``X-Toxiproxy-Request-Id``; a handler slower than 25 s is answered with an empty 503.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import Awaitable, Callable

from chaos.proxy import gojson
from chaos.proxy.apierror import ApiError, ERR_TOXIC_NOT_FOUND
from chaos.proxy.collection import PopulateError, ProxyCollection
from chaos.proxy.metrics import Metrics

log = logging.getLogger("chaos.proxy.api")

VERSION = "2.12.0"
HANDLER_TIMEOUT_SECONDS = 25.0
_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
Handler = Callable[..., Awaitable[Response]]

JSON = [(b"content-type", b"application/json")]
TEXT = [(b"content-type", b"text/plain; charset=utf-8"), (b"x-content-type-options", b"nosniff")]


def json_response(value, status: int = 200) -> Response:
    return status, list(JSON), gojson.encode(value)


def error_response(error: ApiError) -> Response:
    body = gojson.encode({"error": error.message, "status": error.status}) + b"\n"
    return error.status, list(TEXT), body


def request_id() -> str:
    """A 20-character id in the style of the xid ids upstream uses."""
    value = int.from_bytes(os.urandom(13), "big")
    return "".join(_XID_ALPHABET[(value >> (5 * i)) & 31] for i in range(20))


class ToxiproxyApi:
    """ASGI app serving one :class:`ProxyCollection`."""

    def __init__(self, collection: ProxyCollection, metrics: Metrics) -> None:
        self.collection = collection
        self.metrics = metrics
        seg = r"([^/]+)"
        self.routes: list[tuple[re.Pattern, dict[str, Handler]]] = [
            (re.compile(r"/reset"), {"POST": self.reset}),
            (re.compile(r"/proxies"), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (re.compile(r"/populate"), {"POST": self.populate}),
            (re.compile(rf"/proxies/{seg}"), {"GET": self.proxy_show, "POST": self.proxy_update,
                                              "PATCH": self.proxy_update, "DELETE": self.proxy_delete}),
            (re.compile(rf"/proxies/{seg}/toxics"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (re.compile(rf"/proxies/{seg}/toxics/{seg}"), {
                "GET": self.toxic_show, "POST": self.toxic_update, "PATCH": self.toxic_update,
                "DELETE": self.toxic_delete}),
            (re.compile(r"/version"), {"GET": self.version}),
        ]
        if metrics.enabled:
            any_method = {m: self.metrics_page for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")}
            self.routes.append((re.compile(r"/metrics"), any_method))

    # -- ASGI -------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, headers, payload = await self.dispatch(scope, bytes(body))
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def dispatch(self, scope, body: bytes) -> Response:
        path, method = scope["path"], scope["method"]
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(method)
            if handler is None:
                continue  # gorilla/mux: a later route may still match; else 405 below
            headers = [(b"x-toxiproxy-request-id", request_id().encode())]
            user_agent = dict(scope.get("headers") or []).get(b"user-agent", b"")
            if user_agent.startswith(b"Mozilla/"):
                return 403, headers + list(TEXT), b"User agent not allowed\n"
            status, extra, payload = await self._run(handler, match.groups(), body)
            log.debug("%s %s -> %d", method, path, status)
            return status, headers + extra, payload
        if any(pattern.fullmatch(path) for pattern, _ in self.routes):
            return 405, [], b""
        return 404, list(TEXT), b"404 page not found\n"

    async def _run(self, handler: Handler, args: tuple[str, ...], body: bytes) -> Response:
        task = asyncio.ensure_future(self._guarded(handler, args, body))
        done, _ = await asyncio.wait({task}, timeout=HANDLER_TIMEOUT_SECONDS)
        if not done:
            log.warning("handler %s took longer than %.0f s", handler.__name__, HANDLER_TIMEOUT_SECONDS)
            return 503, [], b""
        return task.result()

    async def _guarded(self, handler: Handler, args: tuple[str, ...], body: bytes) -> Response:
        try:
            return await handler(*args, body)
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:  # upstream answers any other failure as a 500 with its text
            log.exception("API handler %s failed", handler.__name__)
            return error_response(ApiError(str(exc) or type(exc).__name__, 500))

    # -- handlers ---------------------------------------------------------------

    async def reset(self, body: bytes) -> Response:
        await self.collection.reset()
        return 204, [], b""

    async def proxy_index(self, body: bytes) -> Response:
        return json_response(self.collection.index_json())

    async def proxy_create(self, body: bytes) -> Response:
        proxy = await self.collection.create_json(body)
        return json_response(proxy.to_json(), 201)

    async def populate(self, body: bytes) -> Response:
        try:
            proxies = await self.collection.populate_json(body)
        except PopulateError as exc:
            done = [p.to_json() for p in exc.done] if exc.done else None
            value = {"error": exc.error.message, "status": exc.error.status, "proxies": done}
            return json_response(value, exc.error.status)
        return json_response({"proxies": [p.to_json() for p in proxies] or None}, 201)

    async def proxy_show(self, name: str, body: bytes) -> Response:
        return json_response(self.collection.get(name).to_json())

    async def proxy_update(self, name: str, body: bytes) -> Response:
        proxy = await self.collection.update_json(name, body)
        return json_response(proxy.to_json())

    async def proxy_delete(self, name: str, body: bytes) -> Response:
        await self.collection.delete(name)
        return 204, [], b""

    async def toxic_index(self, name: str, body: bytes) -> Response:
        return json_response(self.collection.get(name).toxics.to_json())

    async def toxic_create(self, name: str, body: bytes) -> Response:
        wrapper = await self.collection.get(name).toxics.add_json(body)
        return json_response(wrapper.to_json())

    async def toxic_show(self, name: str, toxic: str, body: bytes) -> Response:
        wrapper = self.collection.get(name).toxics.find(toxic)
        if wrapper is None:
            raise ERR_TOXIC_NOT_FOUND
        return json_response(wrapper.to_json())

    async def toxic_update(self, name: str, toxic: str, body: bytes) -> Response:
        wrapper = await self.collection.get(name).toxics.update_json(toxic, body)
        return json_response(wrapper.to_json())

    async def toxic_delete(self, name: str, toxic: str, body: bytes) -> Response:
        await self.collection.get(name).toxics.remove(toxic)
        return 204, [], b""

    async def version(self, body: bytes) -> Response:
        payload = f'{{"version": "{VERSION}"}}\n'.encode()
        return 200, [(b"content-type", b"application/json;charset=utf-8")], payload

    async def metrics_page(self, body: bytes) -> Response:
        return 200, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")], \
            self.metrics.render().encode()
