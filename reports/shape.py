"""Make parsed records safe to read: every container the report walks has the type it expects.

Records come from other processes, sometimes cut off or from an older writer. Rather than
guard every ``.get`` downstream, :func:`conform` checks the containers named in a small
spec once, at load time: a key with the wrong type is dropped, list entries of the wrong
type are skipped, a numeric array with a non-number is dropped whole, and each repair is
returned as a note so the report can say what it ignored. Scalars are left to the readers
(they go through ``float``/``str`` checks anyway).
"""
from __future__ import annotations

from typing import Any

NUM = "number"

# spec: {key: type | [entry type] | {nested spec}}; [NUM] is a list of numbers
JOURNAL = {
    "experiment": dict, "faults": [{"targets": list}], "measurements": [dict], "invariants": [{"counts": dict, "examples": list}],
    "slis": {"before": dict, "during": dict, "after": dict, "per_second": [dict]},
    "hypothesis": {"before": {"probes": [dict]}, "after": {"probes": [dict]}, "during": [{"probes": [dict]}]},
    "errors": list, "reasons": list, "versions": dict,
}
SIM = {
    "downtime_minutes": {"histogram": {"edges": [NUM], "counts": [NUM]}},
    "p_exceed": dict, "attribution": dict, "burn_rate_alerts": dict, "sensitivities": [dict],
    "calibration": dict, "gate": {"reasons": list}, "model": dict,
    "monthly": {"mean_burn": [NUM], "p_exhausted_by_month": [NUM], "cumulative_p05": [NUM], "cumulative_p95": [NUM]},
}
RUN = {"experiments": list, "planned": list, "steps": [dict], "errors": list, "versions": dict}


def conform(data: dict[str, Any], spec: dict[str, Any], where: str = "") -> list[str]:
    """Repair ``data`` in place to match ``spec``; return one note per repair."""
    notes: list[str] = []
    for key, want in spec.items():
        if key not in data or data[key] is None:
            continue
        value, name = data[key], f"{where}{key}"
        if isinstance(want, dict):
            if not isinstance(value, dict):
                notes.append(_dropped(name, value, "an object"))
                del data[key]
            else:
                notes += conform(value, want, name + ".")
        elif isinstance(want, list):
            if not isinstance(value, list):
                notes.append(_dropped(name, value, "a list"))
                del data[key]
                continue
            entry = want[0]
            if entry == NUM:
                if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x == x for x in value):
                    notes.append(f"{name} holds something other than numbers; ignored")
                    del data[key]
                continue
            kind = dict if isinstance(entry, dict) else entry
            kept = [x for x in value if isinstance(x, kind)]
            if len(kept) != len(value):
                notes.append(f"{name}: {len(value) - len(kept)} entr{'y' if len(value) - len(kept) == 1 else 'ies'} "
                             f"of the wrong type skipped")
                data[key] = kept
            if isinstance(entry, dict):
                for i, x in enumerate(kept):
                    notes += conform(x, entry, f"{name}[{i}].")
        elif not isinstance(value, want):
            notes.append(_dropped(name, value, "an object" if want is dict else "a list" if want is list else want.__name__))
            del data[key]
    return notes


def _dropped(name: str, value: Any, expected: str) -> str:
    return f"{name} is a JSON {_json_type(value)}, expected {expected}; ignored"


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)
