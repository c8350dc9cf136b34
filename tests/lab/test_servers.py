"""Each real server starts, answers a real request, and stops without leaving a process."""
from __future__ import annotations

import asyncio

import psutil
import pytest

from lab.servers import nats, postgres
from lab.servers.group import ServerGroup

pytestmark = pytest.mark.infra


def test_postgres_answers_sql_and_reuses_its_data_dir(server_dir):
    tmp_path = server_dir
    with ServerGroup(tmp_path) as group:
        pg = group.postgres("pg-a")
        postgres.create_database(pg.port, "lab")
        assert postgres.ready(pg.port)
    # second start on the same data directory: no initdb, the database is still there
    assert postgres.ensure_initialised(tmp_path / "pg-a") is False
    with ServerGroup(tmp_path) as group:
        pg = group.postgres("pg-a")

        async def names():
            import asyncpg
            conn = await asyncpg.connect(pg.dsn)
            try:
                return {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
            finally:
                await conn.close()
        assert "lab" in asyncio.run(names())


def test_redis_answers_ping(servers):
    import redis as redis_client
    r = servers.redis()
    client = redis_client.Redis.from_url(r.url)
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()


async def publish_with_retry(js, subject: str, msg_id: str):
    """The chat servers' publish: retried with backoff while the stream elects a leader,
    deduplicated by message id."""
    from system.chat.streams import publish_message
    return await publish_message(js, subject, msg_id, msg_id.encode(), timeout=2, deadline=20)


def test_r3_stream_accepts_publishes_with_one_node_killed(servers):
    import nats as nats_client
    nodes = servers.nats_cluster(3)

    async def scenario():
        nc = await nats_client.connect(nodes[0].url)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"], num_replicas=3)
        # add_stream returns before the new R3 group has elected its leader: until it
        # has, a publish finds no responder, so the first one is retried as well
        ack = await publish_with_retry(js, "t.a", "before")
        assert ack.seq == 1
        nodes[2].process.popen.kill()      # SIGKILL one node: quorum 2 of 3 remains
        nodes[2].process.popen.wait()
        # the stream may have to elect a new leader: retry each publish, deduplicated by
        # message id as a real client does, until the deadline
        acks = [await publish_with_retry(js, "t.a", f"m{i}") for i in range(5)]
        assert [a.seq for a in acks] == [2, 3, 4, 5, 6]
        info = await js.stream_info("T")
        assert info.state.messages == 6
        await nc.close()

    asyncio.run(scenario())


def test_nats_routes_use_only_configured_addresses(servers):
    """Every connection a node dials goes to one of its configured routes, never to an
    address learnt by gossip (checked on the sockets themselves: the routez "port" of an
    incoming route is the peer's ephemeral port, so it cannot tell)."""
    nodes = servers.nats_cluster(3)
    for node in nodes:
        assert nats.monitor(node.monitor_port, "/routez")["num_routes"] >= 2
    dialled_anywhere = 0
    for node in nodes:
        own = set(node.process.spec.ports.values())
        allowed = {n.cluster_port for n in nodes if n is not node}
        dialled = [c for c in psutil.Process(node.process.pid).net_connections(kind="tcp")
                   if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.laddr.port not in own]
        assert {c.raddr.port for c in dialled} <= allowed, (node.process.spec.name, dialled)
        dialled_anywhere += len(dialled)
    assert dialled_anywhere >= 3, "the routes of a 3-node mesh were dialled by someone"


def test_group_close_leaves_no_process(server_dir):
    tmp_path = server_dir
    group = ServerGroup(tmp_path)
    try:
        group.postgres()
        group.redis()
        group.nats_cluster(1)
        pids = [p.pid for p in group.processes]
    finally:
        group.close()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
