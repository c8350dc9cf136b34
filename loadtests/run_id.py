"""The run id: a short token that makes a load run's user names its own.

Load users are named from the seed, the generator process and a counter, so two runs with
the same seed against one lab would be the same users — and a user that reconnects resumes
from the sequences it saw *in this run*, so the chat servers would replay every message the
earlier runs left it in other conversations (minutes of history, ahead of this run's acks).
Each run therefore puts its id in every name it makes: its users, conversations and stored
rows are its own, and the integrity checks can scope by them exactly.

    run_id = new_run_id()             # "3f9c0a1b"
    check_run_id("3f9c0a1b")          # UsageError for anything but 1-16 letters and digits
"""
from __future__ import annotations

import re
import secrets

from lab.errors import UsageError

RUN_ID_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")


def new_run_id() -> str:
    """A fresh id: 8 hex digits, so two runs against one lab practically never share one."""
    return secrets.token_hex(4)


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise UsageError(f"run id {run_id[:40]!r} must be 1-16 letters and digits (it goes into user names)")
    return run_id
