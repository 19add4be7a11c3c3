"""The Compute writes both guardrails make: start a write, wait for its operation, sort the outcome.

- ``start(...)`` makes one mutating call, bounded like the wait, and returns the operation's name. A 409 on an insert, or a
  404 on a patch/update/delete, means the state changed since it was read: ``Conflict``, and the
  caller re-reads and plans again (someone else converged, or undid, first).
- ``wait(...)`` blocks on ``regionOperations.wait`` / ``globalOperations.wait``: one call that
  Compute holds open until the operation is DONE (or ~2 minutes), never a ``get`` polling loop.
  Every wait is bounded by ``timeout`` (``Settings.operation_timeout_seconds``): past it,
  ``TransientError`` and the platform retries the event. An operation DONE with an error is sorted
  like an HTTP error: 409 (alreadyExists) and 404 -> ``Conflict``; anything else is classified.
- ``KeyedLocks`` serialises read-modify-write per key inside one process, like Terraform's
  ``mutex: router/{region}/{router}``.

``converge.converge`` runs read -> plan -> write rounds, at most ``MAX_ATTEMPTS``, after conflicts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import api
from ..converge import MAX_ATTEMPTS
from ..errors import Conflict, PermanentError, TransientError

if TYPE_CHECKING:
    from ..clients import Clients

__all__ = ["MAX_ATTEMPTS", "Conflict", "KeyedLocks", "start", "wait"]

# A Compute operation error with one of these codes means "someone else changed it first".
_CONFLICT_CODES = frozenset({"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS", "alreadyExists",
                             "RESOURCE_NOT_FOUND", "NOT_FOUND", "notFound"})


def start(action: str, resource: str, fn: Callable[..., Any], /, *, timeout: float = api.WRITE_TIMEOUT_S,
          **kwargs: Any) -> str:
    """Make one mutating Compute call (``api.write``: ``Conflict`` when the state changed since it
    was read), answered within ``timeout`` (the guardrails pass their operation timeout: a write
    held longer is an operation not done); return the name of its operation."""
    operation = api.write(f"{action} {resource}", fn, creates=action.endswith(".insert"), timeout=timeout,
                          **kwargs)
    name = getattr(operation, "name", "")
    if not name:
        raise PermanentError(f"{action} {resource}: the API answered without an operation name")
    return str(name)


def wait(clients: "Clients", operation: str, *, project: str, region: str | None, timeout: float,
         action: str) -> None:
    """Wait for a Compute operation with ``operations.wait``; raise unless it ends DONE without error."""
    from google.cloud import compute_v1

    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransientError(f"{action}: operation {operation} was not DONE within {timeout:g}s "
                                 "(EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS); will retry")
        with api.classified(f"{action}: waiting for {operation}"):
            if region:
                result = clients.region_operations.wait(project=project, region=region, operation=operation,
                                                        timeout=remaining)
            else:
                result = clients.global_operations.wait(project=project, operation=operation, timeout=remaining)
        if result.status == compute_v1.Operation.Status.DONE:
            _raise_for_error(result, action)
            return
        # operations.wait returned before the operation finished (Google holds it ~2 minutes): again.


def wait_for_running_router_operations(clients: "Clients", *, project: str, region: str, timeout: float) -> None:
    """Wait (each with ``operations.wait``, all within ``timeout``) for the region's router operations
    that are not DONE; their outcome is not ours to sort, only their landing to wait for."""
    from google.cloud import compute_v1

    deadline = time.monotonic() + timeout
    request = compute_v1.ListRegionOperationsRequest(project=project, region=region, filter='status != "DONE"')
    with api.classified(f"compute.regionOperations.list {project}/{region}"):
        running = [op.name for op in clients.region_operations.list(request=request, **api.read_options())
                   if "/routers/" in (op.target_link or "")]
    for name in running:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        with api.classified(f"waiting for router operation {name}"):
            try:
                clients.region_operations.wait(project=project, region=region, operation=name, timeout=remaining)
            except Exception as exc:  # noqa: BLE001 - a wait that times out here only ends the wait
                if not is_timeout(exc):
                    raise


def is_timeout(exc: BaseException) -> bool:
    return any(cls.__name__ in ("Timeout", "ReadTimeout", "TimeoutError") for cls in type(exc).__mro__)


def _raise_for_error(result: Any, action: str) -> None:
    errors = list(result.error.errors) if result.error else []
    if not errors:
        return
    codes = {e.code for e in errors}
    message = "; ".join(f"{e.code}: {e.message}" for e in errors)[:500]
    http = int(result.http_error_status_code or 0)
    if http in (404, 409) or codes & _CONFLICT_CODES:
        raise Conflict(f"{action}: the operation failed with {message}")
    if http in (408, 412, 429) or http >= 500 or "RESOURCE_NOT_READY" in codes:
        raise TransientError(f"{action}: the operation failed with HTTP {http} (will retry): {message}", code=http)
    raise PermanentError(f"{action}: the operation failed with HTTP {http or '?'}: {message}", code=http or None)


class KeyedLocks:
    """One lock per key, created on first use (the set of keys is small: routers, connectors)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield
