"""Per-request samples: the rows the chaos engine cuts into fault windows (contracts §7).

``samples.csv``: ``intended_ts,start_ts,end_ts,latency_ms,service_ms,outcome,operation,region,error``.
``latency_ms`` counts from the intended start (open model; the real start in the closed
model), ``service_ms`` from the real start; ``outcome`` is ``ok``, ``error`` or ``dropped``.

Each generator process writes its own part file through a buffered :class:`SampleWriter`;
the runner merges the parts in intended-time order (:func:`merge_parts`).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

COLUMNS = ("intended_ts", "start_ts", "end_ts", "latency_ms", "service_ms",
           "outcome", "operation", "region", "error")
OUTCOMES = ("ok", "error", "dropped")


@dataclass(frozen=True, slots=True)
class Sample:
    intended_ts: float
    start_ts: float | None      # None for a dropped arrival: it never started
    end_ts: float | None
    latency_ms: float | None
    service_ms: float | None
    outcome: str
    operation: str
    region: str = ""
    error: str = ""

    def row(self) -> list[str]:
        # hot path (one call a request): no helper closures, %-formatting
        if self.start_ts is None:
            return ["%.6f" % self.intended_ts, "", "", "", "", self.outcome, self.operation, self.region,
                    self.error.replace("\n", " ")[:200]]
        return ["%.6f" % self.intended_ts, "%.6f" % self.start_ts, "%.6f" % self.end_ts,
                "%.3f" % self.latency_ms, "%.3f" % self.service_ms, self.outcome, self.operation,
                self.region, self.error.replace("\n", " ")[:200] if self.error else ""]


def parse_row(row: dict[str, str]) -> Sample:
    def num(key: str) -> float | None:
        v = row[key]
        return float(v) if v else None
    return Sample(float(row["intended_ts"]), num("start_ts"), num("end_ts"), num("latency_ms"),
                  num("service_ms"), row["outcome"], row["operation"], row["region"], row["error"])


class SampleWriter:
    """Buffered CSV writer of samples; ``flush`` often enough that a kill loses little."""

    def __init__(self, path: Path, buffer_rows: int = 2000) -> None:
        self.path = path
        self._file: IO[str] = open(path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(COLUMNS)
        self._rows: list[list[str]] = []
        self._limit = buffer_rows
        self.count = 0

    def write(self, sample: Sample) -> None:
        self._rows.append(sample.row())
        self.count += 1
        if len(self._rows) >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._rows and not self._file.closed:
            self._csv.writerows(self._rows)
            self._rows.clear()
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


def read_samples(path: Path) -> Iterator[Sample]:
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield parse_row(row)


def merge_parts(parts: Iterable[Path], out: Path) -> int:
    """Merge part files (each written in roughly intended order) into one, sorted; returns rows."""
    rows: list[tuple[float, list[str]]] = []
    for part in parts:
        with open(part, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader, None)
            rows.extend((float(r[0]), r) for r in reader if r)
    rows.sort(key=lambda x: x[0])
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(r for _, r in rows)
    return len(rows)


__all__ = ["COLUMNS", "OUTCOMES", "Sample", "SampleWriter", "read_samples", "merge_parts"]
