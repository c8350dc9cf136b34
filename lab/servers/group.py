"""A group of real servers started together and stopped together, in reverse order.

Used by tests (one group per fixture) and as a building block of the local runtime.
Every server started through a group is stopped by ``close()``, also when a later start
failed, so a half-started group leaves nothing behind.
"""
from __future__ import annotations

import concurrent.futures
import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.servers import nats, postgres, redis
from lab.servers.base import ManagedProcess, free_port, wait_until


@dataclass
class PostgresHandle:
    process: ManagedProcess
    port: int

    @property
    def dsn(self) -> str:
        return postgres.dsn(self.port)

    def dsn_for(self, database: str) -> str:
        return postgres.dsn(self.port, database)


@dataclass
class RedisHandle:
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return redis.url(self.port)


@dataclass
class NatsNode:
    process: ManagedProcess
    client_port: int
    cluster_port: int
    monitor_port: int

    @property
    def url(self) -> str:
        return nats.url(self.client_port)


class ServerGroup:
    """Starts PostgreSQL, Redis and NATS servers under one directory and stops them all."""

    def __init__(self, root: Path | None = None, *, startup_timeout: float = 60.0) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="nineslab-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self.processes: list[ManagedProcess] = []
        self._ids = itertools.count(1)

    def _start(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        process.start()
        return process

    def postgres(self, name: str | None = None, port: int | None = None) -> PostgresHandle:
        name = name or f"pg-{next(self._ids)}"
        data_dir = self.root / name
        postgres.ensure_initialised(data_dir)
        port = port or free_port()
        proc = self._start(ManagedProcess(postgres.spec(name, data_dir, port, self.root / f"{name}.log")))
        wait_until(lambda: postgres.ready(port), timeout=self.startup_timeout, what=name, alive=proc.alive)
        return PostgresHandle(proc, port)

    def redis(self, name: str | None = None, port: int | None = None) -> RedisHandle:
        name = name or f"redis-{next(self._ids)}"
        port = port or free_port()
        proc = self._start(ManagedProcess(redis.spec(name, self.root / name, port, self.root / f"{name}.log")))
        wait_until(lambda: redis.ready(port), timeout=self.startup_timeout, what=name, alive=proc.alive)
        return RedisHandle(proc, port)

    def nats_cluster(self, size: int = 3, prefix: str | None = None) -> list[NatsNode]:
        """``size`` JetStream nodes routed to each other directly (the runtime routes via the proxy)."""
        prefix = prefix or f"nats-{next(self._ids)}"
        ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
        nodes = []
        for i, (client, cluster, monitor) in enumerate(ports):
            routes = [f"127.0.0.1:{p[1]}" for j, p in enumerate(ports) if j != i] if size > 1 else []
            name = f"{prefix}-{i}"
            # a cluster name of its own: a node of another lab (or test) that reuses one of these
            # ports can never join this cluster
            spec = nats.spec(name, self.root / name, client, cluster, monitor, routes, self.root / f"{name}.log",
                             cluster_name=f"{prefix}-{self.root.name}")
            nodes.append(NatsNode(self._start(ManagedProcess(spec)), client, cluster, monitor))
        for node in nodes:
            wait_until(lambda: nats.ready(node.monitor_port), timeout=self.startup_timeout,
                       what=node.process.spec.name, alive=node.process.alive)
        return nodes

    def restart(self, process: ManagedProcess) -> None:
        """Start a stopped or killed server again with the same spec (same ports, same data)."""
        process.stop(grace=5)
        process.start()

    def close(self) -> None:
        """Stop every server, newest first; in parallel, as none waits on another to stop."""
        procs = list(reversed(self.processes))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(procs))) as pool:
            list(pool.map(lambda p: p.stop(grace=10), procs))
        self.processes.clear()

    def __enter__(self) -> "ServerGroup":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
