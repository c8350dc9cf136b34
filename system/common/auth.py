"""Bearer tokens: ``base64url(json {"sub", "exp"}) + "." + base64url(HMAC-SHA256(secret, first part))``.

``issue_token`` makes one (the lab and load users call it with the lab secret);
``verify_token`` returns the user id or raises ``AuthError`` saying what was wrong.
The clock is injected so expiry is testable without waiting.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Callable

from lab.errors import UsageError


class AuthError(UsageError):
    """A bearer token is missing, malformed, forged or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def issue_token(secret: bytes | str, user: str, ttl_seconds: float = 3600.0,
                now: Callable[[], float] = time.time) -> str:
    body = _b64(json.dumps({"sub": user, "exp": int(now() + ttl_seconds)}, separators=(",", ":")).encode())
    sig = _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify_token(secret: bytes | str, token: str | None, now: Callable[[], float] = time.time) -> str:
    """The token's user id; ``AuthError`` when it is missing, malformed, forged or expired."""
    if not token:
        raise AuthError("missing bearer token: send 'Authorization: Bearer <token>' or ?token=")
    body, dot, sig = token.partition(".")
    if not dot or not body or not sig:
        raise AuthError("malformed token: expected '<payload>.<signature>'")
    expected = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(sig)
    except (ValueError, TypeError):
        raise AuthError("malformed token: the signature is not base64url") from None
    if not hmac.compare_digest(expected, given):
        raise AuthError("invalid token signature")
    try:
        claims = json.loads(_unb64(body))
        user, exp = claims["sub"], float(claims["exp"])
    except (ValueError, TypeError, KeyError):
        raise AuthError("malformed token payload: expected JSON with 'sub' and 'exp'") from None
    if not isinstance(user, str) or not user:
        raise AuthError("malformed token payload: 'sub' must be a non-empty string")
    if exp <= now():
        raise AuthError("token expired")
    return user


def bearer_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
