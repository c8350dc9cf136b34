"""Migration invariants: old and new agree row for row once sync has run, and no acknowledged
profile write is lost (its version, with its checksum, is where reads go in that phase).
"""
from __future__ import annotations

from typing import Iterable

from chaos.integrity.result import invariant

AGREEMENT = "migration.agreement"
NO_LOST_WRITES = "migration.no_lost_writes"


def check_agreement(old: dict[str, str], new: dict[str, str], *, max_examples: int = 5) -> dict:
    """``old``/``new``: profile id -> checksum of the canonical row."""
    missing = sorted(set(old) - set(new))
    extra = sorted(set(new) - set(old))
    mismatched = sorted(i for i in set(old) & set(new) if old[i] != new[i])
    examples = ([{"anomaly": "missing_in_new", "id": i} for i in missing[:max_examples]]
                + [{"anomaly": "extra_in_new", "id": i} for i in extra[:max_examples]]
                + [{"anomaly": "mismatched", "id": i, "old": old[i], "new": new[i]} for i in mismatched[:max_examples]])
    counts = {"missing_in_new": len(missing), "extra_in_new": len(extra), "mismatched": len(mismatched)}
    return invariant(AGREEMENT, counts, examples, violations=list(counts),
                     info={"old_rows": len(old), "new_rows": len(new)}, max_examples=max_examples)


def check_no_lost_writes(acked: Iterable[dict], stored: dict[str, tuple[int, str]], *, max_examples: int = 5) -> dict:
    """``acked``: ledger ``profile`` lines; ``stored``: id -> (version, checksum) where reads go.

    Lost: the id is missing or holds an older version than the newest acked one.
    Stale: same version, other content (a write overwritten by an older one's data).
    """
    newest: dict[str, dict] = {}
    for a in acked:
        cur = newest.get(a["id"])
        if cur is None or a.get("version", 0) >= cur.get("version", 0):
            newest[a["id"]] = a
    lost, stale, examples = 0, 0, []
    for pid, a in sorted(newest.items()):
        row = stored.get(pid)
        if row is None or row[0] < a.get("version", 0):
            lost += 1
            if len(examples) < max_examples:
                examples.append({"anomaly": "lost", "id": pid, "acked_version": a.get("version"),
                                 "stored_version": row[0] if row else None})
        elif row[0] == a.get("version") and a.get("checksum") and row[1] != a["checksum"]:
            stale += 1
            if len(examples) < 2 * max_examples:
                examples.append({"anomaly": "stale", "id": pid, "version": row[0]})
    return invariant(NO_LOST_WRITES, {"lost": lost, "stale": stale}, examples, violations=["lost", "stale"],
                     info={"acked_profiles": len(newest)}, max_examples=max_examples)
