"""The lab state file (``nineslab.state/1``, docs/contracts.md §1): what runs, where, and how
to reach it — written by ``nines up``, kept true by process control, read by everything else.

``load_state(state_dir)`` reads and validates ``<state_dir>/state.json``; ``save_state(state)``
writes it atomically (a reader never sees half a file). Typed accessors answer the questions
other parts ask::

    state = load_state(state_dir)
    state.endpoint("pg-us-east")                 # 'postgresql://postgres@127.0.0.1:40001/postgres'
    state.processes_by(role="chat", region="eu-west")
    state.links_touching("us-east")              # what a region partition cuts

Unknown keys are kept on a round trip, so a newer writer's additions survive an older reader.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.errors import LabError

SCHEMA = "nineslab.state/1"
STATE_FILE = "state.json"
LOCK_FILE = ".state.lock"
ProcessStatus = Literal["starting", "running", "paused", "killed", "stopped"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ProcessRecord(_Record):
    """One process the lab started."""

    name: str
    role: str
    region: str | None = None
    kind: str = "service"               # infra | proxy | service (extension)
    pid: int | None = None
    create_time: float | None = None    # with pid: guards against a recycled pid
    ports: dict[str, int] = Field(default_factory=dict)
    data_dir: str | None = None
    log_file: str | None = None
    config_file: str | None = None      # services: the JSON of contracts §5 (extension)
    argv: list[str] = Field(default_factory=list)
    user: str | None = None             # run as this system user (PostgreSQL as root) (extension)
    stop_signal: int = 15               # (extension)
    depends_on: list[str] = Field(default_factory=list)
    status: ProcessStatus = "running"
    draining: bool = False              # leaving (scale-in): out of discovery, stopped next (extension)

    @property
    def main_port(self) -> int | None:
        return self.ports.get("main")


class LinkRecord(_Record):
    """A named link through the fault proxy."""

    listen: str
    upstream: str
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    regions: list[str] = Field(default_factory=list)


class ProxyRecord(_Record):
    api: str
    kind: str = "nineslab"              # nineslab | toxiproxy
    managed: bool = True                # started by the lab (else TOXIPROXY_URL named it) (extension)


class LabState(_Record):
    """The whole state file."""

    schema_: Literal["nineslab.state/1"] = Field(default=SCHEMA, alias="schema")
    runtime: str = "local"
    profile: str
    state_dir: str
    created_at: float
    secret_file: str | None = None
    processes: dict[str, ProcessRecord] = Field(default_factory=dict)
    endpoints: dict[str, str] = Field(default_factory=dict)
    proxy: ProxyRecord | None = None
    links: dict[str, LinkRecord] = Field(default_factory=dict)

    # --- accessors ---------------------------------------------------------------

    def process(self, name: str) -> ProcessRecord:
        try:
            return self.processes[name]
        except KeyError:
            raise LabError(f"no process named {name!r} in the lab; known: {', '.join(self.processes)}") from None

    def processes_by(self, *, role: str | None = None, region: str | None = None,
                     kind: str | None = None) -> list[ProcessRecord]:
        return [p for p in self.processes.values()
                if (role is None or p.role == role) and (region is None or p.region == region)
                and (kind is None or p.kind == kind)]

    def endpoint(self, name: str) -> str:
        try:
            return self.endpoints[name]
        except KeyError:
            raise LabError(f"no endpoint named {name!r} in the lab state") from None

    def links_touching(self, region: str) -> dict[str, LinkRecord]:
        return {n: link for n, link in self.links.items() if region in link.regions}

    def links_dict(self) -> dict[str, dict]:
        """The links as in the file (``from``/``to`` keys), for ``FaultProxy.ensure_links``."""
        return {n: link.model_dump(by_alias=True) for n, link in self.links.items()}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def state_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / STATE_FILE


def region_processes(state: LabState, region: str) -> list[ProcessRecord]:
    """Every process of one region (what a region outage takes down)."""
    return state.processes_by(region=region)


def load_state(state_dir: Path | str) -> LabState:
    """The state in ``state_dir``; a missing or broken file is a :class:`LabError`."""
    path = state_path(state_dir)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab state in {state_dir}: start the lab with `nines up`") from None
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read the lab state file {path}: {exc}") from exc
    if isinstance(raw, dict) and raw.get("schema") != SCHEMA:
        raise LabError(f"{path} has schema {raw.get('schema')!r}, this nineslab reads {SCHEMA}")
    try:
        return LabState.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LabError(f"the lab state file {path} is broken at "
                       f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def find_state(state_dir: Path | str) -> LabState | None:
    """The state in ``state_dir``, or None when there is no state file."""
    if not state_path(state_dir).exists():
        return None
    return load_state(state_dir)


def save_state(state: LabState, state_dir: Path | str | None = None) -> Path:
    """Write the state atomically (temp file + rename) to ``<state_dir>/state.json``."""
    return write_json_atomically(state_path(state_dir or state.state_dir), state.to_json())


LAST_STATE_FILE = "state.last.json"


def retire_state(state: LabState) -> None:
    """After ``down``: every process marked stopped and the file kept as ``state.last.json``
    (the lab is no longer up, and its last layout stays readable)."""
    for record in state.processes.values():
        record.status = "stopped"
    path = save_state(state)
    os.replace(path, path.with_name(LAST_STATE_FILE))


def write_json_atomically(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` by temp file + rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


@contextlib.contextmanager
def locked(state_dir: Path | str) -> Iterator[None]:
    """Hold the state dir's lock (an advisory file lock) for a read-modify-write."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update_process(state_dir: Path | str, record: ProcessRecord) -> LabState:
    """Replace one process's record in the file, keeping every other change made meanwhile."""
    with locked(state_dir):
        state = load_state(state_dir)
        state.processes[record.name] = record
        save_state(state, state_dir)
    return state
