"""The one seam where egress-guard calls a Google API and sorts what went wrong.

Every call a guardrail, ``sweep`` or ``backfill`` makes goes through one of these, and its failure
is one of four kinds:

| kind      | what it is                                              | what the caller gets           |
|-----------|---------------------------------------------------------|--------------------------------|
| transient | 408, 412, 429, 5xx, a network error, a deadline passed  | ``TransientError`` (retry)     |
| permanent | 400, 401, 403, anything else                            | ``PermanentError`` (``code``)  |
| not found | 404 on a read                                           | ``read_or_none``: ``None``     |
| conflict  | 409 on an insert, 404 or 412 on a change                | ``write``: ``Conflict``        |

(``errors.classify_api_error`` sorts transient from permanent; the tables of codes live there.)

Reads: one bounded retry and timeout policy (``READ_OPTIONS``), for guardrail reads and sweep
lists alike. A read (with its retries of 429/5xx) gives up after ``READ_TIMEOUT_S``: the client
libraries' own default retry holds a persistently failing read for up to 600 s, which would hold
a guardrail's event (and its instance) or stall a sweep on one region. Past the bound the read
raises ``TransientError``: the platform redelivers the event later, with its own backoff.
Writes are not retried here: a write is never blindly repeated (the converge loop re-reads first).
Every write is bounded too (``WRITE_TIMEOUT_S``, or the caller's operation timeout): a request the
server holds past it raises ``TransientError``, and the redelivery re-reads, since the write may
still land after the client gave up.
The one exception is a write a rate quota refused (Compute's 403 ``rateLimitExceeded``): it made
no change, so while a sweep runs (``RATE_QUOTA.waiting``) it waits for the quota's window to refill
and is sent again unchanged, every writer of that project waiting with it (``RateQuotaWait``).
Outside a sweep (a guardrail's event) it raises ``TransientError`` and the platform redelivers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .errors import Conflict, EgressGuardError, TransientError, classify_api_error, is_api_error, is_rate_limited

T = TypeVar("T")

# The bound of one read, retries included (seconds). One constant for guardrails and sweep.
READ_TIMEOUT_S = 30.0
# The bound of one write call, when the caller gives none. A Compute write answers at once with its
# operation, but the client libraries' default timeout for it is 600 s, longer than a function's run:
# a write the server holds would hold the instance until the platform kills it, and the event then
# waits for the redelivery's backoff instead of the next attempt.
WRITE_TIMEOUT_S = 30.0
# Backoff between the retries of one read: 0.2 s, doubling, at most 5 s apart.
_RETRY_INITIAL_S, _RETRY_MAXIMUM_S, _RETRY_MULTIPLIER = 0.2, 5.0, 2.0


def read_options() -> dict[str, Any]:
    """``retry=`` and ``timeout=`` for a read call (google-api-core's ``Retry``, transient errors only)."""
    return {"retry": _read_retry(), "timeout": READ_TIMEOUT_S}


def _read_retry() -> Any:
    from google.api_core import retry

    return retry.Retry(initial=_RETRY_INITIAL_S, maximum=_RETRY_MAXIMUM_S, multiplier=_RETRY_MULTIPLIER,
                       predicate=retry.if_transient_error, timeout=READ_TIMEOUT_S)


@contextmanager
def classified(action: str) -> Iterator[None]:
    """Inside it, an API or network error becomes ``TransientError`` or ``PermanentError`` whose
    reason starts with ``action`` (e.g. ``compute.routers.list projects/p/regions/r``). Anything
    else (a bug) propagates unchanged. For calls that page (iterate inside the block)."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, EgressGuardError) or not is_api_error(exc):
            raise
        raise classify_api_error(exc, action=action) from exc


def call(action: str, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """One API call, its failure classified."""
    with classified(action):
        return fn(**kwargs)


def get_json_or_none(action: str, session: Any, url: str) -> dict[str, Any] | None:
    """One read of one resource as Google's JSON (``Clients.json``), with the read retry and timeout;
    ``None`` when it does not exist (404). For a read whose typed client would cost a function's
    cold start its library's import (vpcaccess_v1: a third of a second) and nothing else."""
    from google.api_core import exceptions as gexc

    try:
        return next(pages(action, session, url))
    except EgressGuardError as exc:
        if isinstance(exc.__cause__, gexc.NotFound):
            return None
        raise


def pages(action: str, session: Any, url: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Each page of a list as Google's JSON, one GET each (``pageToken`` from the page before), with
    the read retry and timeout, its failure classified. For bulk reads that look at each item once
    (``Clients.json``): the same calls as the client libraries' pagers, without typed messages."""
    from google.api_core import exceptions as gexc

    def get(query: dict[str, Any]) -> dict[str, Any]:
        response = session.get(url, params=query, timeout=READ_TIMEOUT_S)
        if response.status_code >= 400:
            raise gexc.from_http_response(response)
        return response.json()

    token = ""
    while True:
        query = {**(params or {}), **({"pageToken": token} if token else {})}
        with classified(action):
            page = _read_retry()(get)(query)
        yield page
        token = page.get("nextPageToken") or ""
        if not token:
            return


def read(action: str, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """One read, with the bounded retry and timeout."""
    return call(action, fn, **read_options(), **kwargs)


def read_or_none(action: str, fn: Callable[..., T], /, **kwargs: Any) -> T | None:
    """One read of one resource; ``None`` when it does not exist (a 404 is an answer, not an error)."""
    from google.api_core import exceptions as gexc

    try:
        return read(action, fn, **kwargs)
    except EgressGuardError as exc:
        if isinstance(exc.__cause__, gexc.NotFound):
            return None
        raise


# Google refills a rate quota at the start of each synchronized minute (docs/gcp-facts.md §14).
RATE_QUOTA_WINDOW_S = 60.0
# The longest one write waits for rate quota windows (all its refusals together) before it is
# reported as failed: ten windows. A sweep whose writes need more is refused by something else.
RATE_QUOTA_MAX_WAIT_S = 600.0


class RateQuotaWait:
    """Writes refused by a per-minute rate quota wait for the next window and are sent again.

    Google counts a quota group's requests per project in synchronized windows (a limit reached at
    10:00:15 refills at 10:01:00) and refuses the rest with 403 ``rateLimitExceeded``. The first
    refusal closes the project until the next window boundary (plus a small margin for clock skew):
    every writer of that project waits there instead of sending requests that would be refused too,
    so a window costs at most one refused request per writer. Each write waits at most
    ``max_wait_s`` in all, then raises ``TransientError``: the sweep reports it failed.

    Active only while some sweep holds ``waiting()`` (a guardrail raises instead, see the module
    docstring). ``window_s``: Google's minute; ``EGRESS_GUARD_RATE_QUOTA_WINDOW_SECONDS`` sets it
    (a test against localcloud's short quota windows).
    """

    def __init__(self, window_s: float = RATE_QUOTA_WINDOW_S, max_wait_s: float = RATE_QUOTA_MAX_WAIT_S,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.window_s, self.max_wait_s = window_s, max_wait_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._active = 0
        self._closed_until: dict[str, float] = {}  # project -> when its next window opens
        self.refusals = 0  # requests refused by a rate quota while waiting was on (for the sweep's report)
        self.waited_s = 0.0  # time writers spent waiting for windows, summed over writers

    @contextmanager
    def waiting(self, window_s: float | None = None) -> Iterator["RateQuotaWait"]:
        with self._lock:
            self._active += 1
            if window_s is not None:
                self.window_s = window_s
        try:
            yield self
        finally:
            with self._lock:
                self._active -= 1

    def send(self, project: str | None, action: str, attempt: Callable[[], T]) -> T:
        if not self._active or not project:
            return attempt()
        waited = 0.0
        while True:
            with self._lock:
                opens = self._closed_until.get(project, 0.0)
            pause = opens - self._clock()
            if pause > 0:
                if waited + pause > self.max_wait_s:
                    raise TransientError(f"{action}: the project's rate quota stayed exhausted for "
                                         f"{waited + pause:.0f} s (more than {self.max_wait_s:g} s); will retry")
                self._sleep(pause)
                waited += pause
                with self._lock:
                    self.waited_s += pause
            try:
                return attempt()
            except Exception as exc:
                if not is_rate_limited(exc):
                    raise
                now = self._clock()
                boundary = (math.floor(now / self.window_s) + 1) * self.window_s + min(1.0, self.window_s / 20)
                with self._lock:
                    self.refusals += 1
                    self._closed_until[project] = max(self._closed_until.get(project, 0.0), boundary)


# The one instance every write goes through (writers of one project must share it).
RATE_QUOTA = RateQuotaWait()


def write(action: str, fn: Callable[..., T], /, *, creates: bool, **kwargs: Any) -> T:
    """One mutating call, bounded by ``timeout=`` (default ``WRITE_TIMEOUT_S``). ``Conflict`` when the
    state changed since it was read: 409 (it exists already), 412 (precondition), or 404 on a change
    (``creates`` false: it is gone). A 404 on a create means what it refers to is gone, which no
    re-read can fix: permanent. No answer within the bound: ``TransientError`` (a network error). A
    refusal by a rate quota waits for the next window while a sweep runs (``RATE_QUOTA``)."""
    from google.api_core import exceptions as gexc

    kwargs.setdefault("timeout", WRITE_TIMEOUT_S)
    try:
        return RATE_QUOTA.send(kwargs.get("project"), action, lambda: fn(**kwargs))
    except gexc.Conflict as exc:
        raise Conflict(f"{action}: already exists (409)") from exc
    except gexc.PreconditionFailed as exc:
        raise Conflict(f"{action}: precondition failed (412)") from exc
    except gexc.NotFound as exc:
        if creates:
            raise classify_api_error(exc, action=action) from exc
        raise Conflict(f"{action}: not found (404), it changed since it was read") from exc
    except Exception as exc:
        if isinstance(exc, EgressGuardError) or not is_api_error(exc):
            raise
        raise classify_api_error(exc, action=action) from exc
