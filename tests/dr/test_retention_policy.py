"""The retention rule, from a table: keep the newest ``keep_last``, drop what is older than
``max_age_hours``, never the newest one."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from lab.dr.policy import BackupPolicy, expired

HOUR = 3600.0
NOW = 100 * HOUR


@dataclass
class B:
    started_at: float


@pytest.mark.parametrize("ages_hours, keep_last, max_age_hours, expired_ages", [
    ([1, 2, 3], 6, 24, []),                     # within both limits
    ([1, 2, 3, 4], 2, 24, [3, 4]),              # beyond keep_last
    ([1, 30, 2, 50], 6, 24, [30, 50]),          # too old, in any order
    ([30, 40], 6, 24, [40]),                    # all too old: the newest stays
    ([5], 1, 1, []),                            # a lone backup stays
])
def test_expired(ages_hours, keep_last, max_age_hours, expired_ages):
    backups = [B(NOW - a * HOUR) for a in ages_hours]
    policy = BackupPolicy(keep_last=keep_last, max_age_hours=max_age_hours)
    assert sorted((NOW - b.started_at) / HOUR for b in expired(backups, policy, now=NOW)) == expired_ages


def test_relative_dir_is_under_the_state_dir_and_absolute_is_kept(tmp_path):
    assert BackupPolicy().root(tmp_path) == tmp_path / "backups"
    assert BackupPolicy(dir="/srv/bk").root(tmp_path).as_posix() == "/srv/bk"
