"""The local stack as the benchmark drives it: started in ``.bench/stack`` on free ports (never
touching a `make up` stack), the guardrails enforcing (examples/policy/enforce-db.yaml), and
stopped by PID (``Stack.down``) whatever happens.

How an event is timed: the audit sink is detached, so nothing reaches the guardrails unless the
benchmark publishes it. For each event the benchmark takes the audit entry localcloud wrote for
the user's real API call and publishes it to the audit topic exactly as the sink would (same bytes,
same attributes: ``localcloud.auditlog.sinks.pubsub_message``). Watch subscriptions on the audit
and findings topics give the Pub/Sub emulator's ``publish_time`` of the entry and of each finding:
end-to-end time is the difference of two timestamps from one clock (the emulator's), so the
benchmark's own pulling adds nothing to it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".bench" / "stack"
POLICY = ROOT / "examples" / "policy" / "enforce-db.yaml"
AUDIT_SINK = "egress-guard-audit"
FINDING_TIMEOUT_S = 60.0  # only stops a hang; a late finding is reported, never asserted on

# No emulator latency, operations done at once: what is left is egress-guard and the plumbing.
ZERO_PROFILE = {"compute_operation_delay_s": 0.0, "connector_ready_delay_s": 0.0, "run_operation_delay_s": 0.0}


@dataclass(frozen=True)
class Received:
    """A message seen on a watch subscription, with the emulator's publish time (epoch seconds)."""

    insert_id: str  # the audit entry's insertId (for a finding: its trigger's)
    published: float
    body: Mapping[str, Any]


class Watcher:
    """Streaming-pulls a watch subscription in the background; indexes messages by insertId."""

    def __init__(self, subscriber: Any, subscription: str, key: Any) -> None:
        self._key = key
        self._cond = threading.Condition()
        self._by_id: dict[str, list[Received]] = defaultdict(list)
        self._all: list[Received] = []
        self._future = subscriber.subscribe(subscription, callback=self._on_message)

    def _on_message(self, message: Any) -> None:
        try:
            body = json.loads(message.data)
            insert_id = self._key(body)
        except (ValueError, KeyError, TypeError):
            message.ack()
            return
        received = Received(insert_id, message.publish_time.timestamp(), body)
        with self._cond:
            self._by_id[insert_id].append(received)
            self._all.append(received)
            self._cond.notify_all()
        message.ack()

    def wait_until(self, done: Callable[[list[Received]], bool], timeout: float = FINDING_TIMEOUT_S) -> list[Received]:
        """Every message seen, once ``done(messages)`` holds (or ``timeout`` passes first)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(self._all):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self._all)

    def wait(self, insert_id: str, count: int, timeout: float = FINDING_TIMEOUT_S) -> list[Received]:
        """The messages for ``insert_id`` once there are ``count`` (fewer if ``timeout`` passes first)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._by_id[insert_id]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self._by_id[insert_id])

    def stop(self) -> None:
        self._future.cancel()
        try:
            self._future.result(timeout=10)
        except Exception:  # cancelled: the expected end of a streaming pull
            pass


