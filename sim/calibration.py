"""Calibration: replace default detection, failover and recovery times with measured ones.

``nines sim run --calibrate RUN_DIR ...`` reads every ``RUN_DIR/experiments/*/journal.json``
(``nineslab.journal/1``, docs/contracts.md section 3; a directory holding a
``journal.json`` itself is accepted too) and groups the ``measurements`` by
``failure_mode``.  For a failure mode the model knows:

=====================  ==========================================  ==========================
journal field           model parameter                             fit
=====================  ==========================================  ==========================
detection_seconds       ``failure_modes.<mode>.detection``           lognormal (MLE)
failover_seconds        ``failure_modes.<mode>.failover``            lognormal (MLE), failover
                                                                     groups only
recovery_seconds        ``failure_modes.<mode>.recovery``            lognormal (MLE)
error_rate_during       ``failure_modes.<mode>.share``               mean, non-redundant
                                                                     non-failover groups only
scale_out_delay_seconds ``autoscaling.scale_out_delay``              lognormal (MLE), journals
                                                                     of ``autoscaling.calibrated_by``
                                                                     (default ``load-spike``)
downtime_seconds        recorded as evidence, not fitted             -
=====================  ==========================================  ==========================

Journal and model names match with ``-`` and ``_`` alike, so the experiments'
``regional-data-loss`` (``recovery_seconds`` = the measured RTO of a restore) calibrates
the model's ``regional_data_loss`` recovery, and ``load-spike`` the scale-out delay.

``nats_quorum_loss`` (the quorum mode of a group) calibrates that group's detection; a
model mode with ``calibrated_by: postgres_down`` (e.g. the analytics database) is
calibrated by that journal name as well.
With a single measurement the lognormal keeps the measured value as its median and a
default spread (sigma 0.5).  Uncertainty: the measurements of every parameter are
resampled with replacement and refitted, giving ``replicates`` alternative models; the
projection reruns on each (two-level Monte Carlo), so "P(blown year) = 4 % [2-9 %]".
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from lab.errors import ConfigError, UsageError

FIELDS = {"detection_seconds": "detection", "failover_seconds": "failover",
          "recovery_seconds": "recovery", "error_rate_during": "share",
          "scale_out_delay_seconds": "scale_out_delay"}
DEFAULT_SIGMA = 0.5
MIN_SECONDS = 1e-3


@dataclasses.dataclass
class Calibration:
    raw: dict                                   # the calibrated model (point fit)
    replicates: list[dict]                      # bootstrap refits, for the uncertainty
    measured: dict[str, dict]                   # parameter -> {n, from, fit}
    ignored: list[str]                          # failure modes the model does not know


def find_journals(run_dirs: list[str]) -> list[Path]:
    journals: list[Path] = []
    for run_dir in run_dirs:
        path = Path(run_dir)
        if not path.is_dir():
            raise UsageError(f"--calibrate {run_dir}: no such directory; pass a run directory "
                             "holding experiments/*/journal.json")
        found = sorted(path.glob("experiments/*/journal.json")) or sorted(path.glob("journal.json"))
        if not found:
            raise UsageError(f"--calibrate {run_dir}: no experiments/*/journal.json in it")
        journals.extend(found)
    return journals


def read_measurements(journals: list[Path]) -> dict[str, dict[str, list]]:
    """failure_mode -> {field: [values], 'from': [journal paths]} from journal measurements."""
    out: dict[str, dict[str, list]] = {}
    for journal in journals:
        try:
            data = json.loads(journal.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"not a readable JSON journal ({exc})", path=str(journal)) from exc
        if not isinstance(data, dict) or data.get("schema") != "nineslab.journal/1":
            raise ConfigError("not a nineslab.journal/1 file", path=str(journal), key="schema")
        for index, m in enumerate(data.get("measurements") or []):
            if not isinstance(m, dict) or not m.get("failure_mode"):
                raise ConfigError("a measurement without failure_mode", path=str(journal),
                                  key=f"measurements.{index}")
            entry = out.setdefault(m["failure_mode"], {f: [] for f in (*FIELDS, "downtime_seconds")})
            entry.setdefault("from", [])
            if str(journal) not in entry["from"]:
                entry["from"].append(str(journal))
            for field in (*FIELDS, "downtime_seconds"):
                value = m.get(field)
                if value is None:
                    continue
                if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                    raise ConfigError(f"{field} must be a non-negative number, got {value!r}",
                                      path=str(journal), key=f"measurements.{index}.{field}")
                entry[field].append(float(value))
    return out


def _lognormal_spec(seconds: np.ndarray) -> dict:
    hours = np.maximum(np.asarray(seconds, dtype=float), MIN_SECONDS) / 3600.0
    logs = np.log(hours)
    sigma = float(logs.std(ddof=1)) if len(logs) > 1 else DEFAULT_SIGMA
    return {"dist": "lognormal", "median": float(math.exp(logs.mean())), "sigma": max(sigma, 1e-3)}


def _same_mode(a: str, b: str) -> bool:
    """Journal and model failure-mode names match with '-' and '_' alike (load-spike)."""
    return a.replace("-", "_") == b.replace("-", "_")


def _calibrated_by(spec: dict, default: str) -> list[str]:
    by = spec.get("calibrated_by") or default
    return [by] if isinstance(by, str) else list(by)


def _targets(raw: dict, journal_mode: str) -> list[dict[str, tuple]]:
    """Where each journal field lands in the raw model, for every model mode it calibrates."""
    modes = raw.get("failure_modes", {})
    names = [name for name, spec in modes.items()
             if any(_same_mode(journal_mode, by) for by in _calibrated_by(spec, name))]
    out = [_mode_targets(raw, name) for name in names]
    groups = raw.get("groups", {})
    out += [{"detection_seconds": ("groups", gname, "detection")}
            for gname, group in groups.items()
            if group.get("quorum_mode") and _same_mode(group["quorum_mode"], journal_mode)]
    scaling = raw.get("autoscaling")
    if isinstance(scaling, dict) and any(_same_mode(journal_mode, by)
                                         for by in _calibrated_by(scaling, "load-spike")):
        out.append({"scale_out_delay_seconds": ("autoscaling", "scale_out_delay")})
    return out


def _mode_targets(raw: dict, mode: str) -> dict[str, tuple]:
    modes, groups = raw.get("failure_modes", {}), raw.get("groups", {})
    if mode in modes:
        group = groups.get(modes[mode].get("group"), {})
        redundant = group.get("n", 1) - group.get("k", 1) >= 1
        targets = {"detection_seconds": ("failure_modes", mode, "detection"),
                   "recovery_seconds": ("failure_modes", mode, "recovery")}
        if group.get("failover"):
            targets["failover_seconds"] = ("failure_modes", mode, "failover")
        if not group.get("failover") and not redundant:
            targets["error_rate_during"] = ("failure_modes", mode, "share")
        return targets
    return {}


def _fit(field: str, values: np.ndarray):
    if field == "error_rate_during":
        return float(np.clip(values.mean(), 0.0, 1.0))
    return _lognormal_spec(values)


def calibrate_model(raw: dict, run_dirs: list[str], *, replicates: int = 20, seed: int = 0) -> Calibration:
    """Fit the model's parameters to the journals under ``run_dirs``; see the module docstring."""
    measurements = read_measurements(find_journals(run_dirs))
    point = copy.deepcopy(raw)
    reps = [copy.deepcopy(raw) for _ in range(replicates)]
    rng = np.random.default_rng(seed)
    measured: dict[str, dict] = {}
    ignored: list[str] = []
    for mode in sorted(measurements):
        all_targets = _targets(raw, mode)
        if not all_targets:
            ignored.append(mode)
            continue
        entry = measurements[mode]
        for field, target in ((f, t) for targets in all_targets for f, t in targets.items()):
            values = np.asarray(entry[field], dtype=float)
            if values.size == 0:
                continue
            _set(point, target, _fit(field, values))
            for rep in reps:
                resample = values[rng.integers(0, values.size, values.size)]
                _set(rep, target, _fit(field, resample))
            label = {"failure_modes": target[1], "autoscaling": "autoscaling"}.get(target[0], mode)
            measured[f"{label}.{FIELDS[field]}"] = {
                "source": "measured", "n": int(values.size), "from": entry["from"],
                "fit": "mean" if field == "error_rate_during" else "lognormal", "journal_mode": mode,
                "mean_measured": float(values.mean()),
                "target": ".".join(target)}
        if entry["downtime_seconds"]:
            measured[f"{mode}.observed_downtime"] = {
                "source": "measured", "n": len(entry["downtime_seconds"]), "from": entry["from"],
                "fit": "evidence only", "mean_measured": float(np.mean(entry["downtime_seconds"]))}
    return Calibration(point, reps if measured else [], measured, ignored)


