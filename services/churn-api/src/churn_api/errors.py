"""Client mistakes as JSON: a status, a short error name and where the body is wrong.

msgspec reports a validation error as ``"<reason> - at `<path>`"``; this module
splits that into ``ErrorDetail(path, reason)`` and moves the field name of a
missing or unknown field into the path, so ``$.records[3]`` + "missing field
`tenure`" becomes ``$.records[3].tenure``.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from churn_api.schemas import ErrorDetail, ErrorResponse

__all__ = ["ApiError", "decode_error", "error_body", "validation_error"]

_MISSING: Final = re.compile(r"Object missing required field `(?P<name>.+)`")
_UNKNOWN: Final = re.compile(r"Object contains unknown field `(?P<name>.+)`")
_encoder = msgspec.json.Encoder()


class ApiError(Exception):
    """An error the API answers with ``status`` and an ``ErrorResponse`` body."""

    def __init__(self, status: int, error: str, details: list[ErrorDetail]) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.details = details


def error_body(status: int, error: str, details: list[ErrorDetail]) -> bytes:
    """Encode an ``ErrorResponse``."""
    return _encoder.encode(ErrorResponse(status=status, error=error, detail=details))


def validation_error(exc: msgspec.ValidationError) -> ApiError:
    """422 naming the JSON path and the reason msgspec gave."""
    message = str(exc)
    reason, sep, where = message.rpartition(" - at `")
    path = where.removesuffix("`") if sep else "$"
    if not sep:
        reason = message
    for pattern, what in ((_MISSING, "required field is missing"), (_UNKNOWN, "unknown field")):
        match = pattern.fullmatch(reason)
        if match:
            path, reason = f"{path}.{match['name']}", what
    return ApiError(422, "validation_error", [ErrorDetail(path=path, reason=reason)])


def decode_error(exc: msgspec.DecodeError) -> ApiError:
    """400 for a body that is not JSON at all."""
    return ApiError(400, "malformed_json", [ErrorDetail(path="$", reason=str(exc))])
