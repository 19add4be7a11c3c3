"""Cloud Audit Logs for localcloud: every mutating call becomes Admin Activity LogEntry dicts.

``AuditLog.on_call`` takes one typed ``AuditRecord`` (``localcloud/auditlog/record.py``: the HTTP
layer builds it from each mutating call, success or ``ApiError``, in ``auditlog/calls.py``; a
backend writing as Google's own service agent builds it directly) and ``AuditLog.on_operation_done``
runs when an operation completes. The entries follow the real
samples in ``reference/audit-samples`` (docs/gcp-facts.md §3.2, §3.3):

- a synchronous call (Cloud Run v1) or a call that failed before any operation started: one
  entry; failures carry ``protoPayload.status`` and severity ERROR, and no ``response``;
- a Compute call: ``operation.first`` at the call (request body, ``response`` = the RUNNING
  Compute operation) and ``operation.last`` at completion (``request`` holds only ``@type``);
- VPC Access and Cloud Run v2 (``google.longrunning`` operations): the same first/last pair,
  an UNCONFIRMED choice (``LRO_FIRST_AND_LAST``); the last entry carries the final resource.

Entries are kept in memory in write order, in a ring of ``MAX_ENTRIES``; listeners (the sinks)
see each entry as it is written. Nothing here ever raises into the API call that is being
logged: a bug in the writer is logged and the call is answered as if nothing happened.
"""


from __future__ import annotations

import copy
import itertools
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from localcloud.auditlog.methods import COMPUTE, MethodSpec, spec_for_method_name
from localcloud.auditlog.record import (
    AuditOrigin,
    AuditRecord,
    Target,
    HTTP_TO_GRPC,
    operation_id,
    target_of_info,
    typed,
)

log = logging.getLogger("localcloud.auditlog")


# Bounded memory: a long benchmark writes many entries; the oldest go first. 100k entries of a
# few KiB each stay well under a GiB.
MAX_ENTRIES = 100_000

ACTIVITY_LOG_ID = "cloudaudit.googleapis.com%2Factivity"  # URL-encoded within logName (facts §3.2)
AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"


# UNCONFIRMED (facts §3.3): whether VPC Access and Cloud Run v2 log an operation.first entry at
# the call and an operation.last entry at completion, as Compute does. We write both: a consumer
# that copes with two entries per call also copes with one, so this is the stricter test.
LRO_FIRST_AND_LAST = True

# Google's front end appends this to the caller's User-Agent in every real sample but one.
GFE_USER_AGENT_SUFFIX = ",gzip(gfe)"

# An operation can complete (ticker thread) before the call that started it has been logged;
# its operation.last entry waits for the operation.first one, at most this long (the call then
# never got logged, e.g. its handler crashed after starting the operation).
DEFERRED_LAST_TIMEOUT_S = 5.0