def _set(raw: dict, path: tuple, value) -> None:
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def parameter_record(raw: dict, calibration: Calibration | None) -> dict:
    """For every calibratable parameter: measured (n, from, fit) or default (with its source)."""
    sources = raw.get("sources", {})
    record: dict[str, dict] = {}
    router = raw.get("router", {})
    for key in ("check_interval", "failure_threshold", "timeout", "failover", "propagate"):
        cite = _cite(router, sources)
        record[f"router.{key}"] = {"source": "default", "cite": cite}
    for name, mode in sorted(raw.get("failure_modes", {}).items()):
        cite = _cite(mode, sources)
        for param in ("rate", "duration", "detection", "failover", "recovery", "share"):
            if param == "rate" and "deploys" in mode:
                param = "deploys"
            record[f"{name}.{param}"] = {"source": "default", "cite": cite}
    if isinstance(raw.get("autoscaling"), dict):
        record["autoscaling.scale_out_delay"] = {"source": "default",
                                                 "cite": _cite(raw["autoscaling"], sources)}
    if calibration is not None:
        record.update(calibration.measured)
        if calibration.ignored:
            record["_ignored_failure_modes"] = {"source": "journals", "modes": calibration.ignored,
                                                "note": "measured but not in the model"}
    return record


def _cite(section: dict, sources: dict) -> str | None:
    tag = section.get("source") if isinstance(section, dict) else None
    if tag is None:
        return None
    return f"{tag}: {sources[tag]}" if tag in sources else str(tag)
