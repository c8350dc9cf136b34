"""The lab image's entry point: ``python -m lab.container NAME`` becomes that process.

Under docker compose one image serves every role. This module reads the topology, finds
the process NAME in the profile's plan (``NINES_PROFILE``, default quick) and runs it the
way the local runtime would, with container addresses from :mod:`lab.runtime.docker_layout`:
PostgreSQL (initdb, remote trust on the lab network, the databases its services use),
Redis, a NATS node whose routes go through the fault proxy, the fault proxy itself, or one
of our services with its contracts §5 configuration.

While the process runs, this module asks it its real readiness check every two seconds and
keeps ``/data/.ready`` fresh while it answers: the compose health check only looks at that
file's age (``lab.runtime.docker_layout.ready_test``), so no Python interpreter starts every two seconds in every
container (that alone kept two cores busy). ``--check NAME`` runs the readiness check once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Callable
from pathlib import Path

from lab.runtime.docker_layout import (CHECK_SECONDS, PROXY_API_PORT, PROXY_NAME, READY_FILE, DockerLayout,
                                       internal_ports)
from lab.runtime.local import dependency_url
from lab.servers import nats, postgres, redis
from lab.servers.base import wait_until
from lab.topology import load_topology

DATA = Path(os.environ.get("NINES_DATA", "/data"))
READY = DATA / READY_FILE


def _plans(profile: str):
    topology = load_topology()
    return topology.plan(profile), DockerLayout(topology.plan("full"))


def _run_forwarding(argv: list[str], ready: Callable[[], bool], *, user: str | None = None,
                    stop_signal: int = signal.SIGTERM, after_start=None) -> int:
    """Run a server as our child, forward SIGTERM/SIGINT to it (as ``stop_signal``), keep
    READY fresh while ``ready()`` holds, exit with the child."""
    READY.unlink(missing_ok=True)          # a restarted container's file is from its last life
    child = subprocess.Popen(argv, user=user)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(stop_signal))
    signal.signal(signal.SIGINT, lambda *_: child.send_signal(stop_signal))
    if after_start is not None:
        try:
            after_start(child)
        except Exception as exc:  # noqa: BLE001 - report and stop the server, never leave it half set up
            print(f"lab.container: set-up after start failed: {exc}", file=sys.stderr)
            child.send_signal(stop_signal)
    threading.Thread(target=_report_readiness, args=(child, ready), daemon=True).start()
    return child.wait()


def _report_readiness(child: subprocess.Popen, ready: Callable[[], bool]) -> None:
    while child.poll() is None:
        try:
            answers = ready()
        except Exception:  # noqa: BLE001 - not answering is the answer
            answers = False
        if answers:
            READY.touch()
        else:
            READY.unlink(missing_ok=True)
        time.sleep(CHECK_SECONDS)          # the period of the check, as a health check's interval


def _postgres(name: str, plan, ready: Callable[[], bool]) -> int:
    data_dir = DATA / name
    postgres.ensure_initialised(data_dir)
    hba = data_dir / "pg_hba.conf"
    rule = "host all all 0.0.0.0/0 trust  # nineslab: the lab's own container network\n"
    if rule not in hba.read_text():
        with open(hba, "a") as fh:
            fh.write(rule)
    port = internal_ports("postgres")["main"]
    spec = postgres.spec(name, data_dir, port, DATA / f"{name}.log", settings={"listen_addresses": "*"})

    def create_databases(child) -> None:
        wait_until(lambda: postgres.ready(port), timeout=60, what=name, alive=lambda: child.poll() is None)
        for database in plan.databases().get(name, []):
            postgres.create_database(port, database)
    return _run_forwarding(spec.argv, ready, user=spec.user, stop_signal=spec.stop_signal,
                           after_start=create_databases)


def _service_config(p, plan, layout: DockerLayout) -> Path:
    deps: dict[str, object] = {}
    for dep in p.deps:
        urls = [dependency_url(plan.process(t).role, layout.link_address(f"{p.name}>{t}"), dep.database)
                for t in dep.targets]
        deps[dep.key] = urls if dep.many else urls[0]
    peers = {}
    for peer in p.peers:
        peer_plan = plan.process(peer)
        peers[peer] = {"url": f"http://{peer}:{internal_ports(peer_plan.role)['main']}",
                       "public_url": f"http://127.0.0.1:{layout.host_ports(peer)['main']}",
                       "region": peer_plan.region}
    secret_file = DATA / "secret"
    secret_file.write_text(os.environ["NINES_SECRET"])
    secret_file.chmod(0o600)
    events = Path(os.environ.get("NINES_EVENTS_DIR", "/events"))
    config = {
        "name": p.name, "role": p.role, "region": p.region, "host": "0.0.0.0",
        "port": internal_ports(p.role)["main"], "regions": list(plan.regions),
        "secret_file": str(secret_file), "log_file": str(DATA / f"{p.name}.log"),
        "deps": deps, "peers": peers, "settings": dict(p.settings),
        "events_file": str(events / f"{p.name}.jsonl"),
    }
    path = DATA / f"{p.name}.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def run(name: str, profile: str) -> int:
    plan, layout = _plans(profile)
    ready = probe(name, plan)
    DATA.mkdir(parents=True, exist_ok=True)
    if name == PROXY_NAME:
        config = DATA / "toxiproxy.json"
        config.write_text(json.dumps(layout.proxies(), indent=2))
        return _run_forwarding([sys.executable, "-m", "chaos.proxy", "serve", "--host", "0.0.0.0",
                                "--port", str(PROXY_API_PORT), "--config", str(config)], ready)
    p = plan.process(name)
    if p.role == "postgres":
        return _postgres(name, plan, ready)
    if p.role == "redis":
        spec = redis.spec(name, DATA / name, internal_ports("redis")["main"], DATA / f"{name}.log", host="0.0.0.0")
        return _run_forwarding(spec.argv, ready)
    if p.role == "nats":
        ports = internal_ports("nats")
        spec = nats.spec(name, DATA / name, ports["main"], ports["cluster"], ports["monitor"],
                         layout.nats_routes(name), DATA / f"{name}.log", host="0.0.0.0")
        return _run_forwarding(spec.argv, ready)
    config = _service_config(p, plan, layout)
    return _run_forwarding([sys.executable, "-m", f"system.{p.role}", "--config", str(config)], ready)


def probe(name: str, plan) -> Callable[[], bool]:
    """NAME's real readiness check, from inside its container."""
    if name == PROXY_NAME:
        return lambda: _http_ok(f"http://127.0.0.1:{PROXY_API_PORT}/version")
    p = plan.process(name)
    if p.role == "postgres":
        port, databases = internal_ports("postgres")["main"], plan.databases().get(name, [])
        return lambda: postgres.ready(port) and all(_has_database(port, db) for db in databases)
    if p.role == "redis":
        return lambda: redis.ready(internal_ports("redis")["main"])
    if p.role == "nats":
        return lambda: nats.ready(internal_ports("nats")["monitor"])
    return lambda: _http_ok(f"http://127.0.0.1:{internal_ports(p.role)['main']}/healthz")


def check(name: str, profile: str) -> bool:
    """Run NAME's readiness check once."""
    return probe(name, _plans(profile)[0])()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def _has_database(port: int, database: str) -> bool:
    import asyncio
    import asyncpg

    async def connect() -> bool:
        conn = await asyncpg.connect(postgres.dsn(port, database), timeout=2)
        await conn.close()
        return True
    return asyncio.run(connect())


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    profile = os.environ.get("NINES_PROFILE", "quick")
    if len(args) == 2 and args[0] == "--check":
        try:
            return 0 if check(args[1], profile) else 1
        except Exception as exc:  # noqa: BLE001 - a failed check is an answer, not a crash
            print(f"{args[1]}: not ready: {exc}", file=sys.stderr)
            return 1
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m lab.container NAME | --check NAME", file=sys.stderr)
        return 2
    try:
        return run(args[0], profile)
    except KeyError:
        print(f"lab.container: no process named {args[0]!r} in the {profile} profile", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
