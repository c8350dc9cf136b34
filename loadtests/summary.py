"""Merging a run's part files into ``samples.csv``, ``ledger.jsonl``, ``histograms.json`` and ``load.json``.

``load.json`` (``nineslab.load/1``) is what the chaos engine and capacity search read:
counts (intended = ok + error + dropped), throughput, corrected and raw percentiles from
*merged* HDR histograms, Locust's own counts beside ours, the generator's health and the
``valid`` flag. Pure apart from reading and writing the run directory.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from loadtests import health
from loadtests.hdr import LatencyBook, summarize
from loadtests.ledger import merge_parts as merge_ledger
from loadtests.samples import merge_parts as merge_samples

SCHEMA = "nineslab.load/1"


def locust_counts(out: Path) -> dict[str, int] | None:
    """Locust's own final request and failure counts (``locust_stats.json``, written at exit;
    the CSV is Locust's once-a-second snapshot and may miss the last second)."""
    jpath = out / "locust_stats.json"
    if jpath.exists():
        try:
            entries = json.loads(jpath.read_text())
            return {"requests": sum(int(e["num_requests"]) for e in entries),
                    "failures": sum(int(e["num_failures"]) for e in entries),
                    "by_name": {f"{e.get('method')} {e.get('name')}": int(e["num_requests"]) for e in entries}}
        except (ValueError, KeyError, TypeError):
            pass
    path = out / "locust_stats.csv"
    if not path.exists():
        return None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"])}
    return None


def _latency(book: LatencyBook) -> dict[str, Any]:
    total = book.total()
    return {"corrected": summarize(total.corrected), "raw": summarize(total.raw),
            "raw_backfilled": summarize(total.raw_backfilled)}


def merge_run(out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Merge ``out/parts`` and write the run's files; returns the ``load.json`` document."""
    parts = out / "parts"
    records = [json.loads(p.read_text()) for p in sorted(parts.glob("worker-*.json"))]
    book = LatencyBook()
    counts = {"ok": 0, "error": 0, "dropped": 0, "interrupted": 0}
    started = 0
    arrivals = {"intended": 0, "started": 0, "dropped": 0, "late": 0}
    by_op: dict[str, dict[str, int]] = {}
    for r in records:
        for op, oc in r.get("by_operation", {}).items():
            agg = by_op.setdefault(op, {"ok": 0, "error": 0, "dropped": 0})
            for k in agg:
                agg[k] += oc.get(k, 0)
        if r.get("dispatch"):
            d = r["dispatch"]
            arrivals["intended"] += d["issued"]
            arrivals["started"] += d["started"]
            arrivals["dropped"] += d["dropped"]
            arrivals["late"] += d["late"]
        book.add_encoded(r["histograms"])
        for k in counts:
            counts[k] += r["counts"].get(k, 0)
        if r.get("dispatch"):
            started += r["dispatch"]["started"]
        else:
            started += r["counts"]["ok"] + r["counts"]["error"]
    n_samples = merge_samples(sorted(parts.glob("samples-*.csv")), out / "samples.csv")
    n_ledger = merge_ledger(sorted(parts.glob("ledger-*.jsonl")), out / "ledger.jsonl")
    (out / "histograms.json").write_text(json.dumps({"schema": "nineslab.hdr/1", "unit": "us",
                                                     "operations": book.encode()}))
    processes = [r["health"] for r in records]
    valid, reasons = health.judge(processes, started)
    indexes = [r["worker"] for r in records]
    if len(set(indexes)) != len(indexes):
        valid = False
        reasons.append(f"generator processes shared a worker index ({sorted(indexes)}): the schedule was not split")
    missing = meta.get("workers", 1) - len(records)
    if missing > 0:
        valid = False
        reasons.append(f"{missing} generator process(es) left no results")
    completed = counts["ok"] + counts["error"]
    duration = float(meta.get("duration_s") or 0.0) or 1.0
    latency = _latency(book)
    lc = locust_counts(out)
    locust_requests = lc["requests"] if lc else None
    doc: dict[str, Any] = {
        "schema": SCHEMA, **meta,
        "counts": {"intended": completed + counts["dropped"], **counts},
        "rps": round(completed / duration, 2),
        "ok_rps": round(counts["ok"] / duration, 2),
        "p50_ms": latency["corrected"].get("p50_ms"), "p99_ms": latency["corrected"].get("p99_ms"),
        "p50_raw_ms": latency["raw"].get("p50_ms"), "p99_raw_ms": latency["raw"].get("p99_ms"),
        "latency_ms": latency,
        "arrivals": arrivals if meta.get("model") == "open" else None,
        "operations": {op: {**by_op.get(op, {}), "corrected": summarize(book.ops[op].corrected),
                            "raw": summarize(book.ops[op].raw)} if op in book.ops else by_op[op]
                       for op in sorted(set(book.ops) | set(by_op))},
        "locust": lc,
        # every Locust request is one sample; interrupted operations are samples only
        "consistent": locust_requests is None or locust_requests == completed - counts["interrupted"],
        "generator": {"valid": valid, "reasons": reasons, "processes": processes,
                      "late": sum(p.get("late", 0) for p in processes),
                      "cpu_warnings": sum(p.get("cpu_warnings", 0) for p in processes),
                      "cpu_seconds": round(sum(p.get("cpu_seconds", 0.0) for p in processes), 3)},
        "valid": valid,
        "files": {"samples": "samples.csv", "ledger": "ledger.jsonl", "histograms": "histograms.json",
                  "locust_csv": "locust_stats.csv", "locust_json": "locust_stats.json", "locust_html": "locust.html"},
        "sample_rows": n_samples, "ledger_entries": n_ledger,
    }
    tmp = out / ".load.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(out / "load.json")
    return doc
