"""The topology: what the lab runs — regions, infrastructure, services, replicas per profile,
and the named links every dependency connection and NATS route takes through the fault proxy.

A topology is a YAML file (``lab/topology.yaml`` is the default) validated into typed
objects; ``Topology.plan(profile)`` expands its templates into a :class:`Plan`, the flat
list of processes and links a runtime starts. Both steps are pure: no ports, no files
beyond the one read, no processes. A bad file fails with a :class:`ConfigError` naming
the file, the line, the key and what is wrong::

    topology = load_topology()                  # or load_topology(Path("my.yaml"))
    plan = topology.plan("quick")
    [p.name for p in plan.processes]            # ['pg-us-east', ..., 'router-2', ...]
    plan.links["chat-us-east-1>pg-us-east"].regions   # ('us-east',)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab.dr.policy import BackupPolicy
from lab.errors import ConfigError, UsageError

SCHEMA = "nineslab.topology/1"
INFRA_ROLES = ("postgres", "redis", "nats")
SERVICE_ROLES = ("chat", "router", "analytics", "migration")
PROXY = "proxy"                 # the fault proxy's process name and role
AUTOSCALER = "autoscaler"       # the process name and role of system.autoscaler
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_TEMPLATE = re.compile(r"\{(region|n)\}")


# --- the file, as written ------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DepSpec(_Strict):
    """One dependency of a service: an infrastructure part (or a list of them) and a database."""

    to: str | list[str]
    database: str | None = None


class InfraSpec(_Strict):
    role: Literal["postgres", "redis", "nats"]
    per_region: bool = False
    settings: dict[str, Any] = Field(default_factory=dict)


class AutoscaleSpec(_Strict):
    """Per-region auto-scaling of a replicated service (system.autoscaler): between ``min`` and
    ``max`` replicas a region, aiming at ``target_per_replica`` of ``metric`` a replica."""

    min: int = Field(ge=1)
    max: int = Field(ge=1)
    metric: Literal["connections", "messages_per_second"] = "connections"
    target_per_replica: float = Field(gt=0)
    tolerance: float = Field(0.1, ge=0, lt=1)            # hysteresis band around the target
    scale_out_cooldown_seconds: float = Field(10.0, ge=0)
    scale_in_cooldown_seconds: float = Field(60.0, ge=0)  # load must stay low this long
    evaluation_interval_seconds: float = Field(2.0, gt=0)
    drain_timeout_seconds: float = Field(30.0, gt=0)      # routers must drop a leaving replica by then
    profiles: list[str] | None = None                      # where an autoscaler runs (None: every profile)


class ServiceSpec(_Strict):
    role: Literal["chat", "router", "analytics", "migration"]
    per_region: bool = False
    replicas: dict[str, int] | int = 1
    deps: dict[str, DepSpec] = Field(default_factory=dict)
    peers: Literal["chat"] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    autoscale: AutoscaleSpec | None = None

    @field_validator("replicas")
    @classmethod
    def _positive(cls, value: dict[str, int] | int) -> dict[str, int] | int:
        counts = value.values() if isinstance(value, dict) else [value]
        if any(c < 1 for c in counts):
            raise ValueError("replicas must be at least 1")
        return value


class TopologyFile(_Strict):
    """The topology file as written, before templates are expanded."""

    schema_: Literal["nineslab.topology/1"] = Field(alias="schema")
    regions: list[str] = Field(min_length=1)
    profiles: dict[str, str] = Field(min_length=1)
    infrastructure: dict[str, InfraSpec]
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    backups: BackupPolicy = Field(default_factory=BackupPolicy)     # lab/dr: the regional chat stores

    @field_validator("regions")
    @classmethod
    def _region_names(cls, regions: list[str]) -> list[str]:
        for region in regions:
            if not _NAME.match(region):
                raise ValueError(f"region {region!r} must be lower-case letters, digits and dashes")
        if len(set(regions)) != len(regions):
            raise ValueError("regions must not repeat")
        return regions

    @model_validator(mode="after")
    def _templates(self) -> "TopologyFile":
        for section, parts in (("infrastructure", self.infrastructure), ("services", self.services)):
            for name, spec in parts.items():
                _check_name_template(section, name, spec.per_region,
                                     getattr(spec, "replicas", 1), set(self.profiles))
        for name, spec in self.services.items():
            if spec.autoscale is not None:
                _check_autoscale(name, spec, set(self.profiles))
        return self


def _check_autoscale(name: str, spec: "ServiceSpec", profiles: set[str]) -> None:
    loc = ("services", name, "autoscale")
    if spec.role != "chat" or not spec.per_region:
        raise _KeyError(loc, "only a per-region chat service can be auto-scaled")
    if spec.autoscale.min > spec.autoscale.max:
        raise _KeyError(loc + ("min",), f"min ({spec.autoscale.min}) is above max ({spec.autoscale.max})")
    unknown = sorted(set(spec.autoscale.profiles or ()) - set(profiles))
    if unknown:
        raise _KeyError(loc + ("profiles",), f"unknown profile {unknown[0]!r}; profiles are {sorted(profiles)}")
    counts = spec.replicas if isinstance(spec.replicas, dict) else {"": spec.replicas}
    for profile, count in counts.items():
        if profile and spec.autoscale.profiles is not None and profile not in spec.autoscale.profiles:
            continue
        if not spec.autoscale.min <= count <= spec.autoscale.max:
            where = f"for profile {profile!r} " if profile else ""
            raise _KeyError(("services", name, "replicas", profile) if profile else loc,
                            f"{count} replicas {where}is outside autoscale min..max "
                            f"({spec.autoscale.min}..{spec.autoscale.max})")


def _check_name_template(section: str, name: str, per_region: bool, replicas: dict[str, int] | int,
                         profiles: set[str]) -> None:
    plain = _TEMPLATE.sub("x", name)
    if not _NAME.match(plain):
        raise _KeyError((section, name), "a name must be lower-case letters, digits and dashes "
                                         "(with {region} and {n} as placeholders)")
    if per_region != ("{region}" in name):
        raise _KeyError((section, name), "per_region: true needs '{region}' in the name, and only then")
    if isinstance(replicas, dict):
        unknown = sorted(set(replicas) - profiles)
        if unknown:
            raise _KeyError((section, name, "replicas", unknown[0]),
                            f"unknown profile {unknown[0]!r}; profiles are {sorted(profiles)}")
        missing = sorted(profiles - set(replicas))
        if missing:
            raise _KeyError((section, name, "replicas"), f"no replica count for profile {missing[0]!r}")
    many = isinstance(replicas, dict) or replicas > 1
    if many != ("{n}" in name):
        raise _KeyError((section, name), "a replicated part needs '{n}' in its name, and only it")


class _KeyError(ValueError):
    """A semantic error at a known key path (turned into a ConfigError with its line)."""

    def __init__(self, loc: tuple, message: str) -> None:
        super().__init__(message)
        self.loc, self.message = loc, message


# --- the expanded plan -------------------------------------------------------------------

@dataclass(frozen=True)
class Dependency:
    """A service's dependency after expansion: the parts it reaches and the database it uses."""

    key: str                        # the key in the service config's "deps" (postgres, nats, ...)
    targets: tuple[str, ...]
    database: str | None
    many: bool                      # a list of addresses (NATS seeds), not one


