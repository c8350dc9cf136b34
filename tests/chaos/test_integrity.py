"""Integrity checkers over made-up ledgers and stored rows."""
from __future__ import annotations

from chaos.integrity import check_agreement, check_analytics, check_chat, check_no_lost_writes


def ack(i, conv="c1", seq=None, region="eu-west", ts=None, sender="alice"):
    return {"kind": "chat", "id": f"m{i}", "conv": conv, "seq": i if seq is None else seq, "from": sender,
            "to_region": region, "ts": ts if ts is not None else float(i)}


def row(i, conv="c1", seq=None, region="eu-west"):
    return {"id": f"m{i}", "conv": conv, "seq": i if seq is None else seq, "region": region}


def test_a_clean_history_is_ok():
    acked = [ack(i) for i in range(1, 6)]
    result = check_chat(acked, [row(i) for i in range(1, 6)],
                        [{"id": f"m{i}", "user": "bob", "ts": 10.0 + i} for i in range(1, 6)])
    assert result["ok"] is True
    assert result["counts"] == {"lost": 0, "duplicated": 0, "out_of_order": 0, "phantom": 0}
    assert result["info"]["never_delivered"] == 0


def test_each_anomaly_is_counted_and_named():
    acked = [ack(1), ack(2), ack(3), ack(4, seq=2, ts=5.0)]
    stored = [row(1), row(1), row(2), row(3, region="us-east"), row(4, seq=2), row(9)]
    received = [{"id": "m2", "user": "bob", "ts": 1}, {"id": "m1", "user": "bob", "ts": 2},
                {"id": "m2", "user": "bob", "ts": 3}]
    r = check_chat(acked, stored, received)
    assert r["ok"] is False
    assert r["counts"] == {"lost": 1, "duplicated": 2, "out_of_order": 2, "phantom": 1}
    kinds = {(e["anomaly"], e.get("id")) for e in r["examples"]}
    assert ("lost", "m3") in kinds and ("duplicated", "m1") in kinds and ("phantom", "m9") in kinds
    assert ("out_of_order", "m1") in kinds          # delivered after m2


def test_phantoms_within_indeterminate_sends_are_allowed():
    r = check_chat([ack(1)], [row(1), row(2)], indeterminate=1)
    assert r["ok"] is True and r["counts"]["phantom"] == 1
    assert check_chat([ack(1)], [row(1), row(2)], indeterminate=0)["ok"] is False


def test_analytics_by_id_and_by_totals():
    r = check_analytics(["a", "b", "c"], counted_ids=["a", "a", "c"])
    assert r["counts"] == {"lost": 1, "double_counted": 1, "unexpected": 0} and not r["ok"]
    assert {"anomaly": "lost", "id": "b"} in r["examples"]
    r = check_analytics(["a", "b"], expected_by_key={"us-east": 2, "eu-west": 1},
                        counted_by_key={"us-east": 2, "eu-west": 1})
    assert r["ok"]
    r = check_analytics([], expected_by_key={"us-east": 2}, counted_by_key={"us-east": 3})
    assert r["counts"]["double_counted"] == 1 and not r["ok"]


def test_migration_agreement_and_lost_writes():
    r = check_agreement({"p1": "x", "p2": "y", "p3": "z"}, {"p1": "x", "p2": "Y", "p4": "w"})
    assert r["counts"] == {"missing_in_new": 1, "extra_in_new": 1, "mismatched": 1} and not r["ok"]
    assert check_agreement({"p1": "x"}, {"p1": "x"})["ok"]
    acked = [{"id": "p1", "version": 1, "checksum": "a"}, {"id": "p1", "version": 2, "checksum": "b"},
             {"id": "p2", "version": 1, "checksum": "c"}, {"id": "p3", "version": 4, "checksum": "d"}]
    r = check_no_lost_writes(acked, {"p1": (1, "a"), "p2": (1, "c"), "p3": (4, "X")})
    assert r["counts"] == {"lost": 1, "stale": 1}
    assert r["examples"][0] == {"anomaly": "lost", "id": "p1", "acked_version": 2, "stored_version": 1}


def test_two_senders_racing_for_sequence_numbers_is_not_out_of_order():
    acked = [ack(1, seq=2, ts=1.0, sender="alice"), ack(2, seq=1, ts=2.0, sender="bob")]
    assert check_chat(acked, [row(1, seq=2), row(2, seq=1)])["counts"]["out_of_order"] == 0
    acked = [ack(1, seq=2, ts=1.0), ack(2, seq=1, ts=2.0)]
    assert check_chat(acked, [row(1, seq=2), row(2, seq=1)])["counts"]["out_of_order"] == 1
