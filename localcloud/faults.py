"""The call log (what every client asked, for API-call budgets) and fault injection.

A fault rule applies to the discovery method ids that match its glob (``compute.routers.*``):
added latency, an error rate with a code (503, 429 ...), a number of calls to fail, and a rate of
long-running operations that end in error. Rules are evaluated in order; the first error wins.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from dataclasses import dataclass, field, asdict
from typing import Any

from localcloud.errors import ApiError, invalid


@dataclass
class CallRecord:
    seq: int
    time: float
    api: str
    method_id: str
    http_method: str
    path: str
    status: int
    principal: str
    mutating: bool
    duration_ms: float = 0.0  # request received -> response ready, injected latency included


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[CallRecord] = []

    def record(self, **fields: Any) -> None:
        with self._lock:
            self._calls.append(CallRecord(seq=len(self._calls) + 1, time=time.time(), **fields))

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def snapshot(self, since: int = 0, principal: str | None = None) -> dict[str, Any]:
        with self._lock:
            calls = [c for c in self._calls if c.seq > since and (principal is None or c.principal == principal)]
        counts: dict[str, int] = {}
        for c in calls:
            counts[c.method_id] = counts.get(c.method_id, 0) + 1
        return {"calls": [asdict(c) for c in calls], "counts": counts, "total": len(calls),
                "last_seq": calls[-1].seq if calls else since}


@dataclass
class FaultRule:
    methods: str = "*"  # glob over discovery method ids, e.g. "compute.routers.*"
    error_rate: float = 0.0
    code: int = 503
    count: int | None = None  # fail only the next N matching calls (None: no limit)
    latency_ms: float = 0.0
    operation_error_rate: float = 0.0  # long-running operations that end in error
    retry_after_s: int | None = None  # sent as Retry-After with 429/503
    principal: str | None = None  # only calls by this principal

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> "FaultRule":
        if not isinstance(body, dict):
            raise invalid("a fault rule must be a JSON object")
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise invalid(f"unknown fault rule fields {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        rule = cls(**body)
        if not (0.0 <= float(rule.error_rate) <= 1.0 and 0.0 <= float(rule.operation_error_rate) <= 1.0):
            raise invalid("error_rate and operation_error_rate must be between 0 and 1")
        if not (400 <= int(rule.code) <= 599):
            raise invalid("code must be an HTTP error code (400-599)")
        if float(rule.latency_ms) < 0 or (rule.count is not None and int(rule.count) < 0):
            raise invalid("latency_ms and count must not be negative")
        return rule

    def applies(self, method_id: str, principal: str) -> bool:
        return fnmatch.fnmatchcase(method_id, self.methods) and (self.principal in (None, principal))


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)

    def set(self, rules: list[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            if seed is not None:
                self._random.seed(seed)

    def reset(self) -> None:
        self.set([])

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def before_call(self, method_id: str, principal: str) -> tuple[float, ApiError | None]:
        """Latency to add and the error to answer (if any) for one call."""
        latency = 0.0
        error = None
        with self._lock:
            for rule in self._rules:
                if not rule.applies(method_id, principal):
                    continue
                latency += float(rule.latency_ms) / 1000.0
                if error is None and rule.error_rate > 0 and (rule.count is None or rule.count > 0):
                    if self._random.random() < rule.error_rate:
                        if rule.count is not None:
                            rule.count -= 1
                        headers = {"Retry-After": str(rule.retry_after_s)} if rule.retry_after_s else None
                        error = ApiError(int(rule.code), f"localcloud: injected fault for {method_id}",
                                         reason="backendError" if rule.code >= 500 else "rateLimitExceeded",
                                         headers=headers)
        return latency, error

    def operation_fails(self, method_id: str, principal: str) -> ApiError | None:
        with self._lock:
            for rule in self._rules:
                if rule.applies(method_id, principal) and rule.operation_error_rate > 0:
                    if self._random.random() < rule.operation_error_rate:
                        return ApiError(500, f"localcloud: injected operation failure for {method_id}",
                                        reason="backendError")
        return None
