"""The migration service's configuration: contracts §5 JSON, with deps ``postgres_old`` and
``postgres_new`` (fault-proxy link DSNs of database ``profiles`` on pg-old and pg-new) and
typed ``settings``. A bad file raises ``ConfigError`` naming the file and the key."""
from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from system.common.config import GlobalServiceConfig, load_config_file, validate_config


class MigrationDeps(BaseModel):
    model_config = ConfigDict(extra="allow")
    postgres_old: str
    postgres_new: str


class MigrationSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    store_timeout_seconds: float = Field(2.0, gt=0)
    new_retry_seconds: float = Field(1.0, ge=0)     # skip a failed best-effort store this long
    pool_size: int = Field(10, ge=1, le=100)
    sync_batch_size: int = Field(2000, ge=1, le=50000,   # the topology calls it backfill_batch
                                 validation_alias=AliasChoices("sync_batch_size", "backfill_batch"))
    sync_max_rows_per_second: float | None = Field(None, gt=0)
    sync_interval_seconds: float = Field(0.0, ge=0)  # > 0: run the sync job in the background


class MigrationConfig(GlobalServiceConfig):
    name: str = "migration"
    role: str = "migration"
    deps: MigrationDeps
    settings: MigrationSettings = Field(default_factory=MigrationSettings)


def parse_config(data: object, path: str | None = None) -> MigrationConfig:
    return validate_config(MigrationConfig, data, path=path)


def load_config(path: str | Path) -> MigrationConfig:
    return load_config_file(MigrationConfig, path)
