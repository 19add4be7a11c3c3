"""classify_api_error and the api seam: which Google API failures are retried, acknowledged or a conflict."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests
from google.api_core import exceptions as gexc

from egress_guard import api
from egress_guard.errors import (
    Conflict,
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


def test_a_retry_that_gave_up_is_sorted_by_its_last_error() -> None:
    result = classify_api_error(gexc.RetryError("Timeout of 30.0s exceeded", cause=gexc.TooManyRequests("quota")),
                                action="compute.routers.list r")
    assert isinstance(result, TransientError) and result.code == 429
    assert result.reason.startswith("compute.routers.list r (retried until the 30 s bound): HTTP 429")


def _raises(exc: BaseException):
    def call(**kwargs: object) -> None:
        raise exc
    return call


@pytest.mark.parametrize("exc,creates,kind", [
    (gexc.Conflict("already exists"), True, Conflict),
    (gexc.PreconditionFailed("fingerprint"), False, Conflict),
    (gexc.NotFound("gone"), False, Conflict),  # a change to what was read: it changed since
    (gexc.NotFound("network gone"), True, PermanentError),  # a create whose network is gone: no re-read helps
    (gexc.ServiceUnavailable("later"), False, TransientError),
    (gexc.Forbidden("denied"), True, PermanentError),
])
def test_api_write_sorts_a_write_failure(exc: BaseException, creates: bool, kind: type) -> None:
    with pytest.raises(kind):
        api.write("compute.firewalls.insert projects/p/global/firewalls/x", _raises(exc), creates=creates)


def test_api_read_or_none_answers_none_for_a_404_and_raises_the_rest() -> None:
    assert api.read_or_none("compute.subnetworks.get s", _raises(gexc.NotFound("gone"))) is None
    with pytest.raises(PermanentError, match="HTTP 403"):
        api.read_or_none("compute.subnetworks.get s", _raises(gexc.Forbidden("denied")))
    with pytest.raises(KeyError):  # a bug is not an API error: it propagates unchanged
        api.read_or_none("compute.subnetworks.get s", _raises(KeyError("nats")))