class LocalStack:
    """``with LocalStack() as stack:`` the running stack, a user, the control API, publish and watch."""

    def __init__(self, state_dir: Path = STATE_DIR, policy: Path = POLICY, log: Any = None) -> None:
        from localcloud.stack import Stack

        self.stack = Stack(state_dir=state_dir, guardrails=True, policy=str(policy), fixed_ports=False,
                           log=log or (lambda line: None))
        self.env: dict[str, str] = {}
        self._emulator_host = os.environ.get("PUBSUB_EMULATOR_HOST")

    def __enter__(self) -> "LocalStack":
        try:
            self._start()
        except BaseException:
            self.__exit__()  # whatever started is stopped, by PID
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for watcher in (getattr(self, "findings", None), getattr(self, "audit", None)):
            if watcher is not None:
                watcher.stop()
        self.stack.down(quiet=True)  # every process it started, by PID
        if self._emulator_host is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = self._emulator_host

    def _start(self) -> None:
        from google.cloud import pubsub_v1

        from localcloud.control_client import LocalCloudControl
        from localcloud.stack import AUDIT_TOPIC, FINDINGS_TOPIC, FUNCTIONS, PROJECT

        from .user import User

        self.env = self.stack.up()
        os.environ["PUBSUB_EMULATOR_HOST"] = self.env["PUBSUB_EMULATOR_HOST"]
        self.url = self.env["LOCALCLOUD_URL"]
        self.control = LocalCloudControl(self.url, timeout=30.0)
        self.detach_sink()  # the benchmark publishes each entry itself
        self.profile(None)
        self.user = User(self.url)
        self.principals = {name: spec["sa"] for name, spec in FUNCTIONS.items()}
        self.publisher = pubsub_v1.PublisherClient()
        self.topic = self.publisher.topic_path(PROJECT, AUDIT_TOPIC)
        self._subscriber = pubsub_v1.SubscriberClient()
        path = self._subscriber.subscription_path
        self.audit = Watcher(self._subscriber, path(PROJECT, f"{AUDIT_TOPIC}-watch"), lambda b: b["insertId"])
        self.findings = Watcher(self._subscriber, path(PROJECT, f"{FINDINGS_TOPIC}-watch"),
                                lambda b: b["trigger"]["insertId"])
        self.slack_url = self.stack.url("slack")

    # -- localcloud behaviour

    def profile(self, latency_ms: float | None, operation_delay_s: float = 0.0,
                connector_ready_s: float | None = None) -> None:
        """Zero latency (None), or ``latency_ms`` added to every API call and operations that take
        ``operation_delay_s``; a connector READY after ``connector_ready_s`` when given (else as
        any operation)."""
        self.control.clear_faults()
        if latency_ms:
            self.control.set_faults([{"methods": "*", "latency_ms": latency_ms}])
        delays = {key: operation_delay_s for key in ZERO_PROFILE}
        if connector_ready_s is not None:
            delays["connector_ready_delay_s"] = connector_ready_s
        self.control.config(**delays)

    # -- the audit sink and the push subscriptions, as deployed

    def attach_sink(self) -> None:
        """The audit sink with the filter rendered from infra/, as ``make up`` wires it."""
        from localcloud.infra_sink import sink_filter_from_terraform
        from localcloud.stack import AUDIT_TOPIC, PROJECT

        self.control.request("POST", "sinks", {
            "name": AUDIT_SINK, "filter": sink_filter_from_terraform(ROOT / "infra"),
            "destination": f"pubsub.googleapis.com/projects/{PROJECT}/topics/{AUDIT_TOPIC}"})

    def detach_sink(self) -> None:
        """Nothing reaches the guardrails unless the benchmark publishes it (idempotent)."""
        sinks = self.control.request("GET", "sinks")
        names = [s.get("name") for s in (sinks.get("sinks", []) if isinstance(sinks, dict) else sinks)]
        if AUDIT_SINK in names:
            self.control.request("DELETE", f"sinks/{AUDIT_SINK}")

    def retry_policy(self, minimum_backoff_s: float, maximum_backoff_s: float) -> None:
        """Give every function's push subscription this redelivery backoff (the deployment's)."""
        from google.protobuf import duration_pb2, field_mask_pb2
        from google.pubsub_v1.types import RetryPolicy, Subscription

        from localcloud.stack import FUNCTIONS, PROJECT

        policy = RetryPolicy(minimum_backoff=duration_pb2.Duration(seconds=int(minimum_backoff_s)),
                             maximum_backoff=duration_pb2.Duration(seconds=int(maximum_backoff_s)))
        for name in FUNCTIONS:
            subscription = Subscription(name=self._subscriber.subscription_path(PROJECT, f"{name}-push"),
                                        retry_policy=policy)
            self._subscriber.update_subscription(
                subscription=subscription, update_mask=field_mask_pb2.FieldMask(paths=["retry_policy"]))

    def function_log(self, name: str) -> list[dict[str, Any]]:
        """The JSON lines function ``name`` has written (its stdout, as Cloud Logging would read it)."""
        lines = []
        path = self.stack.log_dir / f"{name}.log"
        if not path.exists():
            return lines
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines

    # -- audit entries

    def fetch_entries(self) -> list[dict[str, Any]]:
        """Every audit entry localcloud has written (fetch once after seeding, then ``select``)."""
        return list(self.control.request("GET", "entries")["entries"])

    def publish(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Publish entries to the audit topic as the Logging sink does, and wait until Pub/Sub has them."""
        from localcloud.auditlog.sinks import pubsub_message

        futures = []
        for entry in entries:
            data, attributes = pubsub_message(entry)
            futures.append(self.publisher.publish(self.topic, data, **attributes))
        for future in futures:
            future.result(timeout=30)

    # -- the call log (cleared before each event, so what follows is that event's)

    def clear_calls(self) -> None:
        self.control.clear_calls()

    def calls_by(self, principal: str) -> list[dict[str, Any]]:
        return list(self.control.calls(principal=principal)["calls"])


def select(entries: Iterable[Mapping[str, Any]], method: str, *, project: str, resource: str = "",
           first: bool | None = None, last: bool | None = None, by: str | None = None) -> list[Mapping[str, Any]]:
    """The entries of ``method`` in ``project`` (resourceName suffix, operation first/last, principal)."""
    found = []
    for entry in entries:
        payload = entry["protoPayload"]
        operation = entry.get("operation") or {}
        name = payload.get("resourceName", "")
        if payload["methodName"] != method or not name.endswith(resource) or f"projects/{project}/" not in name:
            continue
        if first is not None and bool(operation.get("first")) != first:
            continue
        if last is not None and bool(operation.get("last")) != last:
            continue
        if by is not None and payload.get("authenticationInfo", {}).get("principalEmail") != by:
            continue
        found.append(entry)
    return found


def one(entries: Iterable[Mapping[str, Any]], method: str, **kw: Any) -> Mapping[str, Any]:
    found = select(entries, method, **kw)
    if len(found) != 1:
        raise RuntimeError(f"expected one {method} entry for {kw}, localcloud wrote {len(found)}")
    return found[0]
