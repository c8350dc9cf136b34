"""Backup -> destroy the data directory -> restore -> replay, on a real one-region lab: every
acknowledged message is back exactly once, also after a second restore; retention prunes;
the CLI's bad input gets one sentence and its exit code."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from types import SimpleNamespace
from pathlib import Path

import asyncpg
import nats
import pytest

from chaos.faults.process import ProcessDriver, StateProcessController
from lab.dr import catalog
from lab.dr.backup import backup_and_prune, store_of
from lab.dr.restore import replay_after, restore_region
from lab.dr.policy import BackupPolicy
from lab.dr.scheduler import policy_of
from lab.errors import ConfigError, UsageError
from lab.servers import postgres
from lab.state import load_state
from system.chat.client import ChatClient
from system.common.streams import CHAT_STREAM
from system.common.auth import issue_token
from dr_helpers import nines

REGION = "us-east"


def chat_url(state) -> str:
    return state.endpoints[f"chat-{REGION}"].replace("http://", "ws://") + "/ws"


RUN = uuid.uuid4().hex[:8]          # the lab's store is kept between runs: this run's senders only


async def send(state, n: int, tag: str) -> set[str]:
    secret = Path(state.secret_file).read_text().strip()
    user = f"alice-{RUN}-{tag}@{REGION}"
    client = ChatClient(user, issue_token(secret, user), server=chat_url(state))
    await client.connect()
    try:
        return {(await client.send(f"bob@{REGION}", f"{tag}-{i}"))["id"] for i in range(n)}
    finally:
        await client.close()


async def stored_ids(state) -> list[str]:
    conn = await asyncpg.connect(postgres.dsn(state.processes[f"pg-{REGION}"].ports["main"], "chat"), timeout=5)
    try:
        return [r["id"] for r in await conn.fetch("SELECT id FROM messages WHERE sender LIKE $1", f"alice-{RUN}-%")]
    finally:
        await conn.close()


def wait_stored(state, ids: set[str], timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            rows = asyncio.run(stored_ids(state))
            if ids <= set(rows):
                return rows
        except (OSError, asyncpg.PostgresError):
            pass             # the store is still coming back
        if time.monotonic() > deadline:
            raise AssertionError(f"not all {len(ids)} acknowledged messages were stored after {timeout} s")
        time.sleep(0.2)


def test_restore_rebuilds_a_destroyed_store_from_backup_and_jetstream(dr_lab):
    state_dir = dr_lab.state_dir
    before = asyncio.run(send(dr_lab, 30, "before"))
    wait_stored(dr_lab, before)
    manifest = backup_and_prune(store_of(dr_lab, REGION), policy_of(state_dir), state_dir)[0].to_json()
    assert manifest["stream"]["covered_seq"] >= 30 and manifest["size_bytes"] > 0

    after = asyncio.run(send(dr_lab, 25, "after"))       # stored, acked: only JetStream has them after the loss
    wait_stored(dr_lab, after)
    driver = ProcessDriver(dr_lab, StateProcessController(state_dir))
    fault = driver.plan(SimpleNamespace(kind="process.data_loss", targets=[f"pg-{REGION}"], id="loss"))
    fault.state_dir = state_dir
    driver.apply(fault)                                  # killed, data directory gone
    assert not Path(dr_lab.processes[f"pg-{REGION}"].data_dir).exists()
    during = asyncio.run(send(dr_lab, 10, "during"))     # acked while the store is gone

    restore = nines("dr", "restore", REGION, "--json", "--state-dir", state_dir)
    assert restore.returncode == 0, restore.stderr
    result = json.loads(restore.stdout)
    assert result["backup"]["id"] == manifest["id"]
    assert result["replay"]["from_seq"] == manifest["stream"]["covered_seq"] + 1
    assert result["replay"]["inserted"] >= len(after) and result["complete"]
    acked = before | after | during
    rows = wait_stored(dr_lab, acked)
    assert sorted(rows) == sorted(acked)                 # nothing lost, nothing twice, nothing else

    # the fault's undo restores again (the store answers now: forced), measures it, changes nothing
    driver.rollback(fault)
    measured = fault.params["measured"]
    assert measured["recovery_seconds"] > 0 and measured["replay_scanned"] >= len(after) + len(during)
    assert sorted(wait_stored(dr_lab, acked)) == sorted(acked)
    # and replaying once more into the live store stores nothing: idempotent by message id
    store = store_of(load_state(state_dir), REGION)
    latest = catalog.latest(policy_of(state_dir).root(state_dir), REGION)
    assert asyncio.run(replay_after(store, latest)).inserted == 0


def test_data_loss_fault_targets_only_regional_stores(dr_lab):
    driver = ProcessDriver(dr_lab, StateProcessController(dr_lab.state_dir))
    with pytest.raises(ConfigError, match="destroys a regional chat store"):
        driver.plan(SimpleNamespace(kind="process.data_loss", targets=[f"redis-{REGION}"], id="x"))


def test_retention_keeps_the_newest_backups(dr_lab):
    # one-region.yaml keeps the last 2: after two more backups only those two are left
    policy = policy_of(dr_lab.state_dir)
    store = store_of(dr_lab, REGION)
    made = [backup_and_prune(store, policy, dr_lab.state_dir)[0].id for _ in range(2)]
    assert [m.id for m in catalog.list_backups(policy.root(dr_lab.state_dir), REGION)] == made[::-1]


def test_the_chat_stream_keeps_messages_longer_than_the_backup_interval(dr_lab):
    async def max_age() -> float:
        nc = await nats.connect(dr_lab.endpoints[f"nats-{REGION}"])
        try:
            return (await nc.jetstream().stream_info(CHAT_STREAM)).config.max_age
        finally:
            await nc.close()
    assert 10 * BackupPolicy().interval_seconds <= asyncio.run(max_age()) < float("inf")


def test_restore_refuses_a_running_store_and_a_region_without_backups(dr_lab, tmp_path):
    refused = nines("dr", "restore", REGION, "--state-dir", dr_lab.state_dir)
    assert refused.returncode == 2 and "pass --force" in refused.stderr and "Traceback" not in refused.stderr
    with pytest.raises(UsageError, match="no backup of us-east"):
        restore_region(Path(dr_lab.state_dir), REGION, tmp_path)
    assert load_state(dr_lab.state_dir).processes[f"pg-{REGION}"].status == "running"


def test_bad_input_is_one_sentence_and_its_exit_code(dr_lab, tmp_path):
    unknown = nines("dr", "restore", "mars", "--state-dir", dr_lab.state_dir)
    assert unknown.returncode == 2 and unknown.stderr.strip() == \
        "error: unknown region 'mars'; the lab's regions are us-east"
    no_lab = nines("dr", "backup", "--state-dir", str(tmp_path))
    assert no_lab.returncode == 20 and no_lab.stderr.strip() == \
        f"error: no lab is running in {tmp_path}; start one with `nines up`"
