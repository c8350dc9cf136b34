"""The ledger: one JSON line per write the load generator was acknowledged for (contracts §7).

Integrity checkers replay it against the system's stores to prove that nothing
acknowledged was lost, duplicated, reordered or invented. Kinds written here:
``chat`` (a sent message the server acked), ``chat_received`` (a message a load user
received), ``profile`` (a profile write the migration service acked; ``checksum`` is the
sha256 of the canonical JSON written) and ``analytics_event``.

Each generator process appends to its own part; the runner concatenates the parts.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO, Any, Iterable, Iterator


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checksum(value: Any) -> str:
    """sha256 of the canonical JSON of a written document."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


class LedgerWriter:
    def __init__(self, path: Path, buffer_lines: int = 200) -> None:
        self.path = path
        self._file: IO[str] = open(path, "a", encoding="utf-8")
        self._lines: list[str] = []
        self._limit = buffer_lines
        self.count = 0

    def record(self, kind: str, **fields: Any) -> None:
        self._lines.append(json.dumps({"kind": kind, **fields}, separators=(",", ":")) + "\n")
        self.count += 1
        if len(self._lines) >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._lines and not self._file.closed:
            self._file.writelines(self._lines)
            self._lines.clear()
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


def read_ledger(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def merge_parts(parts: Iterable[Path], out: Path) -> int:
    n = 0
    with open(out, "w", encoding="utf-8") as dst:
        for part in parts:
            with open(part, encoding="utf-8") as src:
                for line in src:
                    if line.strip():
                        dst.write(line)
                        n += 1
    return n
