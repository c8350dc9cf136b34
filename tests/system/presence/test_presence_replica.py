"""The presence replica's rules in virtual time: ordering, gaps, staleness, dead servers."""
from __future__ import annotations

from system.chat.presence import local_answer
from system.chat.presence_replica import Answer, PresenceReplica

REGIONS = ["us-east", "eu-west"]


def replica() -> PresenceReplica:
    r = PresenceReplica(REGIONS, stale_after=3.0, down_after=3.0)
    r.snapshot("us-1", "us-east", "e1", 0, 100.0, {}, now=0.0)
    r.snapshot("eu-1", "eu-west", "e2", 0, 100.0, {}, now=0.0)
    return r


def test_deltas_apply_in_order_and_duplicates_change_nothing():
    r = replica()
    assert r.delta("eu-1", "eu-west", "e2", 1, 101.0, [("bob", "online", 101.0)], now=1.0) is False
    assert r.query("bob", "eu-west", now=1.0) == Answer("online", "eu-west", 101.0, False)
    assert r.delta("eu-1", "eu-west", "e2", 2, 102.0, [("bob", "offline", 102.0)], now=1.5) is False
    # the older delta comes again (a redelivery): it must not bring bob back online
    assert r.delta("eu-1", "eu-west", "e2", 1, 101.0, [("bob", "online", 101.0)], now=1.6) is False
    assert r.query("bob", "eu-west", now=1.6) == Answer("offline", "eu-west", 102.0, False)


def test_a_gap_is_not_applied_but_asks_for_a_snapshot_which_closes_it():
    r = replica()
    assert r.delta("eu-1", "eu-west", "e2", 3, 103.0, [("bob", "online", 103.0)], now=1.0) is True
    assert r.query("bob", "eu-west", now=1.0).state == "offline"
    assert r.heartbeat("eu-1", "eu-west", "e2", 3, 103.5, now=1.5) is True
    r.snapshot("eu-1", "eu-west", "e2", 3, 104.0, {"bob": 103.0}, now=2.0)
    assert r.heartbeat("eu-1", "eu-west", "e2", 3, 104.5, now=2.5) is False
    assert r.query("bob", "eu-west", now=2.5) == Answer("online", "eu-west", 103.0, False)
    # a snapshot older than what was applied since is ignored
    r.delta("eu-1", "eu-west", "e2", 4, 105.0, [("bob", "offline", 105.0)], now=3.0)
    r.snapshot("eu-1", "eu-west", "e2", 3, 104.0, {"bob": 103.0}, now=3.1)
    assert r.query("bob", "eu-west", now=3.1).state == "offline"


def test_a_silent_region_is_stale_never_flipped_and_fresh_after_a_sync():
    r = replica()
    r.delta("eu-1", "eu-west", "e2", 1, 101.0, [("bob", "online", 101.0)], now=1.0)
    for t in (2.0, 4.0, 6.0):                      # only us-east is heard: eu-west is cut off
        r.heartbeat("us-1", "us-east", "e1", 0, 100 + t, now=t)
    r.expire(now=6.0)
    assert r.query("bob", "eu-west", now=6.0) == Answer("online", "eu-west", 101.0, True)
    # offline is a claim about every region: stale too while one is silent
    assert r.query("carol", "us-east", now=6.0) == Answer("offline", "us-east", None, True)
    # bob left during the partition; the heal shows a gap and the snapshot repairs it
    assert r.heartbeat("eu-1", "eu-west", "e2", 2, 107.0, now=7.0) is True
    r.snapshot("eu-1", "eu-west", "e2", 2, 107.0, {}, now=7.1)
    assert r.query("bob", "eu-west", now=7.1) == Answer("offline", "eu-west", 107.0, False)


