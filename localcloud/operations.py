"""Long-running operations, in both of Google's shapes.

- Compute ``compute#operation``: answered RUNNING at once; DONE (with ``error`` and
  ``httpErrorStatusCode`` when it failed) after the configured delay.
- ``google.longrunning.Operation`` (VPC Access, Cloud Run v2): ``done`` false, then true with
  ``response`` or ``error``.

The mutation is applied when the operation completes (``apply`` runs under the world lock), as
at Google where a resource is not there until its operation is done. A background ticker and
every request complete due operations, so a resource appears on time even if nobody polls.
An operation can be told to fail (fault injection): its ``apply`` then never runs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from localcloud.errors import ApiError

Apply = Callable[[], dict[str, Any] | None]


@dataclass
class Operation:
    kind: str  # "compute" | "lro"
    name: str
    body: dict[str, Any]  # the public JSON, kept current
    due: float
    apply: Apply
    fail_with: ApiError | None = None
    done: bool = False
    audit: Any = None  # the AuditInfo of the call that started it, for the operation.last entry
    origin: Any = None  # the AuditOrigin of that call, when it is about to be logged (auditlog.record)
    waiters: threading.Condition | None = None
    on_done: list[Callable[["Operation"], None]] = field(default_factory=list)
    # The world's lock: the ticker completes an operation (changing ``body``) under it, so a copy
    # taken without it can meet a dict changing size mid-copy (one 500 at 10,000 connectors).
    lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

    def snapshot(self) -> dict[str, Any]:
        import copy

        with self.lock:
            return copy.deepcopy(self.body)


class Operations:
    def __init__(self, world) -> None:
        self.world = world
        self._ops: dict[str, Operation] = {}
        self._cond = threading.Condition(world.lock)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start_ticker(self, interval: float = 0.02) -> None:
        if self._ticker:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                self.tick()

        self._ticker = threading.Thread(target=run, name="localcloud-operations", daemon=True)
        self._ticker.start()

    def stop_ticker(self) -> None:
        self._stop.set()

    def reset(self) -> None:
        with self.world.lock:
            self._ops.clear()

    # ---- creation -----------------------------------------------------------------------
    def start_compute(self, *, project: str, region: str | None, operation_type: str, target_link: str,
                      target_id: str, user: str, delay: float, apply: Apply,
                      fail_with: ApiError | None = None, description: str | None = None) -> Operation:
        w = self.world
        name = f"operation-{w.operation_suffix()}"
        scope = f"projects/{project}/regions/{region}" if region else f"projects/{project}/global"
        now = time.time()
        body: dict[str, Any] = {
            "kind": "compute#operation",
            "id": w.new_id(),
            "name": name,
            "operationType": operation_type,
            "targetLink": target_link,
            "targetId": target_id,
            "status": "RUNNING",
            "user": user,
            "progress": 0,
            "insertTime": w.compute_timestamp(now),
            "startTime": w.compute_timestamp(now),
            "selfLink": w.self_link(f"{scope}/operations/{name}"),
        }
        if region:
            body["region"] = w.self_link(f"projects/{project}/regions/{region}")
        if description:
            body["description"] = description
        op = Operation("compute", f"{scope}/operations/{name}", body, now + delay, apply, fail_with, lock=w.lock)
        with w.lock:
            self._ops[op.name] = op
        return op

    def start_lro(self, *, name: str, metadata: dict[str, Any], delay: float, apply: Apply,
                  fail_with: ApiError | None = None) -> Operation:
        body = {"name": name, "metadata": metadata, "done": False}
        op = Operation("lro", name, body, time.time() + delay, apply, fail_with, lock=self.world.lock)
        with self.world.lock:
            self._ops[name] = op
        return op

    # ---- progress -----------------------------------------------------------------------
    def get(self, name: str) -> Operation | None:
        self.tick()
        return self._ops.get(name)

    def list(self, prefix: str) -> list[Operation]:
        self.tick()
        return [op for n, op in self._ops.items() if n.startswith(prefix)]

    def owned(self, table: str, name: str) -> Operation:
        """A google.longrunning operation that a service recorded in its world ``table`` (a service
        answers only for its own), or Google's 404."""
        with self.world.lock:
            mine = name in self.world.table(table)
        op = self.get(name) if mine else None
        if op is None:
            raise ApiError(404, f"Operation '{name}' not found.", status="NOT_FOUND", reason="notFound")
        return op

    def owned_in(self, table: str, project: str, region: str) -> list[Operation]:
        """The operations of one project and region that a service recorded in its world ``table``."""
        prefix = f"projects/{project}/locations/{region}/operations/"
        with self.world.lock:
            mine = set(self.world.table(table))
        return [op for op in self.list(prefix) if op.name in mine]

    def tick(self) -> None:
        now = time.time()
        finished: list[Operation] = []
        with self.world.lock:
            for op in list(self._ops.values()):
                if not op.done and op.due <= now:
                    self._complete(op)
                    finished.append(op)
            if finished:
                self._cond.notify_all()
        for op in finished:
            for callback in op.on_done:
                callback(op)
            self.world.audit.on_operation_done(op)

    def wait(self, op: Operation, timeout: float) -> None:
        """Compute's operations.wait: return when done or after ``timeout`` (Google caps it at 2 min)."""
        deadline = time.time() + timeout
        with self._cond:
            while not op.done:
                remaining = min(deadline, op.due) - time.time()
                if time.time() >= deadline:
                    break
                self._cond.wait(max(0.001, min(remaining, 0.05)))
                if op.due <= time.time():
                    break
        self.tick()

    def _complete(self, op: Operation) -> None:
        error = op.fail_with
        response = None
        if error is None:
            try:
                response = op.apply()
            except ApiError as exc:  # a conflict discovered at apply time ends the operation in error
                error = exc
        w = self.world
        op.done = True
        if op.kind == "compute":
            op.body.update(status="DONE", progress=100, endTime=w.compute_timestamp())
            if error is not None:
                op.body["error"] = {"errors": [{"code": _compute_error_code(error), "message": error.message}]}
                op.body["httpErrorStatusCode"] = error.code
                op.body["httpErrorMessage"] = _HTTP_MESSAGES.get(error.code, "BAD REQUEST")
        else:
            op.body["done"] = True
            metadata = op.body.get("metadata")
            # An OperationMetadata gains endTime; Cloud Run's metadata is the resource itself and does not.
            if isinstance(metadata, dict) and str(metadata.get("@type", "")).endswith("OperationMetadata"):
                metadata["endTime"] = w.rfc3339()
            if error is not None:
                op.body["error"] = {"code": _GRPC_CODES.get(error.status, 2), "message": error.message}
            elif response is not None:
                op.body["response"] = response


def _compute_error_code(error: ApiError) -> str:
    return {"alreadyExists": "ALREADY_EXISTS", "notFound": "RESOURCE_NOT_FOUND",
            "resourceInUseByAnotherResource": "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"}.get(
        error.reason, error.status if error.code >= 500 else "INVALID_FIELD_VALUE")


_HTTP_MESSAGES = {400: "BAD REQUEST", 403: "FORBIDDEN", 404: "NOT FOUND", 409: "CONFLICT",
                  412: "PRECONDITION FAILED", 429: "TOO MANY REQUESTS", 500: "INTERNAL SERVER ERROR",
                  503: "SERVICE UNAVAILABLE"}

_GRPC_CODES = {"CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
               "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
               "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
               "DATA_LOSS": 15, "UNAUTHENTICATED": 16}