@dataclass(frozen=True)
class ProcessPlan:
    """One process the runtime will start."""

    name: str
    role: str
    kind: Literal["infra", "proxy", "service"]
    region: str | None
    depends_on: tuple[str, ...] = ()
    deps: tuple[Dependency, ...] = ()
    peers: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    template: str | None = None     # the name with placeholders (what an autoscaler adds more of)


@dataclass(frozen=True)
class LinkPlan:
    """A named connection through the fault proxy, ``<from>><to>``."""

    name: str
    source: str
    target: str
    regions: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """A topology expanded for one profile: every process, in start order, and every link."""

    profile: str
    regions: tuple[str, ...]
    processes: tuple[ProcessPlan, ...]
    links: dict[str, LinkPlan]
    # system.autoscaler processes: the local runtime starts them once the rest is up (docker: not yet)
    autoscalers: tuple[ProcessPlan, ...] = ()

    def process(self, name: str) -> ProcessPlan:
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(name)

    def by_kind(self, kind: str) -> list[ProcessPlan]:
        return [p for p in self.processes if p.kind == kind]

    def databases(self) -> dict[str, list[str]]:
        """Database names each PostgreSQL part must have, from the services' dependencies."""
        wanted: dict[str, list[str]] = {}
        for proc in self.processes:
            for dep in proc.deps:
                if dep.database:
                    for target in dep.targets:
                        names = wanted.setdefault(target, [])
                        if dep.database not in names:
                            names.append(dep.database)
        return wanted


