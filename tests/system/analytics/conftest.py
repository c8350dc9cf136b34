"""Fixtures of the analytics tests: pg-analytics and a one-node NATS JetStream (real servers,
shared by the session), a fresh database and fresh streams per test, the service as a process."""
from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from analytics_helpers import Service
from lab.servers import postgres
from lab.servers.group import ServerGroup

_ids = itertools.count(1)


@pytest.fixture(scope="session")
def infra(tmp_path_factory):
    group = ServerGroup(tmp_path_factory.mktemp("analytics-servers") / "servers")
    try:
        pg = group.postgres("pg-analytics")
        node = group.nats_cluster(1, prefix="nats-analytics")[0]
        yield {"pg": pg, "nats": node.url}
    finally:
        group.close()


async def _drop_streams(url: str) -> None:
    import nats
    from nats.js.errors import NotFoundError
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in ("CHAT", "EVENTS"):
            try:
                await js.delete_stream(name)
            except NotFoundError:
                pass
    finally:
        await nc.close()


class Env:
    def __init__(self, infra, tmp_path) -> None:
        self.infra, self.tmp = infra, tmp_path
        self.db = f"analytics_{uuid.uuid4().hex[:8]}"
        postgres.create_database(infra["pg"].port, self.db)
        self.dsn = infra["pg"].dsn_for(self.db)
        self.nats = infra["nats"]
        asyncio.run(_drop_streams(self.nats))
        self.services: list[Service] = []

    def service(self, start: bool = True, **settings) -> Service:
        svc = Service(self.tmp, f"analytics-{next(_ids)}", self.dsn, [self.nats], settings)
        self.services.append(svc)
        return svc.start() if start else svc

    def close(self) -> None:
        for svc in self.services:
            svc.stop()


@pytest.fixture
def env(infra, tmp_path):
    e = Env(infra, tmp_path)
    try:
        yield e
    finally:
        e.close()
