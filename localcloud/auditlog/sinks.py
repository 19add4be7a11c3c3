"""Logging sinks: route matching audit entries to the Pub/Sub emulator or to an Eventarc-style target.

A sink has a name, a Cloud Logging filter (parsed by ``localcloud.auditlog.filter``, the same
text Terraform gives Google) and one destination:

- ``pubsub.googleapis.com/projects/P/topics/T``: each matching LogEntry is published, as its
  JSON, with google-cloud-pubsub's PublisherClient to the emulator at ``PUBSUB_EMULATOR_HOST``
  (read when the sink is created) or at the sink's ``pubsub_emulator_host``;
- an Eventarc target URL: each matching entry is POSTed as a structured-mode CloudEvent
  ``google.cloud.audit.log.v1.written`` (data = the LogEntry), like the real sample.

Delivery is off the request path: the writer only enqueues; each sink has its own queue and
worker thread, so a slow or failing destination delays nobody else and a sink sees entries in
write order. A failed delivery is retried with exponential backoff; after ``MAX_ATTEMPTS`` the
entry is counted as dropped and logged with its insertId (as Cloud Logging, after retrying, drops
what a broken sink cannot take), so nothing is lost silently.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlsplit

import requests

from localcloud.auditlog import filter as logging_filter
from localcloud.errors import ApiError, already_exists, invalid

log = logging.getLogger("localcloud.sinks")

# UNCONFIRMED official text (facts §4.2): the attribute Logging sets on messages it exports,
# seen in many third-party fixtures.
TIMESTAMP_ATTRIBUTE = "logging.googleapis.com/timestamp"

AUDIT_EVENT_TYPE = "google.cloud.audit.log.v1.written"
AUDIT_EVENT_DATASCHEMA = ("https://googleapis.github.io/google-cloudevents/jsonschema/google/events/"
                          "cloud/audit/v1/LogEntryData.json")
CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"

# Retry policy of one delivery: 0.1 s, 0.2 s, ... capped at 5 s; 12 attempts span about 30 s.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0
MAX_ATTEMPTS = 12
DELIVERY_TIMEOUT_S = 10.0
RECENT_DROPS_KEPT = 100

_SINK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # Cloud Logging's sink-name rule
_TOPIC_DESTINATION = re.compile(r"^pubsub\.googleapis\.com/projects/([a-z][-a-z0-9.:]{4,61}[a-z0-9])/topics/([^/]+)$")
_PARENT = re.compile(r"^(projects/[a-z][-a-z0-9]{4,28}[a-z0-9]|folders/\d+|organizations/\d+)$")
_TOPIC_ID = re.compile(r"^[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$")


# ---- configuration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SinkConfig:
    name: str
    filter_text: str
    topic: str | None = None  # projects/P/topics/T
    pubsub_host: str | None = None
    eventarc_target: str | None = None
    parent: str = ""  # projects/P, folders/F or organizations/O: where Logging keeps the sink
    include_children: bool = False
    create_time: str = ""

    @property
    def writer_identity(self) -> str:
        """UNCONFIRMED form: the Logging service agent of the sink's parent, as Google's sink docs
        describe for new sinks (``service-PROJECT_NUMBER@gcp-sa-logging...``, ``service-org-ORG``,
        ``service-folder-FOLDER``); older project sinks have a per-sink ``p…-…@`` identity."""
        kind, _, ident = self.parent.partition("/")
        if kind == "projects":
            from localcloud.backends.vpcaccess import project_number

            return f"serviceAccount:service-{project_number(ident)}@gcp-sa-logging.iam.gserviceaccount.com"
        return f"serviceAccount:service-{kind[:-1].replace('organization', 'org')}-{ident}@gcp-sa-logging.iam.gserviceaccount.com"

    def log_sink(self) -> dict[str, Any]:
        """The sink as Logging v2's ``LogSink`` (sinks.get/list)."""
        out: dict[str, Any] = {"name": self.name, "destination": self.destination, "filter": self.filter_text,
                               "writerIdentity": self.writer_identity, "createTime": self.create_time,
                               "updateTime": self.create_time}
        if self.include_children:
            out["includeChildren"] = True
        return out

    @property
    def destination(self) -> str:
        return f"pubsub.googleapis.com/{self.topic}" if self.topic else str(self.eventarc_target)

    @classmethod
    def from_body(cls, body: Any, environ: Mapping[str, str] | None = None) -> "SinkConfig":
        """Validate a ``POST /_localcloud/sinks`` body; every problem is a 400 that names it."""
        environ = os.environ if environ is None else environ
        if not isinstance(body, dict):
            raise invalid('a sink is {"name", "filter", "destination" | "eventarc_target"}')
        known = {"name", "filter", "destination", "eventarc_target", "pubsub_emulator_host", "parent",
                 "include_children"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise invalid(f"unknown sink field(s) {unknown}; known: {sorted(known)}")
        name = body.get("name")
        if not isinstance(name, str) or not _SINK_NAME.match(name):
            raise invalid("sink name must be 1-100 letters, digits, '_', '-' or '.'")
        filter_text = body.get("filter", "")
        if not isinstance(filter_text, str):
            raise invalid("sink filter must be a string")
        parent = body.get("parent")
        if parent is not None and (not isinstance(parent, str) or not _PARENT.match(parent)):
            raise invalid(f"sink parent {parent!r} is not projects/P, folders/F or organizations/O")
        include_children = body.get("include_children", False)
        if not isinstance(include_children, bool):
            raise invalid("sink include_children must be a boolean")
        from localcloud.world import World

        placed = {"parent": parent or "", "include_children": include_children, "create_time": World.rfc3339()}
        destination, target = body.get("destination"), body.get("eventarc_target")
        if (destination is None) == (target is None):
            raise invalid("a sink needs exactly one of destination (pubsub.googleapis.com/projects/P/topics/T) "
                          "or eventarc_target (http://127.0.0.1:PORT/)")
        if destination is not None:
            match = _TOPIC_DESTINATION.match(destination) if isinstance(destination, str) else None
            if not match or not _TOPIC_ID.match(unquote(match.group(2))):
                raise invalid(f"sink destination {destination!r} is not pubsub.googleapis.com/projects/P/topics/T "
                              "(P a project id: 6-30 lowercase letters, digits or hyphens; T a topic id)")
            host = body.get("pubsub_emulator_host") or environ.get("PUBSUB_EMULATOR_HOST")
            if not isinstance(host, str) or not re.match(r"^[A-Za-z0-9.\-\[\]:]+:\d+$", host):
                raise invalid("no Pub/Sub emulator to publish to: set PUBSUB_EMULATOR_HOST for localcloud "
                              "or give pubsub_emulator_host (HOST:PORT) in the sink")
            placed["parent"] = placed["parent"] or f"projects/{match.group(1)}"  # default: the topic's project
            return cls(name, filter_text, topic=destination.split("/", 1)[1], pubsub_host=host, **placed)
        parts = urlsplit(target) if isinstance(target, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(f"sink eventarc_target {target!r} is not an http(s) URL")
        return cls(name, filter_text, eventarc_target=target, **placed)


# ---- formatting (pure) ------------------------------------------------------------------------
def pubsub_message(entry: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """What a Logging sink publishes: the LogEntry JSON, and the timestamp attribute."""
    data = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    attributes = {TIMESTAMP_ATTRIBUTE: str(entry.get("timestamp", ""))}
    return data, attributes


def audit_cloudevent(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The structured-mode CloudEvent Eventarc delivers for an audit entry (real sample:
    ``cloudevent-structured-audit-log-v1-written...json``; extension attribute names lowercase,
    as CloudEvents requires and google-cloudevents' events.proto declares)."""
    payload = entry.get("protoPayload") or {}
    log_name = str(entry.get("logName", ""))
    parent, _, log_id = log_name.partition("/logs/")
    short_log = unquote(log_id).rsplit("/", 1)[-1]  # cloudaudit.googleapis.com/activity -> activity
    timestamp = str(entry.get("timestamp", ""))
    fraction = timestamp.rsplit(".", 1)[-1].rstrip("Z") if "." in timestamp else ""
    service, resource = str(payload.get("serviceName", "")), str(payload.get("resourceName", ""))
    return {
        "specversion": "1.0",
        # UNCONFIRMED composition (facts §4.1): logName + insertId + 9 digits, as the sample looks.
        "id": f"{log_name}{entry.get('insertId', '')}{fraction.ljust(9, '0')[:9]}",
        "source": f"//cloudaudit.googleapis.com/{parent}/logs/{short_log}",
        "subject": f"{service}/{resource}",
        "type": AUDIT_EVENT_TYPE,
        "time": entry.get("receiveTimestamp", timestamp),
        "datacontenttype": "application/json; charset=utf-8",
        "dataschema": AUDIT_EVENT_DATASCHEMA,
        "methodname": payload.get("methodName", ""),
        "servicename": service,
        "resourcename": resource,
        "recordedtime": timestamp,
        "data": entry,
    }


# ---- delivery ---------------------------------------------------------------------------------
class DeliveryError(Exception):
    pass


Deliver = Callable[[dict[str, Any]], None]


class _Publishers:
    """One PublisherClient per emulator host (thread-safe, shared by the sinks)."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, host: str):
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                import grpc
                from google.cloud import pubsub_v1
                from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport

                # An explicit insecure channel to this host, so a sink's own host works without
                # changing the process environment (the client reads PUBSUB_EMULATOR_HOST).
                transport = PublisherGrpcTransport(channel=grpc.insecure_channel(host), host=host)
                # One message per batch: a sink publishes one entry at a time and waits for it (to
                # keep order and count), so the default 10 ms batching delay would cap it at ~60/s.
                client = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1),
                                                   transport=transport)
                self._clients[host] = client
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                client.stop()
                client.transport.close()
            except Exception:  # closing is best effort
                log.debug("localcloud sinks: closing a publisher failed", exc_info=True)


def pubsub_delivery(publishers: _Publishers, host: str, topic: str) -> Deliver:
    def deliver(entry: dict[str, Any]) -> None:
        data, attributes = pubsub_message(entry)
        # retry=None: our own loop retries with backoff and counts; the client's default retries
        # forever, which would hide a broken sink.
        future = publishers.get(host).publish(topic, data, retry=None, timeout=DELIVERY_TIMEOUT_S, **attributes)
        try:
            future.result(timeout=DELIVERY_TIMEOUT_S)
        except Exception as exc:
            raise DeliveryError(f"publish to {topic} at {host}: {type(exc).__name__}: {exc}") from exc

    return deliver


def eventarc_delivery(session: requests.Session, url: str) -> Deliver:
    def deliver(entry: dict[str, Any]) -> None:
        body = json.dumps(audit_cloudevent(entry), ensure_ascii=False).encode("utf-8")
        try:
            response = session.post(url, data=body, headers={"Content-Type": CLOUDEVENT_CONTENT_TYPE},
                                    timeout=DELIVERY_TIMEOUT_S)
        except requests.RequestException as exc:
            raise DeliveryError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:  # Eventarc retries every non-2xx answer
            raise DeliveryError(f"POST {url}: HTTP {response.status_code}: {response.text[:200]}")

    return deliver


# ---- one sink ---------------------------------------------------------------------------------
_STOP = object()


@dataclass
class _Counters:
    offered: int = 0  # entries written while the sink existed
    examined: int = 0  # filter evaluated
    matched: int = 0
    delivered: int = 0
    failed: int = 0  # failed delivery attempts (each retry counts)
    dropped: int = 0  # given up after MAX_ATTEMPTS
    filter_errors: int = 0
    last_error: str = ""
    recent_drops: list[str] = field(default_factory=list)  # insertIds


class Sink:
    """A configured sink: its filter, queue, worker thread and counters."""

    def __init__(self, config: SinkConfig, filter_: logging_filter.Filter, deliver: Deliver,
                 *, wait: Callable[[threading.Event, float], bool] | None = None) -> None:
        self.config = config
        self.filter = filter_
        self._deliver = deliver
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wait = wait or (lambda event, seconds: event.wait(seconds))
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._thread = threading.Thread(target=self._run, name=f"localcloud-sink-{config.name}", daemon=True)
        self._thread.start()

    def offer(self, entry: dict[str, Any]) -> None:
        """Called by the writer for every new entry; only enqueues."""
        with self._lock:
            self._counters.offered += 1
        self._queue.put(entry)

    def stop(self) -> int:
        """Stop the worker; returns how many offered entries were not processed (abandoned)."""
        self._stop.set()
        self._queue.put(_STOP)
        self._thread.join(timeout=DELIVERY_TIMEOUT_S + 1)
        with self._lock:
            c = self._counters
            return c.offered - c.examined

    def stats(self) -> dict[str, Any]:
        with self._lock:
            c = self._counters
            pending = c.offered - c.examined + (c.matched - c.delivered - c.dropped)
            return {
                "name": self.config.name,
                "parent": self.config.parent,
                "writer_identity": self.config.writer_identity,
                "filter": self.config.filter_text,
                "destination": self.config.destination,
                **({"pubsub_emulator_host": self.config.pubsub_host} if self.config.pubsub_host else {}),
                "offered": c.offered, "examined": c.examined, "matched": c.matched,
                "delivered": c.delivered, "failed": c.failed, "dropped": c.dropped,
                "pending": pending, "filter_errors": c.filter_errors,
                "last_error": c.last_error, "recent_drops": list(c.recent_drops),
            }

    def _run(self) -> None:
        while not self._stop.is_set():
            entry = self._queue.get()
            if entry is _STOP:
                return
            try:
                matched = self.filter.matches(entry)
            except Exception as exc:  # a filter bug must not kill the sink
                log.exception("localcloud sink %s: filter failed on %s", self.config.name, entry.get("insertId"))
                with self._lock:
                    self._counters.examined += 1
                    self._counters.filter_errors += 1
                    self._counters.last_error = f"filter: {type(exc).__name__}: {exc}"
                continue
            with self._lock:
                self._counters.examined += 1
                if matched:
                    self._counters.matched += 1
            if matched:
                self._deliver_with_retries(entry)

    def _deliver_with_retries(self, entry: dict[str, Any]) -> None:
        delay = RETRY_INITIAL_S
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                self._deliver(entry)
            except Exception as exc:
                with self._lock:
                    self._counters.failed += 1
                    self._counters.last_error = str(exc)[:500]
                if attempt == MAX_ATTEMPTS or self._wait(self._stop, delay):
                    break
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            with self._lock:
                self._counters.delivered += 1
            return
        insert_id = str(entry.get("insertId", ""))
        log.error("localcloud sink %s: dropped entry %s after %d attempts: %s", self.config.name, insert_id,
                  MAX_ATTEMPTS, self._counters.last_error)
        with self._lock:
            self._counters.dropped += 1
            self._counters.recent_drops = (self._counters.recent_drops + [insert_id])[-RECENT_DROPS_KEPT:]


# ---- the sink table ---------------------------------------------------------------------------
class Sinks:
    """All sinks of a localcloud. ``offer`` is the audit writer's listener."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.Lock()
        self._publishers = _Publishers()
        self._session = requests.Session()

    def add(self, body: Any) -> dict[str, Any]:
        config = SinkConfig.from_body(body, self._environ)
        try:
            filter_ = logging_filter.parse(config.filter_text)
        except logging_filter.FilterSyntaxError as exc:
            raise ApiError(400, f"Invalid sink filter (at position {exc.position}): {exc.message}") from None
        if config.topic:
            deliver = pubsub_delivery(self._publishers, str(config.pubsub_host), config.topic)
        else:
            deliver = eventarc_delivery(self._session, str(config.eventarc_target))
        with self._lock:
            if config.name in self._sinks:
                raise already_exists(f"sinks/{config.name}")
            sink = Sink(config, filter_, deliver)
            self._sinks[config.name] = sink
        return sink.stats()

    def remove(self, name: str) -> dict[str, Any]:
        with self._lock:
            sink = self._sinks.pop(name, None)
        if sink is None:
            raise ApiError(404, f"Sink {name} does not exist", reason="notFound")
        stats = sink.stats()
        stats["abandoned"] = sink.stop()
        return stats

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            sinks = list(self._sinks.values())
        return [s.stats() for s in sinks]

    def configs(self, parent: str) -> list[SinkConfig]:
        """The sinks Logging keeps under ``parent`` (sinks.list), by name."""
        with self._lock:
            return sorted((s.config for s in self._sinks.values() if s.config.parent == parent), key=lambda c: c.name)

    def offer(self, entry: dict[str, Any]) -> None:
        with self._lock:
            sinks = list(self._sinks.values())
        for sink in sinks:
            sink.offer(entry)

    def close(self) -> None:
        """Stop every sink and publisher (tests; a running localcloud keeps its sinks)."""
        with self._lock:
            sinks, self._sinks = list(self._sinks.values()), {}
        for sink in sinks:
            sink.stop()
        self._publishers.close()
