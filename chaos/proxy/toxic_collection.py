"""The toxics of one proxy: two ordered chains (upstream, downstream) and the open links.

Creating a toxic follows upstream's checks in order — body, stream, type, name unique
across both streams, attributes — and every change is applied to the open links of
that direction before the API answers, so a client sees it on its next byte.
"""
from __future__ import annotations

import asyncio
from typing import Any

from chaos.proxy import gojson
from chaos.proxy.apierror import (ERR_INVALID_STREAM, ERR_INVALID_TOXIC_TYPE, ERR_TOXIC_EXISTS,
                                  ERR_TOXIC_NOT_FOUND, bad_request)
from chaos.proxy.link import Link
from chaos.proxy.toxics import REGISTRY, Toxic

STREAMS = ("upstream", "downstream")
_WRAPPER_FIELDS = {"name": "string", "type": "string", "stream": "string", "toxicity": "float32",
                   "attributes": "raw"}
_UPDATE_FIELDS = {"attributes": "raw", "toxicity": "float32"}


class ToxicWrapper:
    """A toxic as the API shows it: name, type, stream, toxicity and its attributes."""

    __slots__ = ("name", "type", "stream", "toxicity", "toxic", "direction")

    def __init__(self, name: str, type: str, stream: str, toxicity: float, toxic: Toxic,
                 direction: str) -> None:
        self.name, self.type, self.stream = name, type, stream
        self.toxicity, self.toxic, self.direction = toxicity, toxic, direction

    def to_json(self) -> dict[str, Any]:
        return {"attributes": self.toxic.attributes(), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": gojson.Float32(self.toxicity)}


def parse_direction(stream: str) -> str | None:
    lowered = stream.lower()
    return lowered if lowered in STREAMS else None


def _decode_attributes(toxic_type: str, value: Any, base: Toxic | None) -> Toxic:
    cls = REGISTRY[toxic_type]
    struct_name = cls.__name__
    fields = {name: "int64" for name in cls.ATTRIBUTES}
    try:
        changes = gojson.decode_struct(value, fields, struct_name, f"toxics.{struct_name}",
                                       prefix="attributes.")
    except gojson.GoJsonError as exc:
        raise bad_request(str(exc)) from exc
    toxic = base.copy_with(changes) if base is not None else cls(**changes)
    problem = toxic.validate()
    if problem:
        raise bad_request(problem)
    return toxic


class ToxicCollection:
    """The toxic chains of one proxy and the links they act on."""

    def __init__(self) -> None:
        self.chains: dict[str, list[ToxicWrapper]] = {stream: [] for stream in STREAMS}
        self.links: set[Link] = set()
        self.lock = asyncio.Lock()

    def all(self) -> list[ToxicWrapper]:
        return self.chains["upstream"] + self.chains["downstream"]

    def find(self, name: str) -> ToxicWrapper | None:
        for wrapper in self.all():
            if wrapper.name == name:
                return wrapper
        return None

    def to_json(self) -> list[dict[str, Any]]:
        return [wrapper.to_json() for wrapper in self.all()]

    def has_type(self, toxic_type: str) -> bool:
        return any(wrapper.type == toxic_type for wrapper in self.all())

    async def _apply(self, direction: str, method: str, wrapper: ToxicWrapper) -> None:
        links = [link for link in self.links if link.direction == direction]
        if links:
            await asyncio.gather(*(getattr(link, method)(wrapper) for link in links))

    async def add_json(self, body: bytes) -> ToxicWrapper:
        try:
            decoded = gojson.decode(body)
            fields = gojson.decode_struct(decoded, _WRAPPER_FIELDS, "ToxicWrapper", "toxics.ToxicWrapper")
            if "attributes" in fields and not isinstance(fields["attributes"], dict):
                gojson.decode_struct(fields["attributes"], {}, "ToxicWrapper", "toxics.NoopToxic",
                                     prefix="attributes.")
        except gojson.GoJsonError as exc:
            raise bad_request(str(exc)) from exc
        stream = fields.get("stream", "downstream")
        direction = parse_direction(stream)
        if direction is None:
            raise ERR_INVALID_STREAM
        toxic_type = fields.get("type", "")
        name = fields.get("name") or f"{toxic_type}_{stream}"
        if toxic_type not in REGISTRY:
            raise ERR_INVALID_TOXIC_TYPE
        async with self.lock:
            if self.find(name) is not None:
                raise ERR_TOXIC_EXISTS
            toxic = _decode_attributes(toxic_type, fields.get("attributes"), None)
            toxicity = fields.get("toxicity", gojson.Float32(1.0))
            wrapper = ToxicWrapper(name, toxic_type, stream, toxicity, toxic, direction)
            self.chains[direction].append(wrapper)
            await self._apply(direction, "add_toxic", wrapper)
        return wrapper

    async def update_json(self, name: str, body: bytes) -> ToxicWrapper:
        async with self.lock:
            current = self.find(name)
            if current is None:
                raise ERR_TOXIC_NOT_FOUND
            try:
                fields = gojson.decode_struct(gojson.decode(body), _UPDATE_FIELDS, "",
                                              "struct { Attributes interface {}; Toxicity float32 }")
            except gojson.GoJsonError as exc:
                raise bad_request(str(exc)) from exc
            toxic = _decode_attributes(current.type, fields.get("attributes"), current.toxic)
            current.toxic = toxic
            current.toxicity = fields.get("toxicity", current.toxicity)
            await self._apply(current.direction, "update_toxic", current)
            return current

    async def remove(self, name: str) -> None:
        async with self.lock:
            wrapper = self.find(name)
            if wrapper is None:
                raise ERR_TOXIC_NOT_FOUND
            await self._remove(wrapper)

    async def _remove(self, wrapper: ToxicWrapper) -> None:
        self.chains[wrapper.direction].remove(wrapper)
        await self._apply(wrapper.direction, "remove_toxic", wrapper)

    async def reset(self) -> None:
        async with self.lock:
            for direction in STREAMS:
                while self.chains[direction]:
                    await self._remove(self.chains[direction][0])

    def snapshot(self, direction: str) -> list[ToxicWrapper]:
        return list(self.chains[direction])
