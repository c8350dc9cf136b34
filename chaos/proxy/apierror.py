"""The errors of the Toxiproxy HTTP API: a message and a status, worded as upstream's ``api.go``.

They are answered as ``{"error": "<message>", "status": <code>}`` (see ``api.py``);
any other failure inside the server becomes a 500 with its own text, as in upstream.
"""
from __future__ import annotations


class ApiError(Exception):
    """An API failure with the HTTP status the real server gives it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def joined(self, detail: str) -> "ApiError":
        """Upstream's ``joinError``: ``"<message>: <detail>"`` with the same status."""
        return ApiError(f"{self.message}: {detail}", self.status)


ERR_BAD_REQUEST_BODY = ApiError("bad request body", 400)
ERR_MISSING_FIELD = ApiError("missing required field", 400)
ERR_PROXY_NOT_FOUND = ApiError("proxy not found", 404)
ERR_PROXY_EXISTS = ApiError("proxy already exists", 409)
ERR_INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
ERR_INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
ERR_TOXIC_EXISTS = ApiError("toxic already exists", 409)
ERR_TOXIC_NOT_FOUND = ApiError("toxic not found", 404)


def bad_request(detail: str) -> ApiError:
    return ERR_BAD_REQUEST_BODY.joined(detail)


def missing_field(detail: str) -> ApiError:
    return ERR_MISSING_FIELD.joined(detail)


def internal(message: str) -> ApiError:
    return ApiError(message, 500)
