"""Google's JSON error envelope.

Two families answer differently at Google, and the clients read both:
- Compute (a "v1 REST" API) puts a `reason` such as ``notFound`` in ``errors[]`` with domain ``global``;
- one-platform APIs (VPC Access, Cloud Run v2, Logging) answer with a canonical ``status``
  (``NOT_FOUND``, ``INVALID_ARGUMENT`` ...) and ``details``, and no ``errors[]``.
Every ApiError renders into ``{"error": {"code", "message", ...}}`` with the family's extra keys.
"""

from __future__ import annotations

from typing import Any

# HTTP code -> canonical gRPC status name, as Google's ESF front end reports it.
STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",  # not canonical; Google answers unknown verbs with 404 HTML, we stay JSON
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Compute's legacy `reason` strings for the same codes.
COMPUTE_REASON_BY_CODE = {
    400: "invalid",
    403: "forbidden",
    404: "notFound",
    409: "alreadyExists",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
    504: "backendError",
}


class ApiError(Exception):
    """An error answered in Google's envelope. Raised anywhere below a route; never a crash."""

    def __init__(self, code: int, message: str, *, reason: str | None = None, status: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or COMPUTE_REASON_BY_CODE.get(code, "invalid")
        self.status = status or STATUS_BY_CODE.get(code, "UNKNOWN")
        self.details = details or []
        self.headers = headers or {}

    def body(self, *, family: str = "one-platform") -> dict[str, Any]:
        """The envelope. Compute's (``family="compute"``) carries ``errors[]`` and no ``status``;
        one-platform errors carry ``status`` and no ``errors[]``, as the REAL recordings show."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if family == "compute":
            error["errors"] = [{"message": self.message, "domain": "global", "reason": self.reason}]
        else:
            error["status"] = self.status
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid(message: str, reason: str = "invalid") -> ApiError:
    return ApiError(400, message, reason=reason)


def not_found(resource: str) -> ApiError:
    return ApiError(404, f"The resource '{resource}' was not found", reason="notFound")


def already_exists(resource: str) -> ApiError:
    return ApiError(409, f"The resource '{resource}' already exists", reason="alreadyExists")


def resource_in_use(resource: str, user: str) -> ApiError:
    return ApiError(400, f"The {resource} resource is already being used by '{user}'",
                    reason="resourceInUseByAnotherResource")


def precondition(message: str) -> ApiError:
    return ApiError(412, message, reason="conditionNotMet", status="FAILED_PRECONDITION")
