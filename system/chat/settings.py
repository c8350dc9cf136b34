"""The chat server's typed view of its ``settings`` (contracts §5), with the defaults."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max_message_bytes: int = Field(64 * 1024, ge=1, le=512 * 1024)
    rate_limit_per_second: float = Field(200.0, gt=0)
    rate_limit_burst: float = Field(400.0, ge=1)
    flood_close_after: int = Field(200, ge=1)          # refusals in a row before closing with 1008
    publish_deadline: float = Field(5.0, gt=0)         # retry a JetStream publish this long
    publish_timeout: float = Field(2.0, gt=0)          # one publish attempt
    stream_replicas: int | None = Field(None, ge=1, le=5)   # None: R3, or R1 on a lone node
    consumer_batch: int = Field(256, ge=1, le=5000)
    ack_wait: float = Field(5.0, gt=0)                 # JetStream redelivers a batch a dead server held
    redelivery_delay: float = Field(1.0, ge=0)         # nak delay while the store is down
    breaker_failures: int = Field(3, ge=1)
    breaker_reset: float = Field(2.0, gt=0)
    dep_check_interval: float = Field(1.0, gt=0)
    session_ttl: int = Field(60, ge=2)
    history_cache_size: int = Field(200, ge=1)
    history_limit: int = Field(500, ge=1)
    startup_timeout: float = Field(30.0, gt=0)
    presence_heartbeat: float = Field(1.0, gt=0)       # each server's heartbeat to every region
    presence_stale_after: float = Field(3.0, gt=0)     # a region not heard this long: its presence is stale
    presence_flush_interval: float = Field(0.05, ge=0) # presence changes are batched this long
    nats_flush_delay: float = Field(0.001, ge=0, le=0.05)  # publishes gather this long into one write
