"""Read a run directory tolerantly into a typed view, noting what is missing and why.

A report is built from records, never from memory (STYLE.md §10), and a run that failed
half way still deserves one: :func:`load_run` never raises for a missing or broken file.
It records a :class:`Missing` entry (what, why) instead and carries on with what there is.
Only a directory that holds none of ``run.json``, ``experiments/`` or ``sim/result.json``
is rejected, with :class:`lab.errors.UsageError`.

The view keeps the parsed JSON as plain dicts (the contracts in docs/contracts.md are the
schema) and adds the few derived values every consumer needs, so that the plots, the HTML,
the Markdown and the JUnit writer read one thing.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import json
from pathlib import Path
from typing import Any

import numpy as np

from lab.errors import UsageError
from reports import shape
from reports.shape import conform

RUN_SCHEMA = "nineslab.run/1"
JOURNAL_SCHEMA = "nineslab.journal/1"
SIM_SCHEMA = "nineslab.sim/1"

_SHAPES = {RUN_SCHEMA: shape.RUN, JOURNAL_SCHEMA: shape.JOURNAL, SIM_SCHEMA: shape.SIM}

# Times above this are unix seconds; below it, seconds since the experiment started.
_UNIX_EPOCH_FLOOR = 1e8


@dataclasses.dataclass(frozen=True)
class Missing:
    """Something the report wanted and could not use, and why."""

    what: str      # a path relative to the run directory, or a named piece
    why: str       # one sentence


@dataclasses.dataclass
class Samples:
    """Per-request samples of the load generator (contracts §7), as columns."""

    start: np.ndarray        # unix seconds the request started (intended start when known)
    latency_ms: np.ndarray
    outcome: np.ndarray      # str: ok | error | dropped

    def __len__(self) -> int:
        return len(self.start)


@dataclasses.dataclass
class ExperimentView:
    """One experiment of the run: its journal (or why there is none) and its samples."""

    name: str
    directory: Path
    journal: dict[str, Any] | None
    samples: Samples | None
    missing: list[Missing]
    step_status: str | None = None     # run.json's step "experiment <name>": ok | running | failed | ...
    step_error: str | None = None

    @property
    def status(self) -> str:
        """The journal's status; without a journal, the run's step (running, failed) or "missing"."""
        if self.journal:
            return str(self.journal.get("status", "unknown"))
        if self.step_status in ("running", "failed", "interrupted"):
            return self.step_status
        return "missing"

    @property
    def verdict(self) -> str:
        return str(self.journal.get("verdict", "error")) if self.journal else "not run"

    @property
    def title(self) -> str:
        if self.journal:
            exp = self.journal.get("experiment") or {}
            return str(exp.get("title") or exp.get("name") or self.name)
        return self.name

    @property
    def started_at(self) -> float:
        """The origin of the experiment's time axis (unix seconds).

        The journal's ``t0`` (the load's first arrival), to which its per-second rows and
        hypothesis checks are relative; else ``started_at``; else the first sample.
        """
        for key in ("t0", "started_at"):
            if self.journal and _num(self.journal.get(key)) is not None:
                return float(self.journal[key])
        if self.samples is not None and np.isfinite(self.samples.start).any():
            return float(np.nanmin(self.samples.start))
        return 0.0

    def relative(self, t: float | None) -> float | None:
        """Seconds since the origin, whether ``t`` is unix (faults, events) or already relative."""
        if t is None:
            return None
        return t - self.started_at if t > _UNIX_EPOCH_FLOOR else t


@dataclasses.dataclass
class RunView:
    """Everything the report knows about one run directory."""

    run_dir: Path
    run: dict[str, Any] | None
    experiments: list[ExperimentView]
    sim: dict[str, Any] | None
    missing: list[Missing]

    @property
    def all_missing(self) -> list[Missing]:
        out = list(self.missing)
        for exp in self.experiments:
            out.extend(exp.missing)
        return out

    @property
    def run_errors(self) -> list[str]:
        errors = (self.run or {}).get("errors") or []
        return [_error_text(e) for e in errors]

    @property
    def name(self) -> str:
        return self.run_dir.name


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "run.json").is_file() or (path / "experiments").is_dir()
                              or (path / "sim" / "result.json").is_file())


def run_started_at(path: Path) -> float:
    """When a run started: run.json's started_at, else the modification time of its records.

    Not the directory's own mtime, which writing the report changes.
    """
    try:
        t = json.loads((path / "run.json").read_text(encoding="utf-8")).get("started_at")
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            return float(t)
    except (OSError, ValueError, AttributeError):
        pass
    for record in ("run.json", "experiments", "sim/result.json"):
        try:
            return (path / record).stat().st_mtime
        except OSError:
            continue
    return 0.0


def load_run(run_dir: str | Path) -> RunView:
    """Read RUN_DIR; raise :class:`UsageError` only when it is not a run directory at all."""
    path = Path(run_dir)
    if not is_run_dir(path):
        raise UsageError(f"RUN_DIR {path} is not a run directory: no run.json, experiments/ "
                         f"or sim/result.json in it; pass the directory `nines run` or "
                         f"`nines chaos run --out DIR` wrote.")
    missing: list[Missing] = []
    run = _read_json(path / "run.json", "run.json", RUN_SCHEMA, missing)
    hint = _failure_hint(run)
    experiments = _load_experiments(path, run, missing, hint)
    still_running = "the run was still going when the report was built" \
        if (run or {}).get("status") == "running" else ""
    sim = _read_json(path / "sim" / "result.json", "sim/result.json", SIM_SCHEMA, missing,
                     hint=_step_hint(run, "sim") or hint or still_running)
    return RunView(run_dir=path, run=run, experiments=experiments, sim=sim, missing=missing)


def _load_experiments(path: Path, run: dict[str, Any] | None, missing: list[Missing],
                      hint: str) -> list[ExperimentView]:
    on_disk = sorted(p.name for p in (path / "experiments").glob("*") if p.is_dir())
    planned = [_experiment_name(e) for e in ((run or {}).get("planned") or [])
               + ((run or {}).get("experiments") or [])]
    names = on_disk + [n for n in dict.fromkeys(planned) if n and n not in on_disk]
    if not names:
        missing.append(Missing("experiments/", "no experiment ran" + (f" ({hint})" if hint else "")))
    steps = {str(st.get("name")): st for st in (run or {}).get("steps") or [] if isinstance(st, dict)}
    still_running = (run or {}).get("status") == "running"
    views = []
    for name in names:
        exp_dir = path / "experiments" / name
        exp_missing: list[Missing] = []
        rel = f"experiments/{name}"
        step = steps.get(f"experiment {name}") or {}
        step_status, step_error = step.get("status"), step.get("error")
        if step_status == "running":
            why = "its step was still running when the report was built, or the run stopped during it"
        elif step_status and step_status != "ok":
            why = f"its step {step_status}" + (f": {step_error}" if step_error else "")
        else:
            why = hint
        if not exp_dir.is_dir():
            if step_status:
                reason = f"never started ({why})" if why else "never started"
            elif still_running:
                reason = "not started yet: the run was still going when the report was built"
            else:
                reason = "planned in run.json but never started" + (f" ({hint})" if hint else "")
            exp_missing.append(Missing(rel + "/", reason))
            views.append(ExperimentView(name, exp_dir, None, None, exp_missing, step_status, step_error))
            continue
        journal = _read_json(exp_dir / "journal.json", rel + "/journal.json", JOURNAL_SCHEMA,
                             exp_missing, hint=why)
        samples = _read_samples(exp_dir / "samples.csv", rel + "/samples.csv", exp_missing,
                                quiet=journal is None)
        views.append(ExperimentView(name, exp_dir, journal, samples, exp_missing, step_status, step_error))
    return views


def _read_json(file: Path, rel: str, schema: str, missing: list[Missing],
               hint: str = "") -> dict[str, Any] | None:
    suffix = f" ({hint})" if hint else ""
    if not file.is_file():
        missing.append(Missing(rel, "not written" + suffix))
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        missing.append(Missing(rel, f"unreadable: {exc}"))
        return None
    except json.JSONDecodeError as exc:
        missing.append(Missing(rel, f"not valid JSON at line {exc.lineno} column {exc.colno}: "
                                    f"{exc.msg} (the writer probably stopped half way)"))
        return None
    if not isinstance(data, dict):
        missing.append(Missing(rel, f"holds a JSON {type(data).__name__}, not an object"))
        return None
    found = data.get("schema")
    if found != schema:
        missing.append(Missing(rel, f"schema is {found!r}, expected {schema!r}; read as far as it goes"))
    notes = conform(data, _SHAPES[schema])
    if notes:
        shown = "; ".join(notes[:3]) + (f"; and {len(notes) - 3} more" if len(notes) > 3 else "")
        missing.append(Missing(rel, f"partly unusable: {shown}"))
    return data


def _read_samples(file: Path, rel: str, missing: list[Missing], quiet: bool = False) -> Samples | None:
    """``quiet``: the journal is missing too, so one note about the experiment is enough."""
    if not file.is_file():
        if not quiet:
            missing.append(Missing(rel, "not written (throughput is taken from the journal's "
                                        "per-second SLIs instead)"))
        return None
    start, latency, outcome = [], [], []
    bad = 0
    try:
        with file.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            cols = {name: i for i, name in enumerate(header)}
            if not {"latency_ms", "outcome"} <= set(cols) or not set(cols) & {"intended_ts", "start_ts"}:
                missing.append(Missing(rel, f"header lacks the contract's columns "
                                            f"(found {sorted(cols)})"))
                return None
            # the intended start, so an outage counts where the user wanted to act (contracts §7)
            i_t = cols.get("intended_ts", cols.get("start_ts"))
            i_lat, i_out = cols["latency_ms"], cols["outcome"]
            width = max(i_t, i_lat, i_out) + 1
            for row in reader:
                if len(row) < width:
                    bad += 1
                    continue
                try:
                    t = float(row[i_t])
                    lat = float(row[i_lat]) if row[i_lat] else float("nan")
                except ValueError:
                    bad += 1
                    continue
                start.append(t)
                latency.append(lat)
                outcome.append(row[i_out] or "error")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        missing.append(Missing(rel, f"unreadable: {exc}"))
        return None
    if bad:
        missing.append(Missing(rel, f"{bad} malformed row(s) skipped"))
    return Samples(np.asarray(start, dtype=float), np.asarray(latency, dtype=float),
                   np.asarray(outcome, dtype=object))


def _experiment_name(entry: Any) -> str | None:
    if isinstance(entry, str):
        return Path(entry).stem if entry.endswith((".yaml", ".yml")) else entry
    if isinstance(entry, dict):
        name = entry.get("name")
        return str(name) if name else None
    return None


def _failure_hint(run: dict[str, Any] | None) -> str:
    """A short 'why' drawn from run.json: its first error, or a status that is not a success.

    ``running`` is not a failure: ``nines run`` builds the report before it finishes.
    """
    if not run:
        return ""
    status = run.get("status")
    errors = run.get("errors") or []
    if errors:
        return f"run {status if status not in (None, 'running') else 'reported'}: {_error_text(errors[0])}"
    if status and status not in ("completed", "passed", "ok", "running"):
        return f"run status is {status}"
    return ""


# run.json step names that produce a file, by what the report reads
_STEPS = {"sim": ("simulate", "sim")}


def _step_hint(run: dict[str, Any] | None, what: str) -> str:
    """Why a step's output is missing: its failed entry in ``steps``, else its error line."""
    names = _STEPS.get(what, (what,))
    for step in (run or {}).get("steps") or []:
        if isinstance(step, dict) and str(step.get("name", "")).startswith(names) \
                and step.get("status") not in (None, "ok"):
            detail = step.get("error") or step.get("status")
            return f"step {step['name']} {step.get('status')}: {detail}"
    for err in (run or {}).get("errors") or []:
        if isinstance(err, dict) and str(err.get("step", "")).startswith(names):
            msg = err.get("message") or err.get("error") or "no message"
            return f"step {err['step']} failed: {msg}"
        if isinstance(err, str) and err.startswith(names):
            return f"step {err}"
    return ""


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        msg = err.get("message") or err.get("error") or json.dumps(err, sort_keys=True)
        step = err.get("step")
        return f"{step}: {msg}" if step and not str(msg).startswith(str(step)) else str(msg)
    return str(err)


def _num(v: Any) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None
