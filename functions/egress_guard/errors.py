"""The one exception family of egress-guard: permanent (log and acknowledge) or transient (retry).

A Cloud Function retries an event only when the handler raises. So every failure is sorted into:

- ``PermanentError``: retrying cannot help (a malformed entry, an event that is not ours, a bad
  name, a 403 on a project we do not manage, a stale event). The handler logs ``reason`` and
  returns normally, so the event is acknowledged; a guardrail that could not finish also
  publishes a ``failed`` finding, unless there was nothing to do (``NothingToDo``).
- ``TransientError``: retrying may help (429, 5xx, an operation not done yet). The handler raises
  it, the platform redelivers, and the event-age cut-off bounds the retries.

``classify_api_error`` turns a google-api-core (or transport) exception into one of the two;
``api`` calls it for every Google API call. A write that finds the state changed (409, 412, or
404 on a change) is a ``Conflict`` instead (``api.write``): an outcome, re-read and plan again.
"""

from __future__ import annotations

import re
from typing import Any


class EgressGuardError(Exception):
    """Base of every error egress-guard raises on purpose."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # a sentence a person can act on
        self.code = code  # HTTP status of the API error behind it, when there is one

    def __str__(self) -> str:
        return self.reason


class PermanentError(EgressGuardError):
    """Retrying will not help: log ``reason`` and acknowledge the event."""

    def __init__(self, reason: str, *, field: str | None = None, code: int | None = None) -> None:
        super().__init__(reason, code=code)
        self.field = field  # the input field at fault (e.g. "protoPayload.resourceName"), if any


class MalformedEvent(PermanentError):
    """The delivery or the LogEntry inside it does not have the shape we parse."""


class InvalidName(PermanentError):
    """A name taken from an event or a policy does not match Google's pattern for it."""


class NotOurEvent(PermanentError):
    """A well-formed audit entry that egress-guard does not act on (other method, own write, failed call)."""


class NothingToDo(PermanentError):
    """The event is ours, but there is nothing to decide: what it names is gone, or cannot carry
    traffic (a connector in ERROR, a subnet deleted). Acknowledged, with no finding."""


class StaleEvent(PermanentError):
    """Older than the configured maximum age: acknowledged so that a retry storm ends."""


class TransientError(EgressGuardError):
    """Retrying may help: raise it so that the platform redelivers the event."""


class Conflict(Exception):
    """A write found the live state changed since it was read (409 on an insert, 404 or 412 on a
    change): not an error but an outcome. The converge loop re-reads and plans again."""


class ConfigError(EgressGuardError):
    """The deployment is misconfigured (environment or policy). Raised at cold start."""


# HTTP codes where a later retry can succeed. 408 is a request timeout; 412 is Compute's
# "fingerprint does not match" on a read-modify-write (re-read and try again).
_TRANSIENT_CODES = frozenset({408, 412, 429, 500, 502, 503, 504})

# Compute answers some retryable conditions with 400/403 and says so only in errors[].reason.
_TRANSIENT_REASONS = frozenset({
    "resourceNotReady",  # another operation is modifying the resource (e.g. the router)
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "backendError",
    "RATE_LIMIT_EXCEEDED",  # ErrorInfo reason of per-minute API quotas
})
# Not transient: Compute's "quotaExceeded" (403) is a project resource quota (e.g. routers per
# network): it does not recover by itself, a person must raise the quota.

_WHAT_TO_DO = {
    400: "the request was rejected as invalid",
    401: "the credentials were rejected; check the function's service account",
    403: "permission denied; the function's service account lacks a permission here, or the project is not managed by egress-guard",
    404: "the resource does not exist (any more)",
    409: "the resource already exists or changed concurrently; callers treat this as an outcome after a re-read",
}


def classify_api_error(exc: BaseException, *, action: str = "") -> EgressGuardError:
    """Sort an exception from a Google client call into permanent or transient.

    ``action`` names what was being done (e.g. ``"compute.routers.patch projects/p/regions/r/routers/x"``)
    and starts the reason. An ``EgressGuardError`` is returned unchanged. Use it as
    ``raise classify_api_error(exc, action=...) from exc``.
    """
    if isinstance(exc, EgressGuardError):
        return exc
    prefix = f"{action}: " if action else ""
    last = _last_attempt(exc)
    if last is not None:  # a bounded retry gave up: sorted as its last error, which says what went wrong
        return classify_api_error(last, action=f"{action + ' ' if action else ''}(retried until the "
                                                 f"{_retry_bound(exc)} bound)")
    code = _http_code(exc)
    reasons = _error_reasons(exc)
    detail = _message(exc)

    if code is not None:
        if code in _TRANSIENT_CODES or code >= 500 or reasons & _TRANSIENT_REASONS or _is_aborted(exc):
            return TransientError(f"{prefix}HTTP {code} (will retry): {detail}", code=code)
        what = _WHAT_TO_DO.get(code, "the request failed")
        return PermanentError(f"{prefix}HTTP {code}, {what}: {detail}", code=code)

    if _is_network_error(exc):
        return TransientError(f"{prefix}network error (will retry): {type(exc).__name__}: {detail}")
    # Anything else is a bug or an unexpected library state. Retrying would repeat it until the
    # event-age cut-off; acknowledging with a clear reason gets a person to look at it sooner.
    return PermanentError(f"{prefix}unexpected error: {type(exc).__name__}: {detail}")