# ---- formatting (pure) ------------------------------------------------------------------------
def rfc3339_micros(ns: int) -> str:
    """``2024-05-06T22:58:04.355675Z``: the precision of ``timestamp`` in the real samples."""
    seconds, rest = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{rest // 1000:06d}Z"


def rfc3339_nanos(ns: int) -> str:
    """``2024-05-06T22:58:04.779921199Z``: the precision of ``receiveTimestamp``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{rest:09d}Z"


_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class InsertIds:
    """Google-like insertIds (``qd23mgd4u3f``): 6 random characters, then a base-36 counter
    (at least 5 digits). The counter makes them unique for the life of the process."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            n = next(self._counter)
        digits = ""
        while n:
            n, r = divmod(n, 36)
            digits = _ID_ALPHABET[r] + digits
        prefix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
        return prefix + digits.rjust(5, "0")


APPENGINE_AUDIT_DATA_TYPE = "type.googleapis.com/google.appengine.v1.AuditData"


def build_entry(*, target: Target, spec: MethodSpec, principal: str, caller_ip: str, user_agent: str,
                request: dict[str, Any] | None, response: dict[str, Any] | None,
                status: tuple[int, str] | None, operation: dict[str, Any] | None, now_ns: int,
                insert_id: str, complete: bool = True, granted: bool = True) -> dict[str, Any]:
    """One LogEntry in the shape of the real samples. ``complete`` False gives the short form of
    a Compute ``operation.last`` entry (no authorizationInfo, resourceLocation or requestAttributes)."""
    timestamp = rfc3339_micros(now_ns)
    metadata: dict[str, Any] = {"callerIp": caller_ip or "127.0.0.1",
                                "callerSuppliedUserAgent": f"{user_agent}{GFE_USER_AGENT_SUFFIX}"}
    payload: dict[str, Any] = {
        "@type": AUDIT_LOG_TYPE,
        "authenticationInfo": {"principalEmail": principal},
    }
    if complete:
        payload["authorizationInfo"] = [_authorization(spec, target, granted)]
        metadata["requestAttributes"] = {"time": timestamp, "auth": {}}
        metadata["destinationAttributes"] = {}
    payload["methodName"] = target.method_name
    last_entry = operation is not None and operation.get("last") and not operation.get("first")
    if spec.service_data:  # App Engine: the request in serviceData; the last entry carries none
        if request is not None and not last_entry:
            body = {k: v for k, v in request.items() if k not in ("@type", "versionId")}
            payload["serviceData"] = {"@type": APPENGINE_AUDIT_DATA_TYPE, spec.service_data: {"request": body}}
        request = response = None
    if request is not None:
        payload["request"] = request
    payload["requestMetadata"] = metadata
    if complete and target.location:
        payload["resourceLocation"] = {"currentLocations": [target.location]}
    payload["resourceName"] = target.resource_name
    if response is not None and status is None:
        payload["response"] = response
    payload["serviceName"] = target.service
    if status is not None:
        payload["status"] = {"code": status[0], "message": status[1]}
    entry: dict[str, Any] = {
        "insertId": insert_id,
        "logName": f"projects/{target.project}/logs/{ACTIVITY_LOG_ID}",
    }
    if operation is not None:
        entry["operation"] = operation
    entry["protoPayload"] = payload
    entry["receiveTimestamp"] = rfc3339_nanos(now_ns)
    entry["resource"] = {"labels": dict(target.resource_labels), "type": target.resource_type}
    entry["severity"] = "ERROR" if status is not None and status[0] != 0 else "NOTICE"
    entry["timestamp"] = timestamp
    return entry


def _authorization(spec: MethodSpec, target: Target, granted: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"granted": granted, "permission": spec.permission, "permissionType": "ADMIN_WRITE",
                            "resource": target.resource_name}
    if target.service == COMPUTE:
        kind = spec.permission.split(".")[1] if spec.permission.count(".") >= 2 else ""
        info["resourceAttributes"] = {"name": target.resource_name, "service": "compute", "type": f"compute.{kind}"}
    else:
        info["resourceAttributes"] = {}  # as the real Cloud Run samples
    return info


# ---- the writer -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredEntry:
    seq: int  # write order, never reused (also across reset)
    timestamp_ns: int
    entry: dict[str, Any]


@dataclass
class _Deferred:
    operation: Any
    since: float


Listener = Callable[[dict[str, Any]], None]


@dataclass
class AuditLog:
    """The audit hook of the world (``world.audit``) and the in-memory log."""

    default_principal: Callable[[], str] = lambda: "developer@example.com"
    capacity: int = MAX_ENTRIES
    clock_ns: Callable[[], int] = time.time_ns
    _entries: deque[StoredEntry] = field(init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1), init=False)
    _ids: InsertIds = field(default_factory=InsertIds, init=False)
    _last_ns: int = field(default=0, init=False)
    _started: dict[str, AuditOrigin] = field(default_factory=dict, init=False)
    _deferred: dict[str, _Deferred] = field(default_factory=dict, init=False)
    _listeners: list[Listener] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._entries = deque(maxlen=self.capacity)

    # ---- the hook: a record per audited call, and each operation's end ---------------------
    def on_call(self, record: AuditRecord) -> None:
        try:
            self._on_call(record)
        except Exception:  # never break the API call being logged
            log.exception("localcloud audit: could not log %r", record)

    def on_operation_done(self, operation: Any) -> None:
        try:
            self._on_operation_done(operation)
        except Exception:
            log.exception("localcloud audit: could not log the end of %s", getattr(operation, "name", operation))

    def reset(self) -> None:
        """Forget every entry and pending operation (sequence numbers and insertIds go on)."""
        with self._lock:
            self._entries.clear()
            self._started.clear()
            self._deferred.clear()

    # ---- reading -----------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """``listener(entry)`` runs for each new entry, in write order, under the writer's lock:
        it must be quick and must not call back into the writer (the sinks only enqueue)."""
        with self._lock:
            self._listeners.append(listener)

    def stored(self) -> list[StoredEntry]:
        self._flush_stale()
        with self._lock:
            return list(self._entries)

    def entries(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(s.entry) for s in self.stored()]

    # ---- internals ---------------------------------------------------------------------------
    def _on_call(self, record: AuditRecord) -> None:
        self._flush_stale()
        spec = record.method
        if spec.data_access:
            return
        principal = record.principal or self.default_principal()
        if record.status is not None or record.operation is None:
            # a failed call, a synchronous one (Cloud Run v1), or a route that started no operation
            self._write(target=record.resource, spec=spec, principal=principal, caller_ip=record.caller_ip,
                        user_agent=record.user_agent, request=record.request, response=record.response,
                        status=record.status, operation=None, granted=record.granted)
            return
        name = record.operation.name
        with self._lock:
            if spec.style == "compute" or LRO_FIRST_AND_LAST:
                self._write(target=record.resource, spec=spec, principal=principal, caller_ip=record.caller_ip,
                            user_agent=record.user_agent, request=record.request, response=record.response,
                            status=None,
                            operation={"first": True, "id": record.operation.id, "producer": record.resource.service})
            self._started[name] = AuditOrigin(spec, record.resource, principal, record.caller_ip, record.user_agent)
            deferred = self._deferred.pop(name, None)
            if deferred is not None:  # the operation finished before this call was logged
                self._write_last(deferred.operation, self._started.pop(name))

    def _on_operation_done(self, operation: Any) -> None:
        self._flush_stale()
        with self._lock:
            started = self._started.pop(operation.name, None)
            if started is None:
                if getattr(operation, "audit", None) is None:
                    return  # not started by an audited call (internal bookkeeping)
                if getattr(operation, "origin", None) is not None:  # its call is about to be logged
                    self._deferred[operation.name] = _Deferred(operation, time.monotonic())
                    return
                started = self._started_from_operation(operation)
            self._write_last(operation, started)

    def _started_from_operation(self, operation: Any) -> AuditOrigin:
        """For an operation logged without its call (a service agent's internal write, or a call
        that never got logged): the last entry only, as Google logs GKE-created firewall rules."""
        origin = getattr(operation, "origin", None)
        if origin is not None:
            return AuditOrigin(origin.method, origin.resource, origin.principal or self.default_principal(),
                               origin.caller_ip, origin.user_agent)
        audit = getattr(operation, "audit", None)
        spec = spec_for_method_name(getattr(audit, "method_name", ""))
        user = operation.body.get("user") if isinstance(getattr(operation, "body", None), dict) else None
        return AuditOrigin(spec, target_of_info(spec, audit), user or self.default_principal(), "127.0.0.1", "")

    def _write_last(self, operation: Any, started: AuditOrigin) -> None:
        spec = started.method
        audit = getattr(operation, "audit", None)
        target = started.resource
        if audit is not None:  # labels may now carry the new resource's id
            labels = dict(getattr(audit, "resource_labels", None) or {}) or dict(target.resource_labels)
            target = Target(target.service, getattr(audit, "method_name", None) or target.method_name,
                            getattr(audit, "resource_name", None) or target.resource_name,
                            getattr(audit, "resource_type", None) or target.resource_type,
                            labels, target.project, target.location)
        status, response = _outcome(operation, spec)
        if spec.style == "compute":
            response = None  # the real Compute operation.last entries carry no response
        first_and_last = spec.style == "compute" or LRO_FIRST_AND_LAST
        marker = {"id": operation_id(operation), "last": True, "producer": target.service}
        if not first_and_last:
            marker["first"] = True
        self._write(target=target, spec=spec, principal=started.principal, caller_ip=started.caller_ip,
                    user_agent=started.user_agent, request={"@type": spec.request_type}, response=response,
                    status=status, operation=marker, complete=not first_and_last)

    def _write(self, *, complete: bool = True, granted: bool = True, **fields: Any) -> None:
        with self._lock:
            # Timestamps strictly increase in write order, by at least the microsecond that
            # ``timestamp`` shows (the clock may stall or step back): entries.list relies on
            # write order being timestamp order.
            now = max(self.clock_ns(), self._last_ns + 1000)
            self._last_ns = now
            entry = build_entry(now_ns=now, insert_id=self._ids.next(), complete=complete, granted=granted,
                                **fields)
            self._entries.append(StoredEntry(next(self._seq), now, entry))
            for listener in self._listeners:
                try:
                    listener(entry)
                except Exception:
                    log.exception("localcloud audit: listener %r failed", listener)

    def _flush_stale(self) -> None:
        if not self._deferred:
            return
        cutoff = time.monotonic() - DEFERRED_LAST_TIMEOUT_S
        with self._lock:
            stale = [name for name, d in self._deferred.items() if d.since <= cutoff]
            for name in stale:
                operation = self._deferred.pop(name).operation
                log.warning("localcloud audit: operation %s finished but its call was never logged", name)
                self._write_last(operation, self._started_from_operation(operation))


def _outcome(operation: Any, spec: MethodSpec) -> tuple[tuple[int, str] | None, dict[str, Any] | None]:
    """(status, response) of a finished operation, from its public body."""
    body = getattr(operation, "body", None)
    body = body if isinstance(body, dict) else {}
    if getattr(operation, "kind", "") == "compute":
        if "error" in body or body.get("httpErrorStatusCode"):
            errors = (body.get("error") or {}).get("errors") or [{}]
            message = errors[0].get("message") or body.get("httpErrorMessage") or "operation failed"
            return (HTTP_TO_GRPC.get(int(body.get("httpErrorStatusCode") or 500), 2), message), None
        return None, None
    if isinstance(body.get("error"), dict):
        error = body["error"]
        return (int(error.get("code") or 2), str(error.get("message") or "operation failed")), None
    return None, typed(body.get("response"), spec.response_type)