def link_name(source: str, target: str) -> str:
    return f"{source}>{target}"


@dataclass(frozen=True)
class Topology:
    """A validated topology file."""

    spec: TopologyFile
    path: str
    text: str = ""                  # the YAML, to point errors found on expansion at their line

    @property
    def profiles(self) -> list[str]:
        return list(self.spec.profiles)

    def plan(self, profile: str) -> Plan:
        """Expand the templates for ``profile`` into processes and links."""
        if profile not in self.spec.profiles:
            raise UsageError(f"unknown profile {profile!r}; choose one of {', '.join(self.spec.profiles)}")
        regions = tuple(self.spec.regions)
        infra: list[ProcessPlan] = []
        for template, ispec in self.spec.infrastructure.items():
            for region in (regions if ispec.per_region else (None,)):
                infra.append(ProcessPlan(name=_fill(template, region), role=ispec.role, kind="infra",
                                         region=region, settings=dict(ispec.settings)))
        infra_by_name = {p.name: p for p in infra}
        nats_nodes = [p for p in infra if p.role == "nats"]
        links: dict[str, LinkPlan] = {}

        def add_link(source: ProcessPlan, target: ProcessPlan) -> None:
            name = link_name(source.name, target.name)
            regions_of = tuple(dict.fromkeys(r for r in (source.region, target.region) if r))
            links[name] = LinkPlan(name, source.name, target.name, regions_of)

        # NATS routes: each node routes to every other node through its own link
        infra = [
            replace(p, depends_on=(PROXY,)) if p.role == "nats" and len(nats_nodes) > 1 else p
            for p in infra]
        if len(nats_nodes) > 1:
            for a in nats_nodes:
                for b in nats_nodes:
                    if a is not b:
                        add_link(a, b)

        made: list[tuple[ServiceSpec, ProcessPlan]] = []
        for template, sspec in self.spec.services.items():
            count = sspec.replicas[profile] if isinstance(sspec.replicas, dict) else sspec.replicas
            for region in (regions if sspec.per_region else (None,)):
                for n in range(1, count + 1):
                    deps = tuple(self._expand_dep(template, key, dep, region, regions, infra_by_name)
                                 for key, dep in sspec.deps.items())
                    targets = tuple(dict.fromkeys(t for d in deps for t in d.targets))
                    made.append((sspec, ProcessPlan(
                        name=_fill(template, region, n), role=sspec.role, kind="service", region=region,
                        depends_on=(PROXY,) + targets, deps=deps,
                        settings={**sspec.settings, "replicas": count}, template=template)))
        services: list[ProcessPlan] = []
        for sspec, proc in made:
            if sspec.peers:
                peers = tuple(p.name for _, p in made if p.role == sspec.peers)
                proc = replace(proc, peers=peers, depends_on=proc.depends_on + peers)
            for dep in proc.deps:
                for target in dep.targets:
                    add_link(proc, infra_by_name[target])
            services.append(proc)
        proxy = ProcessPlan(name=PROXY, role=PROXY, kind="proxy", region=None)
        seen: set[str] = {PROXY}
        for proc in (*infra, *services):
            if proc.name in seen:
                section = "infrastructure" if proc.kind == "infra" else "services"
                raise ConfigError(f"two parts are named {proc.name!r} (names must be unique; "
                                  f"{PROXY!r} is the fault proxy's)", path=self.path, key=section)
            seen.add(proc.name)
        return Plan(profile=profile, regions=regions, processes=(proxy, *infra, *services), links=links,
                    autoscalers=tuple(self._autoscalers(profile, made)))

    def _autoscalers(self, profile: str, made: list[tuple[ServiceSpec, ProcessPlan]]) -> list[ProcessPlan]:
        """One autoscaler process for every auto-scaled service; it starts after the replicas."""
        out = []
        for template, sspec in self.spec.services.items():
            scale = sspec.autoscale
            if scale is None or (scale.profiles is not None and profile not in scale.profiles):
                continue
            scaled = tuple(p.name for s, p in made if s is sspec)
            name = AUTOSCALER if len(out) == 0 else f"{AUTOSCALER}-{len(out) + 1}"
            out.append(ProcessPlan(name=name, role=AUTOSCALER, kind="service", region=None,
                                   depends_on=(PROXY,) + scaled, peers=(),
                                   settings={"template": template, **scale.model_dump(exclude={"profiles"})}))
        return out

    def _expand_dep(self, template: str, key: str, dep: DepSpec, region: str | None,
                    regions: tuple[str, ...], infra: dict[str, ProcessPlan]) -> Dependency:
        many = isinstance(dep.to, list)
        names: list[str] = []
        for target in (dep.to if many else [dep.to]):
            if "{region}" in target and region is None:
                if not many:
                    raise self._error(("services", template, "deps", key, "to"),
                                      f"{target!r} names a part per region, but {template} is global; "
                                      "use a list to reach every region")
                names += [_fill(target, r) for r in regions]
            else:
                names.append(_fill(target, region))
        for name in names:
            if name not in infra:
                raise self._error(("services", template, "deps", key, "to"),
                                  f"{name!r} is not an infrastructure part; known: {', '.join(sorted(infra))}")
            if dep.database and infra[name].role != "postgres":
                raise self._error(("services", template, "deps", key, "database"),
                                  f"a database needs a postgres part, but {name!r} is {infra[name].role}")
        return Dependency(key=key, targets=tuple(names), database=dep.database, many=many)

    def _error(self, loc: tuple, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, line=_line_in(self.text, loc), key=".".join(map(str, loc)))


