"""classify_api_error: which Google API failures are retried and which are acknowledged."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests
from google.api_core import exceptions as gexc

from egress_guard.errors import (
    EgressGuardError,
    PermanentError,
    StaleEvent,
    TransientError,
    classify_api_error,
)


@pytest.mark.parametrize("exc", [
    gexc.TooManyRequests("quota"),
    gexc.InternalServerError("boom"),
    gexc.BadGateway("bad gateway"),
    gexc.ServiceUnavailable("unavailable"),
    gexc.GatewayTimeout("timeout"),
    gexc.DeadlineExceeded("deadline"),
    gexc.PreconditionFailed("Invalid fingerprint"),
    gexc.Aborted("concurrent change"),
    gexc.RetryError("gave up", cause=None),
    gexc.BadRequest("The resource 'router-a' is not ready", errors=[{"reason": "resourceNotReady"}]),
    gexc.Forbidden("Rate Limit Exceeded", errors=[{"reason": "rateLimitExceeded"}]),
    requests.exceptions.ConnectionError("refused"),
    requests.exceptions.ReadTimeout("slow"),
    ConnectionResetError(),
    concurrent.futures.TimeoutError(),
])
def test_classify_api_error_transient(exc: BaseException) -> None:
    result = classify_api_error(exc, action="compute.routers.patch router-a")
    assert isinstance(result, TransientError), result
    assert result.reason.startswith("compute.routers.patch router-a: ")


@pytest.mark.parametrize("exc,code,words", [
    (gexc.BadRequest("Invalid value for field 'resource.nats[0]'"), 400, "invalid"),
    (gexc.Forbidden("Required 'compute.routers.update' permission"), 403, "permission denied"),
    (gexc.PermissionDenied("denied"), 403, "not managed by egress-guard"),
    (gexc.NotFound("The resource 'projects/p/regions/r/routers/x' was not found"), 404, "does not exist"),
    (gexc.Conflict("already exists"), 409, "already exists"),
    (gexc.Forbidden("Quota 'ROUTERS' exceeded", errors=[{"reason": "quotaExceeded"}]), 403, "permission denied"),
    (gexc.Unauthorized("bad token"), 401, "credentials"),
])
def test_classify_api_error_permanent(exc: BaseException, code: int, words: str) -> None:
    result = classify_api_error(exc)
    assert type(result) is PermanentError
    assert result.code == code
    assert words in result.reason and f"HTTP {code}" in result.reason


def test_classify_api_error_keeps_our_own_errors_and_sorts_bugs_as_permanent() -> None:
    stale = StaleEvent("old")
    assert classify_api_error(stale) is stale
    bug = classify_api_error(KeyError("nats"))
    assert isinstance(bug, PermanentError) and "unexpected error: KeyError" in bug.reason
    assert isinstance(bug, EgressGuardError) and str(bug) == bug.reason
