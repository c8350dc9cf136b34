"""End to end on the whole quick lab: a short chat-server crash under real chat load.

With the routers' health checks working, the crash is detected and the verdict is passed.
Then the mechanism is deliberately broken — both routers restarted with a failure threshold
they never reach, so they never mark a server unhealthy and never fail over — and the same
experiment must turn red. One lab serves both (routers check every second, so it stays short).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from chaos import recovery
from chaos.engine import EngineOptions, run_experiment
from chaos.experiment import parse_experiment
from lab import process_control
from lab.runtime import LabConfig, get_runtime
from lab.state import find_state, load_state

pytestmark = [pytest.mark.slow, pytest.mark.infra, pytest.mark.timeout(400)]

TOPOLOGY = Path(__file__).resolve().parents[2] / "lab" / "topology.yaml"

EXPERIMENT = """
schema: nineslab.experiment/1
name: chat-crash-short
title: A chat server crashes (short)
load: {scenario: chat, rate: 15, duration: 26, warmup: 2}
hypothesis:
  probes:
    - {name: availability, sli: availability, tolerance: {min: 0.98}}
    - {name: availability-during, sli: availability, phases: [during], window_seconds: 4, tolerance: {min: 0.4}}
faults:
  - id: crash
    kind: process.kill
    target: chat-us-east-1
    at: 6
    for: 12
    failure_mode: chat_server_crash
    expect: {detected: true, detection_within: 8, recovery_within: 10}
slo: {recovery_hold_seconds: 2, settle_seconds: 4}
invariants: [chat.no_loss]
"""


def _router_settings(settings: dict, threshold: int) -> None:
    # both the topology's names and the router's own, whichever reaches the router
    settings.update(check_interval_seconds=1, check_interval=1, unhealthy_after=threshold,
                    failure_threshold=threshold)


@pytest.fixture(scope="module")
def lab():
    # not under pytest's basetemp: a concurrent pytest session resets that to mode 0700, which
    # locks PostgreSQL (running as its own user) out of its data directory mid-initdb
    root = Path(tempfile.mkdtemp(prefix="nineslab-chaos-e2e-"))
    root.chmod(0o755)
    doc = yaml.safe_load(TOPOLOGY.read_text())
    _router_settings(doc["services"]["router-{n}"]["settings"], 2)
    (root / "topology.yaml").write_text(yaml.safe_dump(doc))
    state_dir = root / "lab"
    runtime = get_runtime("local")
    try:
        runtime.up(LabConfig(state_dir=state_dir, profile="quick", topology_file=root / "topology.yaml"),
                   lambda line: None)
        yield state_dir
    finally:
        state = find_state(state_dir)
        if state is not None:
            runtime.down(state, lambda line: None)
        leftovers = list(recovery.faults_dir(state_dir).glob("*.json"))
        shutil.rmtree(root, ignore_errors=True)
        assert not leftovers


def _run(state_dir: Path, out: Path) -> dict:
    exp = parse_experiment(EXPERIMENT, path="chat-crash-short.yaml")
    return run_experiment(exp, EngineOptions(state_dir=state_dir, out_dir=out, seed=7, handle_signals=False,
                                             integrity_settle_seconds=15))


def test_a_chat_server_crash_is_detected_and_passes(lab, tmp_path):
    j = _run(lab, tmp_path)
    assert j["status"] == "completed", j["errors"]
    m = j["measurements"][0]
    assert m["detection_seconds"] is not None and m["detection_seconds"] <= 8, m
    assert m["detected_by"]["kind"] == "health" and m["detected_by"]["subject"] == "chat-us-east-1"
    assert m["recovery_seconds"] is not None
    assert j["invariants"][0]["ok"] is True and j["invariants"][0]["info"]["acked"] > 50
    assert j["verdict"] == "passed", j["reasons"]
    assert load_state(lab).processes["chat-us-east-1"].status == "running"


def test_with_router_failover_broken_the_verdict_turns_red(lab, tmp_path):
    state = load_state(lab)
    for name in ("router-1", "router-2"):
        config = Path(state.processes[name].config_file)
        doc = json.loads(config.read_text())
        _router_settings(doc["settings"], 1_000_000)
        config.write_text(json.dumps(doc))
        process_control.restart(lab, name)
    j = _run(lab, tmp_path)
    assert j["status"] == "completed", j["errors"]
    assert j["measurements"][0]["detection_seconds"] is None
    assert j["verdict"] in ("deviated", "invariant_violated")
    assert any("never noticed" in r for r in j["reasons"]), j["reasons"]
