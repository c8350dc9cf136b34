"""End to end: chat load against the real quick lab (``nines up`` in a temp state dir, then down).

Set ``NINES_TEST_STATE_DIR`` to a lab that is already up to skip the ~35 s start.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtests.runner import RunConfig, run
from loadtests.samples import read_samples
from loadtests.scenarios import get_scenario

pytestmark = [pytest.mark.slow, pytest.mark.infra]


def nines(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def lab_state(tmp_path_factory):
    given = os.environ.get("NINES_TEST_STATE_DIR")
    if given:
        yield Path(given)
        return
    state = tmp_path_factory.mktemp("lab") / "state"
    try:
        r = nines("up", "--profile", "quick", "--state-dir", str(state), timeout=240)
        if r.returncode != 0:
            pytest.fail(f"nines up failed ({r.returncode}): {r.stderr[-2000:]}")
        yield state
    finally:
        nines("down", "--state-dir", str(state), timeout=120)


def wait_routable(state_dir: Path, deadline_s: float = 60.0) -> None:
    """Every router routes a user of every region (health checks have seen the servers)."""
    import httpx

    from loadtests.endpoints import load_endpoints, regions_of

    eps = load_endpoints(state_dir)
    deadline = time.monotonic() + deadline_s
    pending = {(r, g) for r in eps.routers for g in regions_of(eps.chat)}
    while pending and time.monotonic() < deadline:
        for router, region in list(pending):
            try:
                if httpx.get(f"{router}/route", params={"user": f"probe@{region}"}, timeout=2).status_code == 200:
                    pending.discard((router, region))
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    assert not pending, f"the lab never routed {sorted(pending)}"


def test_chat_load_on_the_quick_lab(lab_state, tmp_path):
    wait_routable(lab_state)
    out = tmp_path / "chat"
    doc = run(RunConfig(scenario=get_scenario("chat"), rate=5, duration=5, out=out, state_dir=lab_state,
                        concurrency=6))
    assert doc["status"] == "completed"
    ops = doc["operations"]
    assert ops["chat.send"]["ok"] == 25 and ops["chat.send"]["error"] == 0, ops   # every arrival acked
    assert ops["chat.deliver"]["ok"] >= 20                                       # and (nearly) all delivered
    assert doc["rps"] > 0 and doc["consistent"] and doc["locust"]["failures"] == 0
    samples = list(read_samples(out / "samples.csv"))
    assert len(samples) == doc["locust"]["requests"]
    ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    sent = {e["id"] for e in ledger if e["kind"] == "chat"}
    received = [e["id"] for e in ledger if e["kind"] == "chat_received"]
    assert len(sent) == 25 and set(received) <= sent and len(received) == len(set(received))
    assert {e["to_region"] for e in ledger if e["kind"] == "chat"} <= {"us-east", "eu-west", "ap-south"}


def _ledger(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]


def test_a_second_run_gets_none_of_the_first_runs_history_even_after_a_reconnect(lab_state, tmp_path):
    """Two runs with one seed against one lab, as the main job runs its experiments. Each run's
    users are its own: when a restarted chat server makes them reconnect and resume, they get
    none of the first run's messages (the replay that used to stall a run's first seconds), and
    their first deliveries are not held for the server's resume grace (2 s) either."""
    import threading

    from lab import process_control
    from loadtests.runner import read_progress

    wait_routable(lab_state)
    chat = get_scenario("chat")
    first = run(RunConfig(scenario=chat, rate=10, duration=8, out=tmp_path / "first", state_dir=lab_state,
                          concurrency=10))
    assert first["status"] == "completed" and first["operations"]["chat.send"]["ok"] >= 70

    second_out = tmp_path / "second"
    restarted: list[float] = []

    def restart_when_users_have_history() -> None:
        # a user resumes from what it saw: restart once most users have received something
        deadline = time.monotonic() + 60
        while read_progress(second_out)["ok"] < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        process_control.restart(lab_state, "chat-us-east-1")
        restarted.append(time.time())

    restarter = threading.Thread(target=restart_when_users_have_history, daemon=True)
    restarter.start()
    second = run(RunConfig(scenario=chat, rate=10, duration=14, out=second_out, state_dir=lab_state,
                           concurrency=10))
    restarter.join(60)
    assert second["status"] == "completed" and restarted, "the chat server was not restarted mid-run"
    assert second["run_id"] != first["run_id"]

    ledger = _ledger(second_out)
    acked = {e["id"] for e in ledger if e["kind"] == "chat"}
    received = [e for e in ledger if e["kind"] == "chat_received"]
    assert any(e["user"].endswith("@us-east") and e["ts"] > restarted[0] for e in received), \
        "no us-east user reconnected after the restart"
    foreign = [e for e in received if e["id"] not in acked]
    first_ids = {e["id"] for e in _ledger(tmp_path / "first") if e["kind"] == "chat"}
    assert not foreign, (f"{len(foreign)} deliveries of messages this run never sent "
                         f"({sum(e['id'] in first_ids for e in foreign)} of the first run's), e.g. {foreign[:2]}")

    samples = [s for s in read_samples(second_out / "samples.csv") if s.operation.startswith("chat.")]
    began = min(s.intended_ts for s in samples if s.operation == "chat.send")
    deliveries = [s for s in samples if s.operation == "chat.deliver"]
    oldest = min(deliveries, key=lambda s: s.intended_ts)
    assert oldest.intended_ts >= began - 0.5, f"a delivery of a message older than the run: {oldest}"
    early = sorted(s.latency_ms for s in deliveries if s.intended_ts < began + 2.0)
    assert early and early[len(early) // 2] < 500.0, f"early deliveries held back: {early}"
