"""Chat invariants (set-full semantics, like Jepsen's): every acknowledged message is stored
exactly once in its recipient's region, in per-conversation order, and nothing appears that
was never acknowledged.

- lost: acked, not stored in ``to_region``;
- duplicated: one id stored more than once in a region, or two ids sharing (conv, seq);
- out_of_order: one sender's acks in a conversation whose sequence numbers go backwards in
  ack order (two senders may race), or a
  recipient receiving a conversation's messages with a lower seq after a higher one
  (re-deliveries of an already received id are allowed);
- phantom: stored, never acked. A send whose outcome the generator does not know (error or
  timeout: the server may have stored it) may legitimately appear, so only phantoms beyond
  the number of such indeterminate sends count as a violation.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

from chaos.integrity.result import invariant

NAME = "chat.no_loss"


def check_chat(acked: Iterable[dict], stored: Iterable[dict], received: Iterable[dict] = (), *,
               indeterminate: int = 0, max_examples: int = 5) -> dict:
    """``acked``: ledger ``chat`` lines; ``stored``: rows ``{id, conv, seq, region}``;
    ``received``: ledger ``chat_received`` lines."""
    acked = list(acked)
    stored = list(stored)
    examples: dict[str, list[dict]] = defaultdict(list)

    def note(kind: str, **fields) -> None:
        if len(examples[kind]) < max_examples:
            examples[kind].append({"anomaly": kind, **fields})

    stored_by_region: dict[str, Counter] = defaultdict(Counter)
    for row in stored:
        stored_by_region[row.get("region") or ""][row["id"]] += 1
    all_stored = {row["id"] for row in stored}
    acked_ids = {a["id"] for a in acked}

    lost = 0
    for a in acked:
        if stored_by_region[a.get("to_region") or ""][a["id"] ] == 0:
            lost += 1
            where = "in another region" if a["id"] in all_stored else "nowhere"
            note("lost", id=a["id"], conv=a.get("conv"), seq=a.get("seq"), detail=f"stored {where}")

    duplicated = 0
    for region, counter in stored_by_region.items():
        for mid, n in counter.items():
            if n > 1:
                duplicated += n - 1
                note("duplicated", id=mid, region=region, copies=n)
    by_slot: dict[tuple, set] = defaultdict(set)
    for row in stored:
        if row.get("conv") is not None and row.get("seq") is not None:
            by_slot[(row.get("region"), row["conv"], row["seq"])].add(row["id"])
    for (region, conv, seq), ids in by_slot.items():
        if len(ids) > 1:
            duplicated += len(ids) - 1
            note("duplicated", conv=conv, seq=seq, ids=sorted(ids)[:4], detail="two messages share a sequence number")

    out_of_order = 0
    # a sender's own acks: two senders of one conversation race for sequence numbers, and
    # whose JetStream ack comes back first is not an order the system promises
    by_conv: dict[tuple, list[dict]] = defaultdict(list)
    for a in acked:
        by_conv[(a.get("conv"), a.get("from"))].append(a)
    for (conv, _sender), items in by_conv.items():
        items.sort(key=lambda a: a.get("ts", 0))
        for prev, cur in zip(items, items[1:]):
            if cur.get("seq") is not None and prev.get("seq") is not None and cur["seq"] <= prev["seq"]:
                out_of_order += 1
                note("out_of_order", id=cur["id"], conv=conv, seq=cur["seq"], after_seq=prev["seq"],
                     detail="acked after a message with a higher sequence number")
    meta = {a["id"]: a for a in acked}
    seen: dict[tuple, int] = {}
    seen_ids: set[tuple] = set()
    received = sorted(received, key=lambda r: r.get("ts", 0))
    for r in received:
        a = meta.get(r.get("id"))
        if a is None:
            continue
        key = (r.get("user"), a.get("conv"))
        if (key, r["id"]) in seen_ids:
            continue          # a re-delivery (after a resume): at-least-once is fine
        seen_ids.add((key, r["id"]))
        if key in seen and a.get("seq") is not None and a["seq"] < seen[key]:
            out_of_order += 1
            note("out_of_order", id=r["id"], conv=a.get("conv"), seq=a["seq"], after_seq=seen[key],
                 detail=f"delivered to {r.get('user')} after a higher sequence number")
        seen[key] = max(seen.get(key, -1), a.get("seq") if a.get("seq") is not None else -1)

    phantom_ids = sorted(all_stored - acked_ids)
    for mid in phantom_ids[:max_examples]:
        note("phantom", id=mid, detail="stored but never acknowledged")
    phantom = len(phantom_ids)
    unexplained = max(0, phantom - indeterminate)

    received_ids = {r.get("id") for r in received}
    never_delivered = len(acked_ids - received_ids) if received else None
    counts = {"lost": lost, "duplicated": duplicated, "out_of_order": out_of_order, "phantom": phantom}
    flat = [e for kind in ("lost", "duplicated", "out_of_order", "phantom") for e in examples[kind]]
    result = invariant(NAME, counts, flat, violations=["lost", "duplicated", "out_of_order"],
                       info={"acked": len(acked), "stored": len(stored), "indeterminate_sends": indeterminate,
                             "phantom_beyond_indeterminate": unexplained, "never_delivered": never_delivered},
                       max_examples=max_examples)
    if unexplained:
        result["ok"] = False
    return result
