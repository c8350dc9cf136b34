"""The analytics service's configuration: contracts §5 JSON with deps ``postgres`` (database
``analytics`` on pg-analytics, through a fault-proxy link) and ``nats`` (a list of URLs), and
typed ``settings``. A bad file raises ``ConfigError`` naming the file and the key."""
from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from system.common.config import GlobalServiceConfig, load_config_file, validate_config


class AnalyticsDeps(BaseModel):
    model_config = ConfigDict(extra="allow")
    postgres: str
    nats: list[str] = Field(min_length=1)


class AnalyticsSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    fetch_batch: int = Field(2000, ge=1, le=10000)
    ack_wait_seconds: float = Field(5.0, gt=0)
    workers_per_stream: int = Field(1, ge=1, le=8)
    max_ack_pending: int = Field(10000, ge=1)
    stream_replicas: int | None = Field(None, ge=1, le=5)   # None: R3, or R1 on a lone node
    # the topology's names (alert_error_rate, dashboard_interval_seconds) are accepted too
    alert_threshold: float = Field(0.05, gt=0, lt=1,
                                   validation_alias=AliasChoices("alert_threshold", "alert_error_rate"))
    alert_window_seconds: int = Field(10, ge=1, le=3600)
    alert_min_events: int = Field(20, ge=1)
    active_window_seconds: int = Field(60, ge=1)
    rate_window_seconds: int = Field(5, ge=1, le=60)
    latency_window_seconds: int = Field(10, ge=1, le=3600)
    snapshot_interval_seconds: float = Field(1.0, gt=0, validation_alias=AliasChoices(
        "snapshot_interval_seconds", "dashboard_interval_seconds"))
    batch_interval_seconds: float = Field(60.0, gt=0)
    batch_horizon_seconds: int = Field(10, ge=0)
    batch_lookback_seconds: int = Field(600, ge=1)
    lag_alarm_seconds: float = Field(5.0, gt=0)
    # raw events older than this are deleted after each batch run (48 h: twice the CHAT
    # stream's age limit, so a stream replay never meets an event whose key is gone)
    raw_retention_seconds: int = Field(48 * 3600, ge=60)

    @model_validator(mode="after")
    def _retention_covers_the_batch(self) -> "AnalyticsSettings":
        needed = self.batch_lookback_seconds + self.batch_horizon_seconds
        if self.raw_retention_seconds <= needed:
            raise ValueError(f"raw_retention_seconds ({self.raw_retention_seconds}) must exceed "
                             f"batch_lookback_seconds + batch_horizon_seconds ({needed}): the batch "
                             "layer recomputes from those raw events")
        return self


class AnalyticsConfig(GlobalServiceConfig):
    name: str = "analytics"
    role: str = "analytics"
    deps: AnalyticsDeps
    settings: AnalyticsSettings = Field(default_factory=AnalyticsSettings)


def parse_config(data: object, path: str | None = None) -> AnalyticsConfig:
    return validate_config(AnalyticsConfig, data, path=path)


def load_config(path: str | Path) -> AnalyticsConfig:
    return load_config_file(AnalyticsConfig, path)
