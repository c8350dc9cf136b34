"""The process fault driver and guaranteed rollback, on real servers and real signals."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis as redis_lib

from chaos import recovery
from chaos.experiment import Fault
from chaos.fault_session import FaultSession
from chaos.faults.process import ProcessDriver
from controllers import GroupController, PidController, fake_state, is_stopped

HERE = Path(__file__).parent


def _fault(kind, target, at=0, duration=1):
    return Fault.model_validate({"kind": kind, "target": target, "at": at, "for": duration, "id": "f1"})


def _ping(port, timeout=0.5):
    try:
        return redis_lib.Redis(port=port, socket_timeout=timeout, socket_connect_timeout=timeout).ping()
    except redis_lib.RedisError:
        return False


def _wait(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.infra
def test_pause_and_kill_of_a_real_redis_are_rolled_back(servers, tmp_path):
    r = servers.redis("redis-us-east")
    state = fake_state({"redis-us-east": "us-east"}, str(tmp_path))
    ctl = GroupController({"redis-us-east": r.process})
    driver = ProcessDriver(state, ctl)
    with FaultSession(str(tmp_path), {"process": driver}, experiment="t") as session:
        applied = session.apply(session.plan(_fault("process.pause", "redis-*")))
        assert applied.targets == ["redis-us-east"]
        assert list(recovery.faults_dir(tmp_path).glob("*.json"))       # durable while active
        assert not _ping(r.port)
        session.rollback("f1")
        assert _wait(lambda: _ping(r.port))
        session.apply(session.plan(_fault("process.kill", "region:us-east")))
        assert not r.process.alive()
    # leaving the block restarted the killed server
    assert _wait(lambda: _ping(r.port), 20)
    assert not list(recovery.faults_dir(tmp_path).glob("*.json"))
    assert ("start", "redis-us-east") in ctl.calls


def test_an_exception_in_the_engine_rolls_back(tmp_path):
    target = subprocess.Popen(["sleep", "60"])
    try:
        state = fake_state({"worker": None}, str(tmp_path))
        driver = ProcessDriver(state, PidController({"worker": target.pid}))
        with pytest.raises(RuntimeError):
            with FaultSession(str(tmp_path), {"process": driver}) as session:
                session.apply(session.plan(_fault("process.pause", "worker")))
                assert _wait(lambda: is_stopped(target.pid))
                raise RuntimeError("engine bug")
        assert _wait(lambda: not is_stopped(target.pid))
        assert not list(recovery.faults_dir(tmp_path).glob("*.json"))
    finally:
        target.kill()
        target.wait()


ENGINE = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    from chaos.experiment import Fault
    from chaos.fault_session import FaultSession
    from chaos.faults.process import ProcessDriver
    from controllers import PidController, fake_state
    state = fake_state({{"worker": None}}, {state_dir!r})
    driver = ProcessDriver(state, PidController({{"worker": {pid}}}))
    fault = Fault.model_validate({{"kind": "process.pause", "target": "worker", "at": 0, "for": 1, "id": "f1"}})
    with FaultSession({state_dir!r}, {{"process": driver}}, experiment="sub") as s:
        s.apply(s.plan(fault))
        print("applied", flush=True)
        while True:
            time.sleep(0.1)
""")


def _engine(tmp_path, pid):
    code = ENGINE.format(here=str(HERE), state_dir=str(tmp_path), pid=pid)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=str(HERE.parent.parent))
    assert proc.stdout.readline().strip() == "applied"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_engine_rolls_back(tmp_path, sig):
    target = subprocess.Popen(["sleep", "60"])
    try:
        engine = _engine(tmp_path, target.pid)
        assert _wait(lambda: is_stopped(target.pid))
        engine.send_signal(sig)
        engine.wait(timeout=20)
        assert _wait(lambda: not is_stopped(target.pid))
        assert not list(recovery.faults_dir(tmp_path).glob("*.json"))
    finally:
        target.kill()
        target.wait()


def test_a_crashed_engine_is_healed_by_the_next_one(tmp_path):
    target = subprocess.Popen(["sleep", "60"])
    try:
        engine = _engine(tmp_path, target.pid)
        engine.kill()                                   # SIGKILL: no chance to roll back
        engine.wait(timeout=10)
        assert _wait(lambda: is_stopped(target.pid))
        records = list(recovery.faults_dir(tmp_path).glob("*.json"))
        assert len(records) == 1
        assert json.loads(records[0].read_text())["kind"] == "process.pause"
        state = fake_state({"worker": None}, str(tmp_path))
        healed = recovery.heal_leftovers(tmp_path, drivers={
            "process": ProcessDriver(state, PidController({"worker": target.pid}))})
        assert healed == ["process.pause worker (f1 of sub)"]
        assert _wait(lambda: not is_stopped(target.pid))
        assert recovery.heal_leftovers(tmp_path) == []
    finally:
        target.kill()
        target.wait()


def test_a_live_engines_faults_are_not_healed(tmp_path):
    target = subprocess.Popen(["sleep", "60"])
    try:
        engine = _engine(tmp_path, target.pid)
        try:
            assert recovery.heal_leftovers(tmp_path, drivers={}) == []
            assert _wait(lambda: is_stopped(target.pid))
        finally:
            engine.send_signal(signal.SIGINT)
            engine.wait(timeout=20)
    finally:
        target.kill()
        target.wait()
