"""The HTTP shell of the migration service: the profiles API, the migration control API,
health and metrics. Errors map to clear 4xx/503 bodies ``{"error": "..."}``, never a 500.

::

    GET  /profiles/{id}            200 profile (with version and checksum) | 404
    PUT  /profiles/{id}            200 profile as stored | 422 naming the field
    GET  /migration/phase          the current phase
    POST /migration/phase          {"phase": "dual_read"}  200 | 409 (illegal or unverified)
    POST /migration/phase/back     one phase back, always allowed (409 only at the first)
    POST /migration/sync           run the backfill/sync job now; its report
    POST /migration/verify         compare the stores; counts and the ids that differ
    GET  /healthz /readyz /metrics
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import Body, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from system.migration.config import MigrationConfig
from system.common.events import EventLog
from system.migration.phases import Phase, PhaseChangeRefused
from system.migration.profile import ID_PATTERN, Profile, ProfileIn
from system.migration.service import Migration
from system.migration.store_base import StoreUnavailable
from system.migration.store_new import NewStore
from system.migration.store_old import OldStore

log = logging.getLogger("nineslab.migration")

ProfileId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description="profile id")]


class PhaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phase: Phase


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_rows_per_second: float | None = Field(None, gt=0, le=1e7)
    backfill: bool = True


class ErrorBody(BaseModel):
    error: str


def make_metrics() -> tuple[CollectorRegistry, dict[str, Any]]:
    reg = CollectorRegistry()
    return reg, {
        "requests": Counter("migration_requests", "Profile requests by operation and phase",
                            ["op", "phase"], registry=reg),
        "errors": Counter("migration_errors", "Requests answered with an error, by status", ["status"],
                          registry=reg),
        "repairs": Counter("migration_repairs_queued", "Best-effort writes queued for repair, by store",
                           ["store"], registry=reg),
        "mismatches": Counter("migration_read_mismatches", "Dual-read compare mismatches", registry=reg),
        "synced": Counter("migration_rows_synced", "Rows copied or repaired by the sync job", registry=reg),
        "verify_mismatches": Gauge("migration_verify_mismatches", "Mismatches in the last verify",
                                   registry=reg),
        "phase": Gauge("migration_phase", "Current phase (1 = in this phase)", ["phase"], registry=reg),
    }


def _field_of(err: dict) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "path", "query")]
    return ".".join(loc) or "body"


def create_app(config: MigrationConfig, migration: Migration | None = None) -> FastAPI:
    registry, metrics = make_metrics()
    s = config.settings
    if migration is None:
        old = OldStore("pg-old", config.deps.postgres_old, timeout=s.store_timeout_seconds, pool_size=s.pool_size)
        new = NewStore("pg-new", config.deps.postgres_new, timeout=s.store_timeout_seconds, pool_size=s.pool_size)
        migration = Migration(old, new, events=EventLog(config.name, config.events_file), metrics=metrics,
                              new_retry_seconds=s.new_retry_seconds, sync_batch_size=s.sync_batch_size,
                              sync_max_rows_per_second=s.sync_max_rows_per_second)
    regions = set(config.regions)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        for store in (migration.old, migration.new):
            try:
                await store.ping()   # creates the schema when the store is reachable
            except StoreUnavailable as exc:
                log.warning("at start-up: %s", exc)
        await migration.load_phase()
        background = None
        if s.sync_interval_seconds > 0:
            background = asyncio.create_task(_sync_forever(migration, s.sync_interval_seconds))
        try:
            yield
        finally:
            if background:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            await migration.old.close()
            await migration.new.close()
            if migration.events:
                migration.events.close()

    app = FastAPI(title="nineslab migration", version="1.0.0", lifespan=lifespan,
                  description="Profiles API moving from pg-old (schema v1) to pg-new (schema v2).")
    app.state.migration = migration
    errors = {409: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}}

    def error(status: int, message: str, **extra) -> JSONResponse:
        metrics["errors"].labels(str(status)).inc()
        return JSONResponse({"error": message, **extra}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        field = _field_of(first)
        msg = str(first.get("msg", "invalid"))
        return error(422, f"invalid {field}: {msg}", field=field,
                     detail=[{"field": _field_of(e), "message": str(e.get("msg"))} for e in errs])

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        return error(503, f"{exc}; retry later", store=exc.store)

    @app.exception_handler(PhaseChangeRefused)
    async def refused(_request: Request, exc: PhaseChangeRefused) -> JSONResponse:
        return error(409, str(exc))

    @app.get("/profiles/{profile_id}", response_model=Profile, responses={404: {"model": ErrorBody}, **errors})
    async def get_profile(profile_id: ProfileId):
        row = await migration.get(profile_id)
        if row is None:
            return error(404, f"no profile with id {profile_id!r}")
        return row.api()

    @app.put("/profiles/{profile_id}", response_model=Profile, responses=errors)
    async def put_profile(profile_id: ProfileId, body: ProfileIn):
        if body.home_region not in regions:
            return error(422, f"invalid home_region: {body.home_region!r} is not a region; use one of "
                         f"{', '.join(sorted(regions))}", field="home_region")
        row = await migration.put(profile_id, body.display_name, body.home_region, body.settings)
        return row.api()

    @app.get("/migration/phase")
    async def get_phase() -> dict:
        return migration.phase_info()

    @app.post("/migration/phase", responses=errors)
    async def set_phase(body: PhaseRequest) -> dict:
        return await migration.change_phase(body.phase)

    @app.post("/migration/phase/back", responses=errors)
    async def phase_back() -> dict:
        return await migration.back()

    @app.post("/migration/sync", responses=errors)
    async def run_sync(body: Annotated[SyncRequest | None, Body()] = None) -> dict:
        body = body or SyncRequest()
        return await migration.sync(body.max_rows_per_second, body.backfill)

    @app.post("/migration/verify", responses=errors)
    async def run_verify() -> dict:
        return await migration.verify()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorBody}})
    async def readyz():
        problems = await migration.readiness()
        if problems:
            return JSONResponse({"status": "unavailable", "error": "not ready: " + "; ".join(problems),
                                 "not_ready": problems}, status_code=503)
        return {"status": "ready", "phase": migration.phase.value}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _sync_forever(migration: Migration, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await migration.sync(backfill=False)
        except StoreUnavailable as exc:
            log.warning("background sync: %s", exc)