# A per-minute rate quota refused the request (Compute: 403 ``rateLimitExceeded``, docs/gcp-facts.md
# §14; others: 429 or ErrorInfo RATE_LIMIT_EXCEEDED). The request made no change: it may be sent
# again unchanged once the quota's window refills (``api.RateQuotaWait``).
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})


def is_rate_limited(exc: BaseException) -> bool:
    """Whether an API error is a rate quota's refusal (to wait for the window, not to fail)."""
    if isinstance(exc, EgressGuardError):
        exc = exc.__cause__ if isinstance(exc.__cause__, BaseException) else exc
    code = _http_code(exc)
    return code == 429 or (code in (403, 429) and bool(_error_reasons(exc) & _RATE_LIMIT_REASONS))


def _last_attempt(exc: BaseException) -> BaseException | None:
    """The last error behind google-api-core's ``RetryError`` (its retry deadline passed), if any."""
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # pragma: no cover
        return None
    cause = getattr(exc, "cause", None) if isinstance(exc, gexc.RetryError) else None
    return cause if isinstance(cause, BaseException) and not isinstance(cause, gexc.RetryError) else None


def _retry_bound(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc)
    match = re.search(r"Timeout of ([0-9.]+)s", text)
    return f"{float(match.group(1)):g} s" if match else "retry"


def _http_code(exc: BaseException) -> int | None:
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # pragma: no cover - google-api-core is a dependency of every client
        return None
    if isinstance(exc, gexc.RetryError):
        return 504  # api_core gave up retrying within its deadline: try again later
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.code
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        grpc_code = getattr(exc, "grpc_status_code", None)
        return _GRPC_TO_HTTP.get(getattr(grpc_code, "name", ""), 500)
    return None


# For gRPC-only errors that carry no HTTP code (rare with the REST transports we use).
_GRPC_TO_HTTP = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


def _is_aborted(exc: BaseException) -> bool:
    """ABORTED (a concurrency conflict) arrives as HTTP 409 over REST; retrying after a re-read helps."""
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, gexc.Aborted):
        return True
    status = _error_body(exc).get("status")
    return status == "ABORTED"


def _error_body(exc: BaseException) -> dict[str, Any]:
    response = getattr(exc, "response", None)
    if response is None:
        return {}
    try:
        body = response.json()
    except Exception:  # not JSON, or no body: nothing more to learn
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_reasons(exc: BaseException) -> frozenset[str]:
    reasons: set[str] = set()
    for item in getattr(exc, "errors", None) or ():
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            reasons.add(item["reason"])
    reason = getattr(exc, "reason", None)  # ErrorInfo.reason, when the API sent one
    if isinstance(reason, str) and reason:
        reasons.add(reason)
    for item in _error_body(exc).get("errors", None) or ():
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            reasons.add(item["reason"])
    return frozenset(reasons)


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message else str(exc)
    return " ".join(text.split())[:500] or type(exc).__name__


# The transport's own failures (no HTTP answer): a later retry can succeed. By class name, so that
# neither requests nor urllib3 nor google-auth is imported to check.
_NETWORK_ERRORS = frozenset({
    "requests.exceptions.ConnectionError",
    "requests.exceptions.Timeout",
    "requests.exceptions.ChunkedEncodingError",
    "urllib3.exceptions.HTTPError",
    "google.auth.exceptions.TransportError",
    "google.auth.exceptions.RefreshError",  # the metadata server did not answer in time
    "concurrent.futures._base.TimeoutError",
})


def _class_names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__name__}" for cls in type(exc).__mro__}


def _is_network_error(exc: BaseException) -> bool:
    return isinstance(exc, (ConnectionError, TimeoutError)) or bool(_class_names(exc) & _NETWORK_ERRORS)


def is_api_error(exc: BaseException) -> bool:
    """An error from a Google API or the network on the way to it (to classify); anything else is
    a bug and propagates."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.GoogleAPIError) or _is_network_error(exc):
        return True
    return "requests.exceptions.RequestException" in _class_names(exc)
