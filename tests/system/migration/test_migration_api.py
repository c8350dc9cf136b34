"""The migration API on real stores: bad input answers clearly, the phase rules hold, the
sync job resumes from its checkpoint, and the ``nines migrate`` commands talk to the service."""
from __future__ import annotations

import json
import subprocess
import sys

import asyncpg
import httpx
import pytest

from system.migration.phases import Phase
from system.migration.store_new import NewStore
from system.migration.store_old import OldStore
from system.migration.sync import SyncJob
from system.migration import verifier

pytestmark = [pytest.mark.infra]

GOOD = {"display_name": "Ada", "home_region": "eu-west", "settings": {"theme": "dark"}}


def test_bad_input_is_answered_clearly(env):
    _, url = env.service()
    with httpx.Client(base_url=url, timeout=10) as c:
        r = c.put("/profiles/u1", json={**GOOD, "display_name": ""})
        assert r.status_code == 422 and r.json()["field"] == "display_name"
        r = c.put("/profiles/u1", json={**GOOD, "home_region": "mars"})
        assert r.status_code == 422 and "home_region" in r.json()["error"]
        r = c.put("/profiles/u1", json={"display_name": "x", "home_region": "us-east", "settings": []})
        assert r.status_code == 422 and r.json()["field"] == "settings"
        r = c.put("/profiles/u1", json={**GOOD, "settings": {"a": "nul\u0000"}})
        assert r.status_code == 422 and r.json()["field"] == "settings"
        r = c.put("/profiles/bad%20id", json=GOOD)
        assert r.status_code == 422 and r.json()["field"] == "profile_id"
        r = c.put("/profiles/u1", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert c.get("/profiles/nobody").status_code == 404
        assert "nobody" in c.get("/profiles/nobody").json()["error"]
        r = c.put("/profiles/u1", json=GOOD)
        assert r.status_code == 200 and r.json()["version"] == 1
        assert c.put("/profiles/u1", json=GOOD).json()["version"] == 2
        # phases: jumps are refused, unknown names are 422, first phase has no back
        r = c.post("/migration/phase", json={"phase": "decommission"})
        assert r.status_code == 409 and "one phase at a time" in r.json()["error"]
        assert c.post("/migration/phase", json={"phase": "nope"}).status_code == 422
        r = c.post("/migration/phase/back")
        assert r.status_code == 409 and "first phase" in r.json()["error"]
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").json()["phase"] == "dual_write"
        assert "migration_requests_total" in c.get("/metrics").text


def test_phase_is_durable_across_restarts(env):
    proc, url = env.service()
    assert httpx.post(url + "/migration/phase", json={"phase": "dual_read"}, timeout=30).status_code == 200
    proc.stop()
    _, url2 = env.service()
    assert httpx.get(url2 + "/migration/phase").json()["phase"] == "dual_read"


async def test_sync_resumes_from_checkpoint_and_is_idempotent(env):
    old, new = OldStore("pg-old", env.old_direct), NewStore("pg-new", env.new_direct)
    try:
        await old.ping(), await new.ping()
        conn = await asyncpg.connect(env.old_direct)
        await conn.execute(
            "INSERT INTO profiles_v1 (id, doc) SELECT 'p' || lpad(i::text, 6, '0'), jsonb_build_object("
            "'display_name', 'n' || i, 'home_region', 'us-east', 'settings', '{}'::jsonb, 'version', 1) "
            "FROM generate_series(1, 5000) i")
        await conn.close()

        class Crash(Exception):
            pass

        async def crash_after_first_batch(_seconds: float) -> None:
            raise Crash()

        job = SyncJob(old, new, lambda: Phase.DUAL_WRITE, batch_size=1000, max_rows_per_second=1000,
                      sleep=crash_after_first_batch)
        with pytest.raises(Crash):
            await job.run()
        assert (await new.checkpoint("backfill"))[0] == "p001000"
        report = await SyncJob(old, new, lambda: Phase.DUAL_WRITE, batch_size=1000).run()
        assert report.resumed_from == "p001000" and report.scanned == 4000 and report.copied == 4000
        assert (await verifier.verify(old, new)).mismatches == 0
        again = await SyncJob(old, new, lambda: Phase.DUAL_WRITE, batch_size=1000).run()
        assert again.scanned == 5000 and again.copied == 0
    finally:
        await old.close(), await new.close()


def test_nines_migrate_commands(env, tmp_path, capsys):
    from lab.cli import main
    _, url = env.service()
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text(json.dumps({"schema": "nineslab.state/1", "endpoints": {"migration": url}}))

    def nines(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(["migrate", "--state-dir", str(state), *args])
        out, err = capsys.readouterr()
        return exit_info.value.code, out.strip(), err

    assert nines("phase") == (0, "phase: dual_write", "")
    code, _, err = nines("phase", "set", "read_new")
    assert code == 2 and "one phase at a time" in err
    assert "sync: scanned" in nines("sync")[1]
    assert nines("verify")[0] == 0
    assert nines("phase", "set", "dual-read")[1] == "phase: dual_read (was dual_write)"
    assert nines("phase", "back")[1] == "phase: dual_write (was dual_read)"
    # as a user sees it: a subprocess, one sentence, the exit code, no traceback
    r = subprocess.run([sys.executable, "-m", "lab.cli", "migrate", "--state-dir", str(state), "phase", "set",
                        "decommission"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot jump from dual_write to decommission" in r.stderr
    assert "Traceback" not in r.stderr
    with pytest.raises(SystemExit) as exit_info:
        main(["migrate", "--state-dir", str(tmp_path / "none"), "phase"])
    assert exit_info.value.code == 2 and "no lab state file" in capsys.readouterr().err


async def test_dual_read_counts_mismatches_and_read_new_falls_back_to_old(env):
    _, url = env.service()
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        assert (await c.post("/migration/phase", json={"phase": "dual_read"})).status_code == 200
        conn = await asyncpg.connect(env.old_direct)
        try:   # a row only old has (as if written before the migration began)
            await conn.execute("INSERT INTO profiles_v1 (id, doc) VALUES ('legacy', '{\"display_name\": \"L\", "
                               "\"home_region\": \"us-east\", \"settings\": {}, \"version\": 3}')")
        finally:
            await conn.close()
        r = await c.get("/profiles/legacy")
        assert r.status_code == 200 and r.json()["version"] == 3          # old is still the truth
        assert "migration_read_mismatches_total 1.0" in (await c.get("/metrics")).text
        refused = await c.post("/migration/phase", json={"phase": "read_new"})
        assert refused.status_code == 409 and "legacy" in refused.json()["error"]
        assert (await c.post("/migration/sync")).json()["repaired"] == 1   # the mismatch was queued
        assert (await c.post("/migration/phase", json={"phase": "read_new"})).status_code == 200
        conn = await asyncpg.connect(env.old_direct)
        try:
            await conn.execute("INSERT INTO profiles_v1 (id, doc) VALUES ('only-old', '{\"display_name\": \"O\", "
                               "\"home_region\": \"eu-west\", \"settings\": {}, \"version\": 1}')")
        finally:
            await conn.close()
        r = await c.get("/profiles/only-old")
        assert r.status_code == 200 and r.json()["display_name"] == "O"   # a miss in new: read from old


def test_walking_back_from_write_new_only_loses_nothing(env):
    _, url = env.service()
    with httpx.Client(base_url=url, timeout=30) as c:
        for phase in ("dual_read", "read_new", "write_new_only"):
            assert c.post("/migration/phase", json={"phase": phase}).status_code == 200
        written = c.put("/profiles/late", json={**GOOD, "display_name": "written in write_new_only"}).json()
        assert c.post("/migration/phase/back").json()["phase"] == "read_new"
        assert c.post("/migration/phase/back").json()["phase"] == "dual_read"   # old is the truth again
        got = c.get("/profiles/late").json()
        assert (got["version"], got["checksum"]) == (written["version"], written["checksum"])
        assert c.post("/migration/verify").json()["mismatches"] == 0
