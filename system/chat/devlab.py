"""A small chat lab for tests and benchmarks: real PostgreSQL, Redis and a NATS cluster from a
``ServerGroup``, and chat servers and routers started exactly as the runtime starts them
(``python -m system.chat --config FILE`` as a ``ManagedProcess``).

Dependencies are reached directly here (the runtime puts fault-proxy links in between).
Everything started is stopped by the group's ``close()``, also when a start fails.
"""
from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lab.servers.base import ManagedProcess, ServerSpec, free_port, wait_until
from lab.servers.group import ServerGroup
from lab.servers.postgres import create_database


@dataclass
class Region:
    name: str
    pg: object
    redis: object
    nats_url: str


@dataclass
class ChatLab:
    group: ServerGroup
    regions: list[str]
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    infra: dict[str, Region] = field(default_factory=dict)
    chat: dict[str, ManagedProcess] = field(default_factory=dict)
    chat_urls: dict[str, str] = field(default_factory=dict)
    routers: dict[str, ManagedProcess] = field(default_factory=dict)
    router_urls: dict[str, str] = field(default_factory=dict)
    configs: dict[str, Path] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.group.root

    def secret_file(self) -> Path:
        path = self.root / "secret"
        if not path.exists():
            path.write_bytes(self.secret)
            path.chmod(0o600)
        return path

    def start_infra(self, nats_nodes: int = 3) -> None:
        nodes = self.group.nats_cluster(nats_nodes, prefix="nats")
        for i, region in enumerate(self.regions):
            pg = self.group.postgres(f"pg-{region}")
            create_database(pg.port, "chat")
            redis = self.group.redis(f"redis-{region}")
            self.infra[region] = Region(region, pg, redis, nodes[i % len(nodes)].url)
        self.nats_nodes = nodes

    def _write_config(self, name: str, cfg: dict) -> Path:
        path = self.root / "config" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg, indent=2))
        self.configs[name] = path
        return path

    def _spawn(self, name: str, role: str, path: Path, port: int) -> ManagedProcess:
        spec = ServerSpec(name=name, role=role, argv=[sys.executable, "-m", f"system.{role}", "--config", str(path)],
                          log_file=self.root / "logs" / f"{name}.log", ports={"main": port},
                          cwd=Path(__file__).resolve().parents[2])
        proc = self.group._start(ManagedProcess(spec))
        return proc

    def chat_config(self, name: str, region: str, port: int, settings: dict | None = None) -> dict:
        r = self.infra[region]
        return {"name": name, "role": "chat", "region": region, "host": "127.0.0.1", "port": port,
                "regions": self.regions, "secret_file": str(self.secret_file()),
                "log_file": str(self.root / "logs" / f"{name}.log"),
                "deps": {"postgres": r.pg.dsn_for("chat"), "redis": r.redis.url, "nats": [r.nats_url]},
                "peers": {}, "settings": settings or {},
                "events_file": str(self.root / "events" / f"{name}.jsonl")}

    def start_chat(self, name: str, region: str, settings: dict | None = None, wait: bool = True) -> str:
        port = free_port()
        path = self._write_config(name, self.chat_config(name, region, port, settings))
        self.chat[name] = self._spawn(name, "chat", path, port)
        self.chat_urls[name] = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_ready(name)
        return self.chat_urls[name]

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        url = (self.chat_urls.get(name) or self.router_urls[name]) + "/readyz"
        proc = self.chat.get(name) or self.routers[name]
        try:
            wait_until(lambda: httpx.get(url, timeout=1.0).status_code == 200, timeout=timeout, what=name,
                       alive=proc.alive)
        except Exception:
            print(proc.log_tail(40), file=sys.stderr)
            raise

    def restart_chat(self, name: str) -> None:
        self.group.restart(self.chat[name])
        self.wait_ready(name)

    def start_router(self, name: str, settings: dict | None = None, wait: bool = True) -> str:
        port = free_port()
        peers = {n: {"url": u, "region": json.loads(self.configs[n].read_text())["region"]}
                 for n, u in self.chat_urls.items()}
        cfg = {"name": name, "role": "router", "region": None, "host": "127.0.0.1", "port": port,
               "regions": self.regions, "secret_file": str(self.secret_file()),
               "log_file": str(self.root / "logs" / f"{name}.log"), "deps": {}, "peers": peers,
               "settings": settings or {}, "events_file": str(self.root / "events" / f"{name}.jsonl")}
        path = self._write_config(name, cfg)
        self.routers[name] = self._spawn(name, "router", path, port)
        self.router_urls[name] = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_ready(name)
        return self.router_urls[name]

    def events(self, name: str) -> list[dict]:
        path = self.root / "events" / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
