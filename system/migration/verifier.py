"""The verifier: compares pg-old with pg-new — row counts and a checksum per row (the
profile's canonical JSON and its version) — and names the ids that differ.

The comparison is a merge of two id-ordered scans (``diff_sorted`` is the pure core), so
it holds one page of each store in memory, however large the tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from system.migration.store_base import Row, StoreBase

EXAMPLES = 100


@dataclass
class VerifyReport:
    old_count: int = 0
    new_count: int = 0
    missing_in_new: list[str] = field(default_factory=list)
    missing_in_old: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    mismatches: int = 0

    def add(self, kind: str, profile_id: str) -> None:
        self.mismatches += 1
        bucket = getattr(self, kind)
        if len(bucket) < EXAMPLES:
            bucket.append(profile_id)

    @property
    def examples(self) -> list[str]:
        return (self.missing_in_new + self.missing_in_old + self.differing)[:EXAMPLES]

    @property
    def complete(self) -> bool:
        """Every differing id is named (not cut at ``EXAMPLES``)."""
        return len(self.examples) == self.mismatches

    def as_dict(self) -> dict:
        return {"old_count": self.old_count, "new_count": self.new_count, "mismatches": self.mismatches,
                "ok": self.mismatches == 0, "missing_in_new": self.missing_in_new,
                "missing_in_old": self.missing_in_old, "differing": self.differing}


def same(a: Row, b: Row) -> bool:
    return a.version == b.version and a.checksum == b.checksum


def diff_sorted(old: Iterable[Row], new: Iterable[Row], report: VerifyReport) -> None:
    """Merge two id-ordered row sequences into ``report`` (pure)."""
    old_it, new_it = iter(old), iter(new)
    a, b = next(old_it, None), next(new_it, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.id < b.id):
            report.old_count += 1
            report.add("missing_in_new", a.id)
            a = next(old_it, None)
        elif a is None or b.id < a.id:
            report.new_count += 1
            report.add("missing_in_old", b.id)
            b = next(new_it, None)
        else:
            report.old_count += 1
            report.new_count += 1
            if not same(a, b):
                report.add("differing", a.id)
            a, b = next(old_it, None), next(new_it, None)


async def _scan(store: StoreBase, page_size: int):
    after = ""
    while True:
        rows = await store.page(after, page_size)
        for row in rows:
            yield row
        if len(rows) < page_size:
            return
        after = rows[-1].id


async def verify(old: StoreBase, new: StoreBase, page_size: int = 5000) -> VerifyReport:
    """Compare both stores in full."""
    report = VerifyReport()
    old_rows, new_rows = _scan(old, page_size), _scan(new, page_size)

    async def next_row(it):
        try:
            return await it.__anext__()
        except StopAsyncIteration:
            return None

    # the same merge as diff_sorted, over async scans
    a, b = await next_row(old_rows), await next_row(new_rows)
    while a is not None or b is not None:
        if b is None or (a is not None and a.id < b.id):
            report.old_count += 1
            report.add("missing_in_new", a.id)
            a = await next_row(old_rows)
        elif a is None or b.id < a.id:
            report.new_count += 1
            report.add("missing_in_old", b.id)
            b = await next_row(new_rows)
        else:
            report.old_count += 1
            report.new_count += 1
            if not same(a, b):
                report.add("differing", a.id)
            a, b = await next_row(old_rows), await next_row(new_rows)
    return report


async def recheck(old: StoreBase, new: StoreBase, ids: list[str]) -> list[str]:
    """The ids among ``ids`` that still differ (a targeted re-verification)."""
    if not ids:
        return []
    old_rows, new_rows = await old.get_many(ids), await new.get_many(ids)
    return sorted(i for i in set(ids) if (old_rows.get(i) is None) != (new_rows.get(i) is None)
                  or (old_rows.get(i) is not None and not same(old_rows[i], new_rows[i])))
