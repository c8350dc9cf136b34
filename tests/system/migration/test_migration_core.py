"""The pure parts of the migration: phase rules, throttle, row diff, checksum."""
from __future__ import annotations

import pytest

from system.migration.phases import Phase, PhaseChangeRefused, check_verified, parse_phase, plan_change, previous
from system.migration.profile import checksum, document
from system.migration.store_base import Row
from system.migration.sync import winner
from system.migration.throttle import Throttle
from system.migration.verifier import VerifyReport, diff_sorted


@pytest.mark.parametrize("current,target,ok", [
    ("dual_write", "dual_read", True), ("dual_read", "read_new", True), ("read_new", "dual_read", True),
    ("dual_write", "read_new", False), ("decommission", "read_new", False), ("read_new", "read_new", False),
    ("write_new_only", "decommission", True), ("decommission", "write_new_only", True),
])
def test_plan_change(current, target, ok):
    if ok:
        assert plan_change(Phase(current), Phase(target)).target is Phase(target)
    else:
        with pytest.raises(PhaseChangeRefused):
            plan_change(Phase(current), Phase(target))


def test_verification_guards_forward_steps_only():
    forward = plan_change(Phase.DUAL_WRITE, Phase.DUAL_READ)
    with pytest.raises(PhaseChangeRefused, match="2 mismatching row.*u1, u2"):
        check_verified(forward, 2, ["u1", "u2"])
    check_verified(plan_change(Phase.READ_NEW, Phase.DUAL_READ), 5, ["x"])     # back: allowed
    check_verified(plan_change(Phase.WRITE_NEW_ONLY, Phase.DECOMMISSION), 5, ["x"])  # old abandoned
    with pytest.raises(PhaseChangeRefused, match="first phase"):
        previous(Phase.DUAL_WRITE)
    assert parse_phase("Read-New") is Phase.READ_NEW
    with pytest.raises(PhaseChangeRefused, match="unknown phase"):
        parse_phase("later")


def test_throttle_paces_to_the_rate():
    now = [0.0]
    t = Throttle(1000, lambda: now[0])
    waited = 0.0
    for _ in range(10):
        wait = t.delay(500)
        waited += wait
        now[0] += wait
    assert 4.5 <= waited <= 5.0      # 5000 rows at 1000/s, less the initial burst
    assert Throttle(None, lambda: 0.0).delay(10**6) == 0.0


def row(pid: str, version: int = 1, name: str = "n") -> Row:
    return Row(pid, name, "us-east", {}, version)


def test_diff_names_the_ids_that_differ():
    report = VerifyReport()
    diff_sorted([row("a"), row("b"), row("c", 2)], [row("b"), row("c", 1), row("d")], report)
    assert (report.old_count, report.new_count, report.mismatches) == (3, 3, 3)
    assert report.missing_in_new == ["a"] and report.missing_in_old == ["d"] and report.differing == ["c"]


def test_winner_and_checksum():
    assert winner(row("a", 2), row("a", 3), True).version == 3
    assert winner(row("a", 2, "x"), row("a", 2, "y"), True).display_name == "x"
    doc = document("u1", "Ada", "eu-west", {"b": 1, "a": "é"})
    import hashlib
    assert checksum(doc) == hashlib.sha256(
        '{"display_name":"Ada","home_region":"eu-west","id":"u1","settings":{"a":"é","b":1}}'.encode()).hexdigest()
