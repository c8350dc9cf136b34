"""A profile (id, display name, home region, settings), its validation and its checksum.

The checksum is the sha256 of the canonical JSON of the profile (sorted keys, no spaces,
UTF-8) — what the load generator's ledger records (contracts §7) and what the verifier
compares row by row.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
MAX_SETTINGS_BYTES = 16 * 1024
MAX_DEPTH = 8


class ProfileIn(BaseModel):
    """The body of ``PUT /profiles/{id}``."""

    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(min_length=1, max_length=100)
    home_region: str = Field(min_length=1, max_length=40)
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("display_name", "home_region")
    @classmethod
    def _printable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("settings")
    @classmethod
    def _json_safe(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value, 0)
        if len(canonical_json(value)) > MAX_SETTINGS_BYTES:
            raise ValueError(f"must be at most {MAX_SETTINGS_BYTES} bytes of JSON")
        return value


def _check_json(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must not contain NaN or infinite numbers")
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 2 ** 63:
            raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, depth + 1)
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


class Profile(BaseModel):
    """A stored profile as the API returns it."""

    id: str
    display_name: str
    home_region: str
    settings: dict[str, Any]
    version: int
    checksum: str


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def document(profile_id: str, display_name: str, home_region: str, settings: dict[str, Any]) -> dict:
    return {"id": profile_id, "display_name": display_name, "home_region": home_region, "settings": settings}


def checksum(doc: dict) -> str:
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()
