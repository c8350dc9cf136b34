"""End to end on the whole quick lab, one lab for the module (routers check every second).

First the quick suite as CI runs it — ``nines chaos run`` of the quick profile's experiments
at half their schedule: every verdict must be passed and the exit code (the gate's) 0. Then
mechanisms are deliberately broken and an experiment must turn red: the routers' failover
(a failure threshold they never reach), a region's PostgreSQL breaker (never opens).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from chaos import journal as journal_mod, recovery
from chaos.engine import EngineOptions, run_experiment
from chaos.experiment import library, library_dir, load_experiment, parse_experiment
from lab.errors import ExitCode
from lab.runtime import get_runtime
from lab.state import find_state, load_state

pytestmark = [pytest.mark.slow, pytest.mark.infra, pytest.mark.timeout(900)]

_NINES = [sys.executable, "-m", "lab.cli"]
QUICK_SCALE = 0.5          # the quick suite at half its schedule: CI time, same criteria
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
        # started by `nines up` as CI does: the servers outlive it and are reaped by init, whereas
        # children of this test process would linger as zombies after a kill fault, and the
        # runtime's kill waits for a zombie to go (10 s) — the engine's schedule would slip
        up = subprocess.run(_NINES + ["up", "--profile", "quick", "--topology", str(root / "topology.yaml"),
                                      "--state-dir", str(state_dir)], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
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


def test_the_quick_suite_passes_and_the_gate_is_green(lab, tmp_path):
    out = tmp_path / "run"
    names = [e.name for e in library("quick")]
    proc = subprocess.run(_NINES + ["chaos", "run", *names, "--out", str(out),
                           "--state-dir", str(lab), "--time-scale", str(QUICK_SCALE)],
                          capture_output=True, text=True, timeout=600)
    journals = {n: journal_mod.read(out / "experiments" / n / "journal.json") for n in names}
    for name, j in journals.items():
        broken = [{k: i[k] for k in ("name", "counts", "examples")} for i in j["invariants"] if not i["ok"]]
        assert j["status"] == "completed" and not broken, (name, j["errors"], broken)
        assert j["verdict"] == "passed", (name, j["reasons"])
        assert j["time_scale"] == QUICK_SCALE and all(f["rolled_back"] for f in j["faults"])
        slipped = [f["id"] for f in j["faults"] if f["end"] - j["t0"] > f["at"] + f["for"] + 3]
        assert not slipped, (name, "rolled back more than 3 s late", slipped)
    assert proc.returncode == ExitCode.OK, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    m = journals["chat-server-crash"]["measurements"][0]
    assert m["detection_seconds"] is not None and m["detection_seconds"] <= 8, m
    assert m["detected_by"]["kind"] == "health" and m["detected_by"]["subject"] == "chat-us-east-1"
    assert m["recovery_seconds"] is not None
    assert load_state(lab).processes["chat-us-east-1"].status == "running"


def _restart(state_dir: Path, name: str) -> None:
    """Restart a lab process from a short-lived child, so init (not this test) is its parent."""
    code = "import sys; from lab import process_control; process_control.restart(sys.argv[1], sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, str(state_dir), name], check=True, timeout=120)


@contextlib.contextmanager
def _settings_changed(state_dir: Path, names: list[str], change: Callable[[dict], None]) -> Iterator[None]:
    """Restart ``names`` with ``change(settings)`` applied to their config; put it back after."""
    state = load_state(state_dir)
    originals = {n: Path(state.processes[n].config_file).read_text() for n in names}
    try:
        for name, text in originals.items():
            doc = json.loads(text)
            change(doc["settings"])
            Path(state.processes[name].config_file).write_text(json.dumps(doc))
            _restart(state_dir, name)
        yield
    finally:
        for name, text in originals.items():
            Path(state.processes[name].config_file).write_text(text)
            _restart(state_dir, name)


def test_with_the_postgres_breaker_disabled_postgres_down_turns_red(lab, tmp_path):
    exp = load_experiment(library_dir() / "postgres-down.yaml")
    never = lambda settings: settings.update(breaker_failures=1_000_000)  # noqa: E731
    with _settings_changed(lab, ["chat-us-east-1"], never):
        j = run_experiment(exp, EngineOptions(state_dir=lab, out_dir=tmp_path, seed=7, handle_signals=False,
                                              integrity_settle_seconds=15, time_scale=QUICK_SCALE))
    assert j["status"] == "completed", j["errors"]
    assert j["measurements"][0]["detection_seconds"] is None
    assert j["verdict"] in ("deviated", "invariant_violated")
    assert any("pg-cut: the system never noticed" in r for r in j["reasons"]), j["reasons"]


def test_with_router_failover_broken_the_verdict_turns_red(lab, tmp_path):
    with _settings_changed(lab, ["router-1", "router-2"], lambda settings: _router_settings(settings, 1_000_000)):
        j = _run(lab, tmp_path)
    assert j["status"] == "completed", j["errors"]
    assert j["measurements"][0]["detection_seconds"] is None
    assert j["verdict"] in ("deviated", "invariant_violated")
    assert any("never noticed" in r for r in j["reasons"]), j["reasons"]