def _fill(template: str, region: str | None, n: int | None = None) -> str:
    name = template
    if region is not None:
        name = name.replace("{region}", region)
    if n is not None:
        name = name.replace("{n}", str(n))
    return name


# --- loading -------------------------------------------------------------------------------

def default_path() -> Path:
    return Path(str(resources.files("lab").joinpath("topology.yaml")))


def load_topology(path: Path | str | None = None) -> Topology:
    """Read and validate a topology file (the packaged default when ``path`` is None)."""
    path = Path(path) if path is not None else default_path()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the topology file: {exc.strerror}", path=str(path)) from exc
    return parse_topology(text, str(path))


def parse_topology(text: str, path: str = "<topology>") -> Topology:
    """Validate topology YAML ``text``; ``path`` names it in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", path=path,
                          line=mark.line + 1 if mark else None) from exc
    if not isinstance(raw, dict):
        raise ConfigError("the topology must be a mapping with regions, profiles, infrastructure "
                          "and services", path=path)
    try:
        spec = TopologyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        ctx_error = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyError):
            loc, message = ctx_error.loc, ctx_error.message
        else:
            loc = tuple(p for p in first["loc"] if not isinstance(p, str) or p not in _UNION_TAGS)
            message = _friendly(first)
        key = ".".join(map(str, loc)) or None
        raise ConfigError(message, path=path, line=_line_in(text, loc), key=key) from exc
    topology = Topology(spec=spec, path=path, text=text)
    for profile in spec.profiles:    # expansion checks cross references (deps name real parts)
        topology.plan(profile)
    return topology


# pydantic names the branch of a union in an error's location; a reader wants the key only
_UNION_TAGS = {"str", "list[str]", "dict[str,int]", "int", "function-after[_positive(), union[dict[str,int],int]]"}


def _friendly(error: dict) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return "this key is required"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling)"
    if kind == "literal_error":
        return f"{msg.replace('Input should be', 'must be')}, not {error.get('input')!r}"
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    return msg[0].lower() + msg[1:] if msg else kind


def _line_in(text: str, loc: tuple) -> int | None:
    """The 1-based line of the key at ``loc`` in YAML ``text`` (the deepest one found)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
