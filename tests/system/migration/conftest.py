"""Fixtures of the migration tests: pg-old and pg-new (real PostgreSQL, shared by the session)
behind fault-proxy links, a fresh database pair per test, and the service as a process."""
from __future__ import annotations

import itertools
import uuid

import pytest

from lab.servers import postgres
from lab.servers.base import free_port
from lab.servers.group import ServerGroup
from migration_helpers import start_fault_proxy, start_service

_ids = itertools.count(1)


@pytest.fixture(scope="session")
def stores(tmp_path_factory):
    """pg-old and pg-new, and a fault proxy with a link to each."""
    tmp = tmp_path_factory.mktemp("migration-servers")
    group = ServerGroup(tmp / "servers")
    proxy_proc = None
    try:
        old, new = group.postgres("pg-old"), group.postgres("pg-new")
        proxy_proc, proxy = start_fault_proxy(tmp)
        links = {"migration>pg-old": {"listen": f"127.0.0.1:{free_port()}", "upstream": f"127.0.0.1:{old.port}"},
                 "migration>pg-new": {"listen": f"127.0.0.1:{free_port()}", "upstream": f"127.0.0.1:{new.port}"}}
        proxy.ensure_links(links)
        yield {"old": old, "new": new, "proxy": proxy, "links": links, "tmp": tmp}
        proxy.close()
    finally:
        if proxy_proc:
            proxy_proc.stop()
        group.close()


class Env:
    def __init__(self, stores, tmp_path):
        self.stores, self.tmp = stores, tmp_path
        db = f"profiles_{uuid.uuid4().hex[:8]}"
        postgres.create_database(stores["old"].port, db)
        postgres.create_database(stores["new"].port, db)
        self.db = db
        self.old_direct = stores["old"].dsn_for(db)
        self.new_direct = stores["new"].dsn_for(db)
        host_old = stores["links"]["migration>pg-old"]["listen"]
        host_new = stores["links"]["migration>pg-new"]["listen"]
        self.old_dsn = f"postgresql://postgres@{host_old}/{db}"
        self.new_dsn = f"postgresql://postgres@{host_new}/{db}"
        self.proxy = stores["proxy"]
        self.procs = []

    def service(self, **settings):
        self.name = f"migration-{next(_ids)}"
        proc, url = start_service(self.tmp, self.name, self.old_dsn, self.new_dsn, settings)
        self.procs.append(proc)
        return proc, url

    def close(self):
        for proc in self.procs:
            proc.stop()
        self.proxy.reset()


@pytest.fixture
def env(stores, tmp_path):
    e = Env(stores, tmp_path)
    try:
        yield e
    finally:
        e.close()
