"""The service configuration of contracts §5, loaded from the JSON file the runtime writes.

``load_config(path)`` returns a typed ``ServiceConfig``; a missing file, bad JSON or a
wrong field raises ``ConfigError`` naming the file and the key. Role settings stay a plain
dict here; each role reads its own typed view of them (``ChatSettings``, ``RouterSettings``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.errors import ConfigError


class Deps(BaseModel):
    model_config = ConfigDict(extra="allow")
    postgres: str | None = None
    redis: str | None = None
    nats: list[str] = Field(default_factory=list)


class Peer(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str                        # where the router health-checks the server
    region: str
    public_url: str | None = None   # where clients reach it, when that differs (docker: a published port)


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    role: str
    region: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    regions: list[str] = Field(min_length=1)
    secret_file: str | None = None
    secret: str | None = None          # tests may pass the secret inline instead of a file
    log_file: str | None = None
    deps: Deps = Field(default_factory=Deps)
    peers: dict[str, Peer] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    events_file: str | None = None

    def secret_bytes(self) -> bytes:
        """The HMAC key: the secret file's bytes, else the inline secret."""
        if self.secret_file:
            try:
                return Path(self.secret_file).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read the secret file: {exc.strerror}",
                                  path=self.secret_file) from exc
        if self.secret:
            return self.secret.encode()
        raise ConfigError("no secret_file given: bearer tokens cannot be checked without one",
                          key="secret_file")


class GlobalServiceConfig(BaseModel):
    """The common fields of a global (not per-region) service's config; each service
    subclasses it with its own ``name``/``role`` defaults and typed ``deps`` and ``settings``."""
    model_config = ConfigDict(extra="allow")
    name: str
    role: str
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    regions: list[str] = Field(default_factory=lambda: ["us-east", "eu-west", "ap-south"], min_length=1)
    log_file: str | None = None
    events_file: str | None = None


M = TypeVar("M", bound=BaseModel)


def validate_config(model: type[M], data: Any, *, path: str | None = None) -> M:
    """``data`` validated into ``model``; the first error names the file and the key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or None
        raise ConfigError(f"{err['msg']} (got {err.get('input')!r})"[:300], path=path, key=key) from exc


def load_config_file(model: type[M], path: str | Path) -> M:
    """A service config JSON file (contracts §5) validated into ``model``."""
    path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", path=path) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from exc
    return validate_config(model, data, path=path)


def parse_config(data: Any, *, path: str | None = None) -> ServiceConfig:
    return validate_config(ServiceConfig, data, path=path)


def load_config(path: str | Path) -> ServiceConfig:
    return load_config_file(ServiceConfig, path)


# names the topology file uses for the same settings
SETTING_ALIASES = {"unhealthy_after": "failure_threshold", "healthy_after": "recovery_threshold"}


def normalise_settings(model: type[BaseModel], settings: dict[str, Any]) -> dict[str, Any]:
    """Accept ``<name>_seconds`` for ``<name>`` and the aliases above; unknown keys stay (ignored)."""
    fields = model.model_fields
    out = {}
    for key, value in settings.items():
        name = SETTING_ALIASES.get(key, key)
        if name not in fields and name.endswith("_seconds") and name[:-8] in fields:
            name = name[:-8]
        out[name] = value
    return out


def typed_settings(model: type[BaseModel], settings: dict[str, Any], *, path: str | None = None):
    """Validate a role's ``settings`` dict into its typed model (unknown keys are ignored)."""
    try:
        return model.model_validate(normalise_settings(model, settings))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = "settings." + ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{err['msg']} (got {err.get('input')!r})", path=path, key=key) from exc