def test_a_dead_server_in_a_live_region_loses_its_users_and_a_restart_drops_the_old_ones():
    r = replica()
    r.snapshot("eu-2", "eu-west", "e3", 0, 100.0, {}, now=0.0)
    r.delta("eu-2", "eu-west", "e3", 1, 101.0, [("bob", "online", 101.0)], now=1.0)
    r.delta("eu-1", "eu-west", "e2", 1, 101.0, [("dan", "online", 101.0)], now=1.0)
    for t in (2.0, 3.0, 4.5):
        r.heartbeat("eu-1", "eu-west", "e2", 1, 100 + t, now=t)
    assert r.expire(now=4.5) == ["eu-2"]
    assert r.query("bob", "eu-west", now=4.5) == Answer("offline", "eu-west", 101.0, True)  # us-east silent
    assert r.heartbeat("eu-1", "eu-west", "e9", 0, 105.0, now=5.0) is True            # restarted
    assert r.query("dan", "eu-west", now=5.0).state == "offline"
    r.leave("eu-1", "e9", 106.0)
    assert "eu-1" not in r.origins


def test_online_anywhere_fresh_beats_a_stale_record():
    r = replica()
    r.delta("us-1", "us-east", "e1", 1, 101.0, [("bob", "online", 101.0)], now=1.0)
    r.delta("eu-1", "eu-west", "e2", 1, 102.0, [("bob", "online", 102.0)], now=1.0)
    r.heartbeat("us-1", "us-east", "e1", 1, 105.0, now=5.0)
    assert r.query("bob", "eu-west", now=5.0) == Answer("online", "us-east", 101.0, False)


def test_local_answer_lets_the_directory_decide_and_redis_out_is_unknown():
    online_here = Answer("online", "us-east", 1.0, False)
    online_there = Answer("online", "eu-west", 1.0, False)
    offline = Answer("offline", "us-east", 2.0, False)
    assert local_answer("unknown", online_here, "us-east").state == "unknown"
    assert local_answer("online", online_here, "us-east") == online_here
    assert local_answer("offline", online_there, "us-east") == online_there    # failed over, not registered yet
    assert local_answer("offline", online_here, "us-east").state == "offline"
    assert local_answer("online", offline, "us-east").state == "online"


def test_a_region_silent_for_forget_after_is_forgotten_but_still_stale():
    r = PresenceReplica(REGIONS, stale_after=3.0, down_after=3.0, forget_after=60.0)
    r.snapshot("eu-1", "eu-west", "e2", 1, 100.0, {"bob": 99.0}, now=0.0)
    r.heartbeat("us-1", "us-east", "e1", 0, 150.0, now=50.0)
    assert r.expire(now=50.0) == [] and r.query("bob", "eu-west", now=50.0).state == "online"
    assert r.expire(now=61.0) == ["eu-1"]
    assert r.query("bob", "eu-west", now=61.0) == Answer("offline", "eu-west", 100.0, True)


def test_where_offline_users_were_last_seen_is_kept_for_the_latest_ones_only():
    r = PresenceReplica(REGIONS, stale_after=3.0, down_after=3.0, max_offline_records=2)
    r.snapshot("eu-1", "eu-west", "e2", 0, 100.0, {}, now=0.0)
    r.snapshot("us-1", "us-east", "e1", 0, 100.0, {}, now=0.0)
    changes = [(u, "online", 101.0) for u in ("ann", "bob", "cid")]
    r.delta("eu-1", "eu-west", "e2", 1, 101.0, changes, now=1.0)
    r.delta("eu-1", "eu-west", "e2", 2, 102.0, [("ann", "offline", 102.0), ("bob", "offline", 102.5)], now=1.5)
    r.delta("eu-1", "eu-west", "e2", 3, 103.0, [("ann", "online", 103.0)], now=2.0)
    r.delta("eu-1", "eu-west", "e2", 4, 104.0, [("ann", "offline", 104.0), ("cid", "offline", 104.5)], now=2.5)
    # ann went offline again after bob: bob's record is the oldest and the one forgotten
    assert list(r.last_offline) == ["ann", "cid"]
    assert r.query("ann", "us-east", now=2.5) == Answer("offline", "eu-west", 104.0, False)
    assert r.query("bob", "us-east", now=2.5) == Answer("offline", "us-east", None, False)
