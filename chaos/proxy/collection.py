"""All proxies of a server and the operations of the API on them: create, update,
delete, populate, reset. Each takes the raw request body and decodes it as upstream's
Go structs would, so errors carry upstream's status codes and texts.

Populate follows Toxiproxy 2.12: every entry's name and upstream is checked first (a
failure creates nothing); entries are then applied in order; an existing proxy with
the same resolved ``listen`` and ``upstream`` is kept untouched (toxics, enabled state
and all), any other is stopped and replaced; the first failure stops the run and the
proxies done before it stay.
"""
from __future__ import annotations

import asyncio
import random
from typing import Any

from chaos.proxy import gojson
from chaos.proxy.apierror import (ERR_PROXY_EXISTS, ERR_PROXY_NOT_FOUND, ApiError, bad_request,
                                  missing_field)
from chaos.proxy.metrics import Metrics
from chaos.proxy.proxy import Proxy, ProxyAlreadyStarted

_PROXY_FIELDS = {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}


class PopulateError(Exception):
    """Populate stopped at an error; ``done`` are the proxies applied before it."""

    def __init__(self, error: ApiError, done: list[Proxy] | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.done = done


class ProxyCollection:
    """The named proxies of one server."""

    def __init__(self, *, rng: random.Random, metrics: Metrics | None = None) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.rng = rng
        self.metrics = metrics
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ERR_PROXY_NOT_FOUND from None

    def index_json(self) -> dict[str, Any]:
        return {name: self.proxies[name].to_json() for name in sorted(self.proxies)}

    def _new(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, rng=self.rng, metrics=self.metrics)

    async def create_json(self, body: bytes) -> Proxy:
        try:
            fields = gojson.decode_struct(gojson.decode(body), _PROXY_FIELDS, "Proxy", "toxiproxy.Proxy")
        except gojson.GoJsonError as exc:
            raise bad_request(str(exc)) from exc
        name, upstream = fields.get("name", ""), fields.get("upstream", "")
        if not name:
            raise missing_field("name")
        if not upstream:
            raise missing_field("upstream")
        async with self.lock:
            if name in self.proxies:
                raise ERR_PROXY_EXISTS
            proxy = self._new(name, fields.get("listen", ""), upstream)
            if fields.get("enabled", True):
                await proxy.start()
            self.proxies[name] = proxy
            return proxy

    async def update_json(self, name: str, body: bytes) -> Proxy:
        async with self.lock:
            proxy = self.get(name)
            try:
                fields = gojson.decode_struct(gojson.decode(body), _PROXY_FIELDS, "Proxy", "toxiproxy.Proxy")
            except gojson.GoJsonError as exc:
                raise bad_request(str(exc)) from exc
            await proxy.update(fields.get("listen", proxy.listen), fields.get("upstream", proxy.upstream),
                               fields.get("enabled", proxy.enabled))
            return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            del self.proxies[name]
            await proxy.stop()

    async def reset(self) -> None:
        """Start every disabled proxy and remove every toxic (deleted proxies stay deleted)."""
        async with self.lock:
            for name in sorted(self.proxies):
                proxy = self.proxies[name]
                try:
                    await proxy.start()
                except ProxyAlreadyStarted:
                    pass
                await proxy.toxics.reset()

    async def populate_json(self, body: bytes) -> list[Proxy]:
        try:
            entries = gojson.decode(body)
            if not isinstance(entries, list) and entries is not None:
                raise gojson.GoJsonError(f"json: cannot unmarshal {gojson.kind(entries)} into Go value of type "
                                         "[]struct { toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }")
            decoded = [gojson.decode_struct(entry, _PROXY_FIELDS, "", "struct { toxiproxy.Proxy }")
                       for entry in entries or []]
        except gojson.GoJsonError as exc:
            raise PopulateError(bad_request(str(exc)), None) from exc
        for position, fields in enumerate(decoded, start=1):
            if not fields.get("name"):
                raise PopulateError(missing_field(f"name at proxy {position}"), None)
            if not fields.get("upstream"):
                raise PopulateError(missing_field(f"upstream at proxy {position}"), None)
        done: list[Proxy] = []
        async with self.lock:
            for fields in decoded:
                try:
                    done.append(await self._add_or_replace(fields))
                except ApiError as exc:
                    raise PopulateError(exc, done) from exc
        return done

    async def _add_or_replace(self, fields: dict[str, Any]) -> Proxy:
        name, listen, upstream = fields["name"], fields.get("listen", ""), fields["upstream"]
        existing = self.proxies.get(name)
        if existing is not None:
            if existing.same_as(listen, upstream):
                return existing
            await existing.stop()
        proxy = self._new(name, listen, upstream)
        if fields.get("enabled", True):
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def close(self) -> None:
        """Stop every proxy (server shutdown)."""
        for proxy in list(self.proxies.values()):
            await proxy.stop()
