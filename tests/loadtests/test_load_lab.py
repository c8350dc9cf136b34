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
