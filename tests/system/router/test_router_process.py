"""The entry points as the runtime runs them: bad configs are one sentence and exit 2; a router
health-checks real HTTP servers, routes, and exits 0 on SIGTERM."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import pytest

from lab.servers.base import ManagedProcess, ServerSpec, free_port, wait_until


def run_main(role: str, path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"system.{role}", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("role,content,expected", [
    ("chat", None, "cannot read the config file"),
    ("router", '{"name": "x",\n "role": ', "bad.json:2: not valid JSON"),
    ("chat", json.dumps({"name": "x", "role": "chat", "port": "eighty", "regions": ["r"]}), "port"),
    ("router", json.dumps({"name": "x", "role": "chat", "port": 1, "regions": ["r"]}), "this is the router service"),
])
def test_bad_configs_are_one_sentence_and_exit_2(tmp_path, role, content, expected):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    r = run_main(role, path)
    assert r.returncode == 2 and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_router_probes_routes_fails_over_and_exits_0_on_sigterm(tmp_path):
    # two stand-in chat servers: plain HTTP servers answering /readyz (the router only probes)
    backends = {}
    procs = []
    try:
        for name in ("chat-us-east-1", "chat-eu-west-1"):
            port = free_port()
            spec = ServerSpec(name=name, role="stub", argv=[sys.executable, "-m", "http.server", str(port),
                              "--bind", "127.0.0.1", "--directory", str(tmp_path)], log_file=tmp_path / f"{name}.log")
            (tmp_path / "readyz").write_text("ok")
            p = ManagedProcess(spec)
            p.start()
            procs.append(p)
            backends[name] = (p, port)
        for name, (p, port) in backends.items():
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, timeout=20, what=name)
        port = free_port()
        events = tmp_path / "events.jsonl"
        cfg = {"name": "router-1", "role": "router", "region": None, "host": "127.0.0.1", "port": port,
               "regions": ["us-east", "eu-west"], "secret": "s", "events_file": str(events),
               "peers": {n: {"url": f"http://127.0.0.1:{p}", "region": n.split("-", 1)[1].rsplit("-", 1)[0]}
                         for n, (_, p) in backends.items()},
               "settings": {"check_interval": 0.2, "failure_threshold": 2, "check_timeout": 0.5}}
        path = tmp_path / "router.json"
        path.write_text(json.dumps(cfg))
        router = ManagedProcess(ServerSpec(name="router-1", role="router",
                                           argv=[sys.executable, "-m", "system.router", "--config", str(path)],
                                           log_file=tmp_path / "router.log"))
        router.start()
        procs.append(router)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=30, what="router",
                   alive=router.alive)
        r = httpx.get(f"{base}/route", params={"user": "alice@us-east"}).json()
        assert r["region"] == "us-east" and r["server"].endswith("/ws") and r["ttl_seconds"] == 30
        killed_at = time.time()
        backends["chat-us-east-1"][0].stop(grace=2)
        wait_until(lambda: httpx.get(f"{base}/route", params={"user": "alice@us-east"}).json()["region"] == "eu-west",
                   timeout=10, what="failover")
        lines = [json.loads(x) for x in events.read_text().splitlines()]
        down = [e for e in lines if e["kind"] == "health" and e["state"] == "unhealthy"]
        assert down and down[0]["subject"] == "chat-us-east-1"
        assert down[0]["ts"] - killed_at < 0.2 * 2 + 0.5 + 1.0       # interval x threshold + timeout (+ slack)
        assert any(e["kind"] == "failover" and e["subject"] == "us-east" and e["state"] == "failed_over" for e in lines)
        backends["chat-eu-west-1"][0].stop(grace=2)
        wait_until(lambda: httpx.get(f"{base}/route", params={"user": "alice@us-east"}).status_code == 503,
                   timeout=10, what="no route")
        assert "nineslab_state" in httpx.get(f"{base}/metrics").text
        router.popen.send_signal(signal.SIGTERM)
        assert router.popen.wait(timeout=10) == 0
    finally:
        for p in procs:
            p.stop(grace=2)


def test_chat_without_nats_exits_20_in_one_sentence_and_sigterm_while_starting_exits_0(tmp_path):
    import socket

    def silent_server() -> socket.socket:
        sock = socket.socket()                       # accepts and never says a word: NATS hangs
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.settimeout(60)
        return sock
    silent = silent_server()
    port = silent.getsockname()[1]
    cfg = {"name": "chat-x-1", "role": "chat", "region": "x", "port": free_port(), "regions": ["x"], "secret": "s",
           "deps": {"postgres": "postgresql://postgres@127.0.0.1:1/chat", "redis": "redis://127.0.0.1:1/0",
                    "nats": [f"nats://127.0.0.1:{port}"]}, "settings": {"startup_timeout": 1.5}}
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(cfg))
    r = run_main("chat", path)
    assert r.returncode == 20 and "cannot connect to NATS" in r.stderr and "Traceback" not in r.stderr
    silent.close()
    silent = silent_server()                         # a fresh one: no connection of the first run queued
    cfg["settings"]["startup_timeout"] = 120
    cfg["deps"]["nats"] = [f"nats://127.0.0.1:{silent.getsockname()[1]}"]
    path.write_text(json.dumps(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "system.chat", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True)
    try:
        conn, _ = silent.accept()                    # it is inside start(), waiting for NATS
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        silent.close()
