"""The call log (what every client asked, for API-call budgets) and fault injection.

A fault rule applies to the discovery method ids that match its glob (``compute.routers.*``):
added latency, an error rate with a code (503, 429 ...), a number of calls to fail, and a rate of
long-running operations that end in error. Rules are evaluated in order; the first error wins.

What Google and people produce, each in Google's own shape:

- an error answered in Google's envelope with the reason the API uses for it (``errors[].reason``:
  Compute's ``notFound`` for 404 "deleted meanwhile", ``alreadyExists`` for 409 "created by someone
  else", ``invalid`` for a 400, ``rateLimitExceeded``/``backendError`` for 429/5xx; ``reason`` picks
  another, e.g. Compute's retryable 400 ``resourceNotReady``);
- a request the server holds (``hold``): it waits until ``POST /_localcloud/faults/release`` or
  ``latency_ms`` passed, then is served. A client whose timeout is shorter gives up first, and the
  write still lands, as at Google where a request the client abandoned may still complete. A test
  can also act as a person while a guardrail's call is held (between its read and its write, or
  between its write and its verify), which no timing can make certain;
- an operation that stays RUNNING longer (``operation_delay_s``) than a caller's wait.

``count`` bounds how many matching calls a rule touches: an error rule counts the errors it
answers; a rule without ``error_rate`` counts every call it delays, holds or slows.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from dataclasses import dataclass, field, asdict
from typing import Any

from localcloud.errors import COMPUTE_REASON_BY_CODE, ApiError, invalid


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
    reason: str | None = None  # errors[].reason of the answer (default: the one Compute uses for ``code``)
    hold: bool = False  # hold the call until released (control API) or ``latency_ms`` passed
    operation_delay_s: float = 0.0  # an operation the call starts stays RUNNING this much longer

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
        if float(rule.latency_ms) < 0 or (rule.count is not None and int(rule.count) < 0) \
                or float(rule.operation_delay_s) < 0:
            raise invalid("latency_ms, operation_delay_s and count must not be negative")
        if rule.hold and not float(rule.latency_ms) > 0:
            raise invalid("a hold needs latency_ms: the longest the call is held when nobody releases it")
        return rule

    def applies(self, method_id: str, principal: str) -> bool:
        return fnmatch.fnmatchcase(method_id, self.methods) and (self.principal in (None, principal))


@dataclass
class FaultEffect:
    latency_s: float = 0.0
    hold_s: float = 0.0  # > 0: hold the call until released, at most this long
    error: ApiError | None = None
    operation_delay_s: float = 0.0


# What Compute says, word for word in shape, for the errors a fault answers (the message names the
# resource as Compute's do; "(injected by localcloud)" tells a reader of a log where it came from).
_MESSAGES = {
    400: "Invalid value for field 'resource': '{resource}'. (injected by localcloud)",
    404: "The resource '{resource}' was not found (injected by localcloud)",
    409: "The resource '{resource}' already exists (injected by localcloud)",
    412: "Supplied fingerprint does not match current metadata fingerprint. (injected by localcloud)",
    429: "Rate Limit Exceeded (injected by localcloud)",
}
_RESOURCE_NOT_READY = "The resource '{resource}' is not ready (injected by localcloud)"


def injected_error(code: int, method_id: str, resource: str, reason: str | None = None,
                   retry_after_s: int | None = None) -> ApiError:
    """An error in Google's envelope: the reason Compute uses for ``code`` unless ``reason`` says
    which (``resourceNotReady``: Compute's 400 for a resource another operation is changing)."""
    resource = resource.split("/compute/v1/", 1)[-1].lstrip("/") or method_id
    template = _RESOURCE_NOT_READY if reason == "resourceNotReady" else _MESSAGES.get(
        code, "localcloud: injected fault for {method_id}")
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s and code in (429, 503) else None
    return ApiError(code, template.format(resource=resource, method_id=method_id),
                    reason=reason or COMPUTE_REASON_BY_CODE.get(code, "backendError" if code >= 500 else "invalid"),
                    headers=headers)


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)
        self._held = threading.Condition()
        self._holding = 0
        self._generation = 0  # a release moves it on: every call held before it goes

    def set(self, rules: list[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            if seed is not None:
                self._random.seed(seed)

    def reset(self) -> None:
        self.set([])
        self.release()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def before_call(self, method_id: str, principal: str, resource: str = "") -> "FaultEffect":
        """What to do to one call: latency to add, whether to hold it, the error to answer (if
        any), and how much longer an operation it starts stays RUNNING. ``resource``: the path the
        call names, for the error's message."""
        effect = FaultEffect()
        with self._lock:
            for rule in self._rules:
                if not rule.applies(method_id, principal):
                    continue
                if rule.error_rate <= 0:  # a delaying rule: ``count`` bounds the calls it touches
                    if rule.count is not None:
                        if rule.count <= 0:
                            continue
                        rule.count -= 1
                    if rule.hold:
                        effect.hold_s = max(effect.hold_s, float(rule.latency_ms) / 1000.0)
                    else:
                        effect.latency_s += float(rule.latency_ms) / 1000.0
                    effect.operation_delay_s += float(rule.operation_delay_s)
                    continue
                effect.latency_s += float(rule.latency_ms) / 1000.0
                if effect.error is None and (rule.count is None or rule.count > 0):
                    if self._random.random() < rule.error_rate:
                        if rule.count is not None:
                            rule.count -= 1
                        effect.error = injected_error(int(rule.code), method_id, resource, rule.reason,
                                                      rule.retry_after_s)
        return effect

    def hold(self, seconds: float) -> None:
        """Hold one call until ``release`` or ``seconds`` passed (never longer: nothing hangs)."""
        with self._held:
            generation = self._generation
            self._holding += 1
            try:
                self._held.wait_for(lambda: self._generation != generation, timeout=seconds)
            finally:
                self._holding -= 1

    def holding(self) -> int:
        """How many calls are held now."""
        with self._held:
            return self._holding

    def release(self) -> int:
        """Let every held call go on; returns how many were held."""
        with self._held:
            released = self._holding
            self._generation += 1
            self._held.notify_all()
            return released

    def operation_fails(self, method_id: str, principal: str) -> ApiError | None:
        with self._lock:
            for rule in self._rules:
                if rule.applies(method_id, principal) and rule.operation_error_rate > 0:
                    if self._random.random() < rule.operation_error_rate:
                        return ApiError(500, f"localcloud: injected operation failure for {method_id}",
                                        reason="backendError")
        return None
