"""Analytics invariant: the totals equal the acknowledged events — none lost, none counted twice.

With per-event ids (what analytics stored as processed) the check is set-based and names
example ids; with totals only it compares counts per key (e.g. per region).
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from chaos.integrity.result import invariant

NAME = "analytics.totals"


def check_analytics(acked_ids: Iterable[str], *, counted_ids: Iterable[str] | None = None,
                    expected_by_key: dict[str, int] | None = None, counted_by_key: dict[str, int] | None = None,
                    max_examples: int = 5) -> dict:
    acked = list(acked_ids)
    examples: list[dict] = []
    if counted_ids is not None:
        counts_of = Counter(counted_ids)
        acked_set = set(acked)
        lost_ids = [i for i in acked if counts_of[i] == 0]
        double = {i: n for i, n in counts_of.items() if n > 1}
        extra = sorted(set(counts_of) - acked_set)
        examples += [{"anomaly": "lost", "id": i} for i in lost_ids[:max_examples]]
        examples += [{"anomaly": "double_counted", "id": i, "times": n} for i, n in list(double.items())[:max_examples]]
        counts = {"lost": len(lost_ids), "double_counted": sum(n - 1 for n in double.values()),
                  "unexpected": len(extra)}
        info = {"acked": len(acked), "counted": sum(counts_of.values())}
    else:
        expected = expected_by_key or {"total": len(acked)}
        counted = counted_by_key or {}
        lost = double = 0
        for key in sorted(set(expected) | set(counted)):
            e, c = expected.get(key, 0), counted.get(key, 0)
            if c < e:
                lost += e - c
                examples.append({"anomaly": "lost", "key": key, "expected": e, "counted": c})
            elif c > e:
                double += c - e
                examples.append({"anomaly": "double_counted", "key": key, "expected": e, "counted": c})
        counts = {"lost": lost, "double_counted": double, "unexpected": 0}
        info = {"expected": expected, "counted": counted}
    return invariant(NAME, counts, examples, violations=["lost", "double_counted"], info=info,
                     max_examples=max_examples)
