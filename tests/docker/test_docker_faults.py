"""The docker.* fault driver against real containers: each fault does what it says, and its
rollback brings the container back — after the fault, when applying fails half way, when the
engine raises, and from the record alone when the engine is killed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from chaos import recovery
from chaos.experiment import Fault
from chaos.fault_session import FaultSession
from chaos.faults.docker import DockerDriver
from lab.errors import LabError
from lab.state import LabState, ProcessRecord, save_state

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fault(kind: str, target) -> Fault:
    return Fault(kind=kind, target=target, at=0, **{"for": 5})


def status(client, name: str) -> str:
    container = client.containers.get(name)
    container.reload()
    return container.status


def on_network(client, name: str, network: str) -> bool:
    container = client.containers.get(name)
    container.reload()
    return network in container.attrs["NetworkSettings"]["Networks"]


@pytest.fixture
def lab(docker_client, containers, tmp_path):
    """A docker lab state over the test containers (svc-a in region r1, svc-b in r2), and
    every container put back afterwards — running and connected — whatever a test left."""
    names = containers["names"]
    processes = {s: ProcessRecord(name=s, role="chat", region=region, container=names[s])
                 for s, region in (("svc-a", "r1"), ("svc-b", "r2"))}
    processes["svc-gone"] = ProcessRecord(name="svc-gone", role="chat", region="r3",
                                          container=f"{names['svc-a']}-never-created")
    state = LabState(runtime="docker", profile="quick", state_dir=str(tmp_path), created_at=time.time(),
                     processes=processes, network=containers["network"])
    save_state(state)
    yield state
    network = docker_client.networks.get(containers["network"])
    for service, name in names.items():
        container = docker_client.containers.get(name)
        if container.status == "paused":
            container.unpause()
        elif container.status != "running":
            container.start()
        if not on_network(docker_client, name, containers["network"]):
            network.connect(container, aliases=[service])


@pytest.mark.parametrize("kind, during", [("docker.kill", "exited"), ("docker.pause", "paused"),
                                          ("docker.stop", "exited")])
def test_fault_holds_until_rollback_and_rollback_is_idempotent(docker_client, containers, lab, kind, during):
    a, b = containers["names"]["svc-a"], containers["names"]["svc-b"]
    driver = DockerDriver(lab)
    applied = driver.plan(fault(kind, "svc-a"))
    assert applied.targets == ["svc-a"]
    driver.apply(applied)
    assert status(docker_client, a) == during
    assert status(docker_client, b) == "running"
    driver.rollback(applied)
    assert status(docker_client, a) == "running"
    driver.rollback(applied)                     # a second undo changes nothing and does not fail
    assert status(docker_client, a) == "running"


def test_restart_starts_the_container_anew(docker_client, containers, lab):
    a = containers["names"]["svc-a"]
    started = docker_client.containers.get(a).attrs["State"]["StartedAt"]
    driver = DockerDriver(lab)
    applied = driver.plan(fault("docker.restart", "svc-a"))
    driver.apply(applied)
    container = docker_client.containers.get(a)
    assert container.status == "running" and container.attrs["State"]["StartedAt"] != started
    driver.rollback(applied)
    assert status(docker_client, a) == "running"


def test_disconnect_partitions_and_reconnect_gives_the_compose_alias_back(docker_client, containers, lab):
    a, b, network = containers["names"]["svc-a"], containers["names"]["svc-b"], containers["network"]
    resolve = ["getent", "hosts", "svc-a"]
    assert docker_client.containers.get(b).exec_run(resolve).exit_code == 0
    driver = DockerDriver(lab)
    applied = driver.plan(fault("docker.disconnect", "region:r1"))
    assert applied.targets == ["svc-a"]
    driver.apply(applied)
    assert not on_network(docker_client, a, network)
    assert docker_client.containers.get(b).exec_run(resolve).exit_code != 0
    driver.rollback(applied)
    driver.rollback(applied)
    assert on_network(docker_client, a, network)
    found = docker_client.containers.get(b).exec_run(resolve)
    ip = docker_client.containers.get(a).attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    assert found.exit_code == 0 and found.output.decode().split()[0] == ip


def test_half_applied_fault_is_undone_and_the_missing_container_named(docker_client, containers, lab):
    a = containers["names"]["svc-a"]
    with FaultSession(lab.state_dir, {"docker": DockerDriver(lab)}, handle_signals=False) as session:
        with pytest.raises(LabError, match=r"docker.pause svc-gone: no such container"):
            session.apply(session.plan(fault("docker.pause", ["svc-a", "svc-gone"])))
        assert status(docker_client, a) == "running"          # the half that was applied, undone
        assert any("svc-gone" in e for e in session.errors)    # the half that cannot be, reported


def test_an_error_in_the_engine_rolls_every_fault_back(docker_client, containers, lab):
    a, b = containers["names"]["svc-a"], containers["names"]["svc-b"]
    with pytest.raises(RuntimeError, match="engine failed"):
        with FaultSession(lab.state_dir, {"docker": DockerDriver(lab)}, handle_signals=False) as session:
            session.apply(session.plan(fault("docker.kill", "svc-a")))
            session.apply(session.plan(fault("docker.pause", "svc-b")))
            assert (status(docker_client, a), status(docker_client, b)) == ("exited", "paused")
            raise RuntimeError("engine failed")
    assert (status(docker_client, a), status(docker_client, b)) == ("running", "running")
    assert recovery.leftovers(lab.state_dir, include_live_owners=True) == []


def test_a_killed_engine_s_fault_is_healed_from_its_record(docker_client, containers, lab):
    a = containers["names"]["svc-a"]
    engine = textwrap.dedent("""
        import os, sys
        from chaos.experiment import Fault
        from chaos.fault_session import FaultSession
        from chaos.faults.base import drivers_for_state
        from lab.state import find_state
        state = find_state(sys.argv[1])
        session = FaultSession(sys.argv[1], drivers_for_state(state), experiment="engine-killed")
        with session:
            session.apply(session.plan(Fault(kind="docker.pause", target="svc-a", at=0, **{"for": 5})))
            os.kill(os.getpid(), 9)
    """)
    done = subprocess.run([sys.executable, "-c", engine, lab.state_dir], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    assert status(docker_client, a) == "paused"
    [(path, record)] = recovery.leftovers(lab.state_dir)
    assert json.loads(path.read_text())["kind"] == "docker.pause" == record["kind"]
    healed = recovery.heal_leftovers(lab.state_dir)
    assert len(healed) == 1 and healed[0].startswith("docker.pause svc-a") and "failed" not in healed[0]
    assert status(docker_client, a) == "running"
    assert recovery.leftovers(lab.state_dir, include_live_owners=True) == []
