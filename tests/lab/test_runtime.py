"""The local runtime end to end: `nines up` brings the quick profile up for real, every server
answers through the real setup, `nines status` sees it, `nines down` (and an interrupted or
killed `nines up`) leaves no process behind."""
from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from lab.servers import nats
from lab.state import find_state, load_state
from tests.labstate import emergency_down, nines, reusable_state_dir  # noqa: F401 - used by other modules too

pytestmark = [pytest.mark.infra, pytest.mark.slow]

TINY = """\
schema: nineslab.topology/1
regions: [a, b]
profiles: {quick: tiny}
infrastructure:
  redis-{region}: {role: redis, per_region: true}
  nats-{region}: {role: nats, per_region: true}
"""


def family_of(state) -> list[psutil.Process]:
    procs = []
    for record in state.processes.values():
        try:
            proc = psutil.Process(record.pid)
            if abs(proc.create_time() - record.create_time) < 1:
                procs += [proc] + proc.children(recursive=True)
        except (psutil.Error, TypeError):
            pass
    return procs


def still_running(procs: list[psutil.Process]) -> list[str]:
    return [f"{p.pid}" for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture
def own_tmp():
    """A temp dir outside /tmp/pytest-of-root: every pytest session starting on this machine
    chmods that to 0700, which cuts PostgreSQL (running as its own user) off its data."""
    path = Path(tempfile.mkdtemp(prefix="nineslab-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def lab():
    with reusable_state_dir("quick") as state_dir:
        result = nines("up", "--profile", "quick", "--state-dir", str(state_dir))
        assert result.returncode == 0, result.stderr[-3000:]
        yield state_dir, result


def test_up_starts_every_server_and_each_answers(lab):
    state_dir, result = lab
    state = load_state(state_dir)
    assert "lab up in" in result.stdout
    assert state.profile == "quick" and state.runtime == "local"
    for part in ("pg", "redis", "nats"):
        assert len(state.processes_by(role={"pg": "postgres"}.get(part, part))) == (6 if part == "pg" else 3)
    assert all(r.status == "running" and r.pid and r.create_time for r in state.processes.values())
    assert Path(state.secret_file).stat().st_mode & 0o777 == 0o600

    import asyncpg
    import redis as redis_client

    async def sql(url: str, query: str):
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    for record in state.processes_by(role="postgres"):
        databases = asyncio.run(sql(state.endpoint(record.name),
                                    "SELECT string_agg(datname, ',') FROM pg_database"))
        expected = {"pg-analytics": "analytics", "pg-old": "profiles", "pg-new": "profiles"}.get(record.name, "chat")
        assert expected in databases.split(","), record.name
        assert Path(record.log_file).parent == state_dir / "logs"
        assert Path(record.data_dir).parent == state_dir / "data"
    for record in state.processes_by(role="redis"):
        client = redis_client.Redis.from_url(state.endpoint(record.name), socket_timeout=2)
        assert client.ping()
        client.close()


def test_jetstream_r3_stream_through_the_proxied_cluster(lab):
    state = load_state(lab[0])
    import nats as nats_client
    from system.chat.streams import publish_message

    stream = f"LABTEST{uuid.uuid4().hex[:8].upper()}"

    async def scenario():
        nc = await nats_client.connect(state.endpoint("nats-eu-west"), connect_timeout=5)
        try:
            js = nc.jetstream()
            await js.add_stream(name=stream, subjects=[f"{stream}.>"], num_replicas=3)
            try:
                # a new R3 stream elects its leader after add_stream returns: the chat
                # servers' retried publish waits for it
                acks = [await publish_message(js, f"{stream}.x", f"m{i}", f"m{i}".encode(), timeout=5,
                                              deadline=20) for i in range(3)]
                info = await js.stream_info(stream)
                return [a.seq for a in acks], info.state.messages, len(info.cluster.replicas or [])
            finally:
                await js.delete_stream(stream)
        finally:
            await nc.close()

    seqs, messages, other_replicas = asyncio.run(scenario())
    assert seqs == [1, 2, 3] and messages == 3 and other_replicas == 2


def test_nats_routes_and_services_use_the_proxy_links(lab):
    state = load_state(lab[0])
    from chaos.proxy import FaultProxy

    with FaultProxy(state.proxy.api) as proxy:
        assert set(proxy.list_links()) == set(state.links)
    nodes = state.processes_by(role="nats")
    cluster_ports = {r.ports["cluster"] for r in nodes}
    for node in nodes:
        routes = nats.monitor(node.ports["monitor"], "/routez")["routes"]
        assert {r["remote_name"] for r in routes} == {n.name for n in nodes} - {node.name}
        # every route runs over a proxy socket: never straight to a peer's cluster port
        assert not {r["port"] for r in routes} & cluster_ports, node.name
    for record in state.processes_by(kind="service"):
        config = json.loads(Path(record.config_file).read_text())
        assert config["port"] == record.ports["main"] and config["secret_file"] == state.secret_file
        for link in (l for l in state.links.values() if l.source == record.name):
            assert link.listen in json.dumps(config["deps"]), (record.name, link.listen)
        with urllib.request.urlopen(f"{state.endpoint(record.name)}/healthz", timeout=5) as resp:
            assert resp.status == 200


def test_status_reports_every_process_healthy_and_up_again_changes_nothing(lab):
    state_dir = lab[0]
    before = load_state(state_dir)
    status = nines("status", "--json", "--state-dir", str(state_dir), timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["healthy"] is True
    assert {row["name"] for row in report["processes"]} == set(before.processes)
    again = nines("up", "--state-dir", str(state_dir), timeout=60)
    assert again.returncode == 0 and "already running" in again.stdout
    assert {n: r.pid for n, r in load_state(state_dir).processes.items()} == \
        {n: r.pid for n, r in before.processes.items()}


def test_down_stops_everything_and_keeps_the_logs(lab):
    state_dir = lab[0]
    state = load_state(state_dir)
    procs = family_of(state)
    assert len(procs) >= len(state.processes)
    result = nines("down", "--state-dir", str(state_dir), timeout=120)
    assert result.returncode == 0, result.stderr
    assert still_running(procs) == []
    assert find_state(state_dir) is None and (state_dir / "state.last.json").exists()
    assert all(Path(r.log_file).exists() for r in state.processes.values())
    after = nines("status", "--state-dir", str(state_dir), timeout=60)
    assert after.returncode == 0 and "no lab is running" in after.stdout


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_or_killed_up_leaves_nothing_behind(own_tmp, how):
    tmp_path = own_tmp
    topology = tmp_path / "tiny.yaml"
    topology.write_text(TINY)
    state_dir = tmp_path / "state"
    # SIGINT as a terminal gives it: a shell without job control starts background jobs with
    # SIGINT ignored, Python keeps an inherited "ignore", and CI may be started that way
    up = subprocess.Popen([sys.executable, "-m", "lab.cli", "up", "--topology", str(topology),
                           "--state-dir", str(state_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        recorded: list[psutil.Process] = []
        while time.monotonic() < deadline and up.poll() is None:
            state = find_state(state_dir) if (state_dir / "state.json").exists() else None
            if state is not None and len([r for r in state.processes.values() if r.pid]) >= 2:
                recorded = family_of(state)
                break
            time.sleep(0.02)
        assert recorded, "nines up recorded no process in time"
        up.send_signal(getattr(signal, how))
        _, err = up.communicate(timeout=60)
        if how == "SIGINT":
            assert up.returncode == 130 and "interrupted" in err
        else:
            assert up.returncode == -signal.SIGKILL
            state = find_state(state_dir)
            assert state is not None          # the file a crashed `up` leaves is enough for `down`
            recorded = family_of(state)
            down = nines("down", "--state-dir", str(state_dir), timeout=60)
            assert down.returncode == 0, down.stderr
        deadline = time.monotonic() + 15
        while still_running(recorded) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert still_running(recorded) == []
        assert find_state(state_dir) is None
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        emergency_down(state_dir)


@pytest.mark.parametrize("args, message", [
    (["up", "--profile", "bogus"], "Invalid value for '--profile'"),
    (["up", "--runtime", "kubernetes"], "Invalid value for '--runtime'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = nines(*args, "--state-dir", str(tmp_path / "s"), timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bad_topology_file_names_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("role: redis", "role: memcached"))
    result = nines("up", "--topology", str(bad), "--state-dir", str(tmp_path / "s"), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{bad}:5: infrastructure.redis-{{region}}.role: must be 'postgres', 'redis' or 'nats'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not __import__("lab.runtime.local", fromlist=["x"]).service_available("chat"),
                    reason="system.chat is not built yet")
def test_a_failure_half_way_stops_what_was_started(own_tmp):
    # a chat server without its postgres dependency refuses its config and exits
    broken = TINY + """services:
  chat-{region}-{n}:
    role: chat
    per_region: true
    replicas: {quick: 1}
    deps:
      redis: {to: "redis-{region}"}
"""
    topology = own_tmp / "broken.yaml"
    topology.write_text(broken)
    state_dir = own_tmp / "state"
    try:
        result = nines("up", "--topology", str(topology), "--state-dir", str(state_dir), timeout=120)
        assert result.returncode == 20
        last_line = result.stderr.strip().splitlines()[-1]
        assert "exited while starting" in last_line and "Traceback" not in result.stderr
        assert find_state(state_dir) is None
        record = json.loads((state_dir / "state.last.json").read_text())
        pids = [(p["pid"], p["create_time"]) for p in record["processes"].values() if p["pid"]]
        assert pids and all(p["status"] == "stopped" for p in record["processes"].values())
        for pid, created in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                assert abs(proc.create_time() - created) > 1 or proc.status() == psutil.STATUS_ZOMBIE
    finally:
        emergency_down(state_dir)


def test_toxiproxy_url_names_a_proxy_the_lab_uses_but_does_not_own(own_tmp):
    from chaos.proxy import FaultProxy
    from lab.servers.base import free_port

    topology = own_tmp / "tiny.yaml"
    topology.write_text(TINY)
    state_dir = own_tmp / "state"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "chaos.proxy", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not FaultProxy(url).healthy():
            assert time.monotonic() < deadline and server.poll() is None, "proxy server did not start"
            time.sleep(0.05)
        result = nines("up", "--topology", str(topology), "--state-dir", str(state_dir),
                       env={"TOXIPROXY_URL": f"127.0.0.1:{port}"}, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        state = load_state(state_dir)
        assert state.proxy.api == url and state.proxy.managed is False and "proxy" not in state.processes
        with FaultProxy(url) as proxy:
            assert set(proxy.list_links()) == {"nats-a>nats-b", "nats-b>nats-a"} == set(state.links)
        assert nines("down", "--state-dir", str(state_dir), timeout=60).returncode == 0
        assert server.poll() is None            # not the lab's to stop
    finally:
        emergency_down(state_dir)
        server.terminate()
        server.wait(10)
