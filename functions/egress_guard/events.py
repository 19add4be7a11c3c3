"""Parse a delivery once into a frozen ``AuditEvent`` (design §1 and §3, style.md point 3).

``parse_event`` accepts the three forms a guardrail can receive:

- the Eventarc CloudEvent ``google.cloud.audit.log.v1.written`` (``data`` = the LogEntry),
- the Pub/Sub CloudEvent ``google.cloud.pubsub.topic.v1.messagePublished`` (``data.message.data``
  = base64 of the LogEntry JSON; what a Logging sink -> topic -> function delivers),
- a bare LogEntry (``egress-guard replay``, ``backfill``),

each as a ``cloudevents.http.CloudEvent`` (what functions-framework passes), a plain dict
(structured-mode CloudEvent JSON, a LogEntry, or the Pub/Sub ``{"message": ..., "subscription": ...}``
body), or the JSON text of one. Whatever it is given, it returns an ``AuditEvent`` or raises a
``PermanentError``: ``NotOurEvent`` for a well-formed entry of a method egress-guard does not
handle, ``MalformedEvent`` / ``InvalidName`` for anything else; nothing else escapes.

``TRIGGERS`` is the one table of the methods egress-guard reacts to and what they mean.

Entry shapes (docs/gcp-facts.md §3.2, §3.3). Where Google's shape is UNCONFIRMED, the choice below is
what the parser tolerates, what ``tests/fixtures/`` contains, and what localcloud's audit writer
produces; it is written down once, in ``TRIGGERS`` and the constants that follow it:

- Compute (confirmed): ``resourceName`` ``projects/P/regions/R/routers/N`` or
  ``projects/P/global/firewalls/N``; two entries per call, ``operation.first`` (request body,
  ``response`` = the Compute Operation, ``status`` RUNNING/PENDING) and ``operation.last``
  (``request`` holds only ``@type``, no response), same ``operation.id`` (``operation-...``),
  producer ``compute.googleapis.com``; ``resource.type`` ``gce_router`` (labels router_id, region,
  project_id) / ``gce_firewall_rule`` (labels firewall_rule_id, project_id).
- Cloud Run v1 (confirmed by a real ``ReplaceService`` sample): synchronous, no ``operation``;
  ``resourceName`` ``namespaces/P/services/S`` (jobs: ``namespaces/P/jobs/J``, UNCONFIRMED);
  ``request`` ``{name: projects/P/locations/R/services/S, region, service: <Knative Service>}``
  (jobs: ``job: <Knative Job>``); ``response`` the Knative object with ``@type``
  ``type.googleapis.com/google.cloud.run.v1.Service`` (``...v1.Job``); ``resource.type``
  ``cloud_run_revision`` (services) / ``cloud_run_job`` (jobs, UNCONFIRMED).
- Cloud Run v2 (UNCONFIRMED): ``resourceName`` ``projects/P/locations/R/services/S`` (``jobs/J``);
  two entries (``operation.first``/``operation.last``, id ``projects/P/locations/R/operations/UUID``,
  producer ``run.googleapis.com``); first: ``request`` the ``CreateServiceRequest``
  ``{parent, serviceId, service}`` / ``UpdateServiceRequest`` ``{service}`` (jobs: ``job``, ``jobId``),
  enums as names, and ``response`` a ``google.longrunning.Operation`` whose ``metadata`` is the
  Service/Job; last: ``request`` only ``@type``, ``response`` the final Service/Job.
- Cloud Run v2 worker pools (docs/gcp-facts.md §12.5; UNCONFIRMED, shaped as Cloud Run v2's):
  ``resourceName`` ``projects/P/locations/R/workerPools/W``; first: ``request``
  ``CreateWorkerPoolRequest`` ``{parent, workerPoolId, workerPool}`` / ``UpdateWorkerPoolRequest``
  ``{workerPool}``; last: ``response`` the WorkerPool; ``resource.type``
  ``assumptions.RUN_WORKER_POOL_RESOURCE_TYPE``.
- Serverless VPC Access (UNCONFIRMED): ``resourceName`` ``projects/P/locations/R/connectors/C``;
  first/last pair (operation id ``projects/P/locations/R/operations/ID``, producer
  ``vpcaccess.googleapis.com``); first: ``request`` ``CreateConnectorRequest``
  ``{parent, connectorId, connector}``, ``response`` the Operation; last: ``response`` the Connector;
  ``resource.type`` ``assumptions.VPCACCESS_RESOURCE_TYPE`` with labels ``{connector_name, location,
  project_id}``.

- Cloud Functions v2 (docs/gcp-facts.md §12.3; the first/last pair confirmed by Google's audit page,
  the rest assumed as Cloud Run v2's): ``resourceName`` ``projects/P/locations/R/functions/F``;
  first: ``request`` ``CreateFunctionRequest`` ``{parent, functionId, function}`` /
  ``UpdateFunctionRequest`` ``{function, updateMask}``; last: ``response`` the Function;
  ``resource.type`` ``cloud_function`` (labels function_name, region, project_id), as the real 1st gen
  entry shows.

- Cloud Functions v1, 1st gen (docs/gcp-facts.md §12.2; a real CreateFunction entry): ``resourceName``
  ``projects/P/locations/R/functions/F``; first: ``request`` ``CreateFunctionRequest`` ``{location,
  function}`` (the function names itself in ``function.name``) / ``UpdateFunctionRequest`` ``{function,
  updateMask}`` (assumed as v2's); operation id ``operations/ID`` (v1 operations are global); last:
  ``response`` the CloudFunction; ``resource.type`` ``cloud_function``. The resource is the same
  ``FunctionName`` as a 2nd gen function's; ``ApiVersion.FUNCTIONS_V1`` says which API reads it.

- App Engine (docs/gcp-facts.md §12.4, a real pair): ``resourceName`` ``apps/P/services/S/versions/V``;
  first: the request in ``protoPayload.serviceData`` (``AuditData``, ``createVersion.request.version``),
  no ``request``; last: no payload; ``resource.type`` ``gae_app`` (labels module_id, version_id).

The parser also accepts a create entry whose ``resourceName`` is the parent (``projects/P/locations/R``,
``namespaces/P``) and takes the new name from the request (``connectorId``, ``serviceId``, ``jobId``,
``metadata.name``), since some Google APIs log creates that way.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from .assumptions import (
    RUN_JOB_RESOURCE_TYPE,
    RUN_V1_JOB_METHODS,
    RUN_WORKER_POOL_METHODS,
    RUN_WORKER_POOL_RESOURCE_TYPE,
    VPCACCESS_RESOURCE_TYPE,
)
from .errors import InvalidName, MalformedEvent, NotOurEvent, StaleEvent
from .findings import Trigger
from .names import (
    ResourceName,
    parse_app_engine_version,
    parse_connector,
    parse_firewall,
    parse_function,
    parse_router,
    parse_run_job,
    parse_run_service,
    parse_run_worker_pool,
    validate_project,
    validate_region,
)

AUDIT_LOG_EVENT_TYPE = "google.cloud.audit.log.v1.written"
PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
AUDIT_LOG_PAYLOAD_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"


class Delivery(str, enum.Enum):
    AUDIT_LOG_EVENT = "audit-log-event"  # Eventarc google.cloud.audit.log.v1.written
    PUBSUB_MESSAGE = "pubsub-message"  # Logging sink -> Pub/Sub -> messagePublished
    LOG_ENTRY = "log-entry"  # a bare LogEntry (replay, backfill)


class EventKind(str, enum.Enum):
    """What happened, in egress-guard's terms."""

    CONNECTOR_CREATED = "connector-created"
    RUN_SERVICE_WRITTEN = "run-service-written"  # created or replaced/updated
    RUN_JOB_WRITTEN = "run-job-written"
    RUN_WORKER_POOL_WRITTEN = "run-worker-pool-written"  # created or updated (v2 only)
    FUNCTION_WRITTEN = "function-written"  # a Cloud Function created or updated (v1 or v2 API)
    APP_ENGINE_VERSION_CREATED = "app-engine-version-created"
    ROUTER_CHANGED = "router-changed"  # patched, updated or deleted (a NAT may be gone)
    FIREWALL_CHANGED = "firewall-changed"  # inserted, patched, updated or deleted


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class ApiVersion(str, enum.Enum):
    VPCACCESS_V1 = "vpcaccess.v1"
    RUN_V1 = "run.v1"  # Knative-style API (gcloud run deploy, the console)
    RUN_V2 = "run.v2"
    COMPUTE_V1 = "compute.v1"
    FUNCTIONS_V2 = "cloudfunctions.v2"
    FUNCTIONS_V1 = "cloudfunctions.v1"  # 1st gen functions (CloudFunctionsService)
    APPENGINE_V1 = "appengine.v1"


@dataclass(frozen=True)
class MethodSpec:
    """One trigger method and what its audit entries look like (see the module docstring)."""

    service_name: str
    method_name: str
    kind: EventKind
    action: Action
    api: ApiVersion
    resource_type: str  # LogEntry resource.type
    long_running: bool  # logs an operation.first and an operation.last entry
    confirmed: bool = True  # False: this audit methodName is UNCONFIRMED (docs/gcp-facts.md §3.1)


_VPCACCESS = "vpcaccess.googleapis.com"
_RUN = "run.googleapis.com"
_COMPUTE = "compute.googleapis.com"
_FUNCTIONS = "cloudfunctions.googleapis.com"
_APPENGINE = "appengine.googleapis.com"

# resource.type of the entries (the vpcaccess and job ones are UNCONFIRMED: see ``assumptions``).
RUN_SERVICE_RESOURCE_TYPE = "cloud_run_revision"
ROUTER_RESOURCE_TYPE = "gce_router"
FIREWALL_RESOURCE_TYPE = "gce_firewall_rule"
APP_ENGINE_RESOURCE_TYPE = "gae_app"  # a real CreateVersion pair (docs/gcp-facts.md §12.4)
FUNCTION_RESOURCE_TYPE = "cloud_function"  # a real 1st gen entry (docs/gcp-facts.md §12.2); assumed for 2nd gen

# The trigger list of design §1: every method egress-guard reacts to.
TRIGGERS: tuple[MethodSpec, ...] = (
    # UNCONFIRMED entry shape (no real sample): see the module docstring.
    MethodSpec(_VPCACCESS, "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector", EventKind.CONNECTOR_CREATED,
               Action.CREATE, ApiVersion.VPCACCESS_V1, VPCACCESS_RESOURCE_TYPE, long_running=True),
    MethodSpec(_RUN, "google.cloud.run.v1.Services.CreateService", EventKind.RUN_SERVICE_WRITTEN,
               Action.CREATE, ApiVersion.RUN_V1, RUN_SERVICE_RESOURCE_TYPE, long_running=False),
    MethodSpec(_RUN, "google.cloud.run.v1.Services.ReplaceService", EventKind.RUN_SERVICE_WRITTEN,
               Action.UPDATE, ApiVersion.RUN_V1, RUN_SERVICE_RESOURCE_TYPE, long_running=False),
    MethodSpec(_RUN, "google.cloud.run.v2.Services.CreateService", EventKind.RUN_SERVICE_WRITTEN,
               Action.CREATE, ApiVersion.RUN_V2, RUN_SERVICE_RESOURCE_TYPE, long_running=True),
    MethodSpec(_RUN, "google.cloud.run.v2.Services.UpdateService", EventKind.RUN_SERVICE_WRITTEN,
               Action.UPDATE, ApiVersion.RUN_V2, RUN_SERVICE_RESOURCE_TYPE, long_running=True),
    # UNCONFIRMED: v1 job method names are not in Google's audit catalog; CreateJob was seen only in
    # an API ErrorInfo, ReplaceJob is inferred from the Services naming (docs/gcp-facts.md §3.1).
    MethodSpec(_RUN, RUN_V1_JOB_METHODS[0], EventKind.RUN_JOB_WRITTEN,
               Action.CREATE, ApiVersion.RUN_V1, RUN_JOB_RESOURCE_TYPE, long_running=False, confirmed=False),
    MethodSpec(_RUN, RUN_V1_JOB_METHODS[1], EventKind.RUN_JOB_WRITTEN,
               Action.UPDATE, ApiVersion.RUN_V1, RUN_JOB_RESOURCE_TYPE, long_running=False, confirmed=False),
    MethodSpec(_RUN, "google.cloud.run.v2.Jobs.CreateJob", EventKind.RUN_JOB_WRITTEN,
               Action.CREATE, ApiVersion.RUN_V2, RUN_JOB_RESOURCE_TYPE, long_running=True),
    MethodSpec(_RUN, "google.cloud.run.v2.Jobs.UpdateJob", EventKind.RUN_JOB_WRITTEN,
               Action.UPDATE, ApiVersion.RUN_V2, RUN_JOB_RESOURCE_TYPE, long_running=True),
    # Cloud Run v2 worker pools (docs/gcp-facts.md §12.5). UNCONFIRMED methodNames (no real entry found):
    # see assumptions.RUN_WORKER_POOL_METHODS.
    MethodSpec(_RUN, RUN_WORKER_POOL_METHODS[0], EventKind.RUN_WORKER_POOL_WRITTEN,
               Action.CREATE, ApiVersion.RUN_V2, RUN_WORKER_POOL_RESOURCE_TYPE, long_running=True, confirmed=False),
    MethodSpec(_RUN, RUN_WORKER_POOL_METHODS[1], EventKind.RUN_WORKER_POOL_WRITTEN,
               Action.UPDATE, ApiVersion.RUN_V2, RUN_WORKER_POOL_RESOURCE_TYPE, long_running=True, confirmed=False),
    # Cloud Functions v2 (docs/gcp-facts.md §12.3): long-running, first and last entries (confirmed by
    # Google's audit page); the request and response shapes are the one-platform ones, as Cloud Run v2.
    MethodSpec(_FUNCTIONS, "google.cloud.functions.v2.FunctionService.CreateFunction", EventKind.FUNCTION_WRITTEN,
               Action.CREATE, ApiVersion.FUNCTIONS_V2, FUNCTION_RESOURCE_TYPE, long_running=True),
    MethodSpec(_FUNCTIONS, "google.cloud.functions.v2.FunctionService.UpdateFunction", EventKind.FUNCTION_WRITTEN,
               Action.UPDATE, ApiVersion.FUNCTIONS_V2, FUNCTION_RESOURCE_TYPE, long_running=True),
    # Cloud Functions v1, 1st gen (docs/gcp-facts.md §12.2): long-running with first and last entries (Google's
    # audit page); a real CreateFunction entry: request {location, function}, resource.type cloud_function.
    MethodSpec(_FUNCTIONS, "google.cloud.functions.v1.CloudFunctionsService.CreateFunction",
               EventKind.FUNCTION_WRITTEN, Action.CREATE, ApiVersion.FUNCTIONS_V1, FUNCTION_RESOURCE_TYPE,
               long_running=True),
    MethodSpec(_FUNCTIONS, "google.cloud.functions.v1.CloudFunctionsService.UpdateFunction",
               EventKind.FUNCTION_WRITTEN, Action.UPDATE, ApiVersion.FUNCTIONS_V1, FUNCTION_RESOURCE_TYPE,
               long_running=True),
    # App Engine (docs/gcp-facts.md §12.4): the request is in protoPayload.serviceData, not request; a
    # version's connector cannot be changed by a patch, so a version's creation is the only trigger.
    MethodSpec(_APPENGINE, "google.appengine.v1.Versions.CreateVersion", EventKind.APP_ENGINE_VERSION_CREATED,
               Action.CREATE, ApiVersion.APPENGINE_V1, APP_ENGINE_RESOURCE_TYPE, long_running=True),
    MethodSpec(_COMPUTE, "v1.compute.routers.patch", EventKind.ROUTER_CHANGED,
               Action.UPDATE, ApiVersion.COMPUTE_V1, ROUTER_RESOURCE_TYPE, long_running=True),
    MethodSpec(_COMPUTE, "v1.compute.routers.update", EventKind.ROUTER_CHANGED,
               Action.UPDATE, ApiVersion.COMPUTE_V1, ROUTER_RESOURCE_TYPE, long_running=True),
    MethodSpec(_COMPUTE, "v1.compute.routers.delete", EventKind.ROUTER_CHANGED,
               Action.DELETE, ApiVersion.COMPUTE_V1, ROUTER_RESOURCE_TYPE, long_running=True),
    MethodSpec(_COMPUTE, "v1.compute.firewalls.insert", EventKind.FIREWALL_CHANGED,
               Action.CREATE, ApiVersion.COMPUTE_V1, FIREWALL_RESOURCE_TYPE, long_running=True),
    MethodSpec(_COMPUTE, "v1.compute.firewalls.patch", EventKind.FIREWALL_CHANGED,
               Action.UPDATE, ApiVersion.COMPUTE_V1, FIREWALL_RESOURCE_TYPE, long_running=True),
    MethodSpec(_COMPUTE, "v1.compute.firewalls.update", EventKind.FIREWALL_CHANGED,
               Action.UPDATE, ApiVersion.COMPUTE_V1, FIREWALL_RESOURCE_TYPE, long_running=True),
    MethodSpec(_COMPUTE, "v1.compute.firewalls.delete", EventKind.FIREWALL_CHANGED,
               Action.DELETE, ApiVersion.COMPUTE_V1, FIREWALL_RESOURCE_TYPE, long_running=True),
)

METHODS: Mapping[str, MethodSpec] = MappingProxyType({spec.method_name: spec for spec in TRIGGERS})

# The methodNames, in table order: what the Logging sink routes (infra/modules/log-routing's
# ``trigger_methods`` default holds the same list; tests/infra checks it) and what backfill queries.
TRIGGER_METHODS: tuple[str, ...] = tuple(METHODS)

# Operation ids: Compute uses "operation-..."; the others a relative operation name.
# UNCONFIRMED for vpcaccess and run v2 (their LROs are named like this; that the audit entry
# repeats the name in operation.id is assumed).
OPERATION_PRODUCERS: Mapping[ApiVersion, str] = MappingProxyType({
    ApiVersion.VPCACCESS_V1: _VPCACCESS,
    ApiVersion.RUN_V2: _RUN,
    ApiVersion.COMPUTE_V1: _COMPUTE,
    ApiVersion.FUNCTIONS_V2: _FUNCTIONS,
    ApiVersion.FUNCTIONS_V1: _FUNCTIONS,
    ApiVersion.APPENGINE_V1: _APPENGINE,
})


def methods_for(*kinds: EventKind) -> tuple[str, ...]:
    """The methodNames of the given kinds, in table order (for sink filters and function READMEs)."""
    return tuple(spec.method_name for spec in TRIGGERS if spec.kind in kinds)


@dataclass(frozen=True)
class AuditEvent:
    """One audit LogEntry of a trigger method, parsed and validated."""

    delivery: Delivery
    spec: MethodSpec
    service_name: str
    method_name: str
    log_name: str
    project: str  # the project whose audit log holds the entry (a validated project id)
    region: str  # "" for global resources (firewalls)
    resource: ResourceName  # typed; a project number in the name is replaced by ``project``
    resource_name: str  # protoPayload.resourceName as logged
    principal: str  # authenticationInfo.principalEmail ("" when Google logs none)
    status_code: int  # google.rpc.Code; 0 = OK
    status_message: str
    operation_id: str  # "" when the call is not a long-running operation
    operation_first: bool
    operation_last: bool
    insert_id: str
    timestamp: datetime  # aware, UTC
    severity: str
    resource_type: str  # LogEntry resource.type
    resource_labels: Mapping[str, str]
    request: Mapping[str, Any]  # read-only, as logged ({} when absent)
    response: Mapping[str, Any]
    split_index: int | None = None  # set when Logging split a large entry (bodies may be partial)
    split_total: int | None = None

    @property
    def kind(self) -> EventKind:
        return self.spec.kind

    @property
    def action(self) -> Action:
        return self.spec.action

    @property
    def api(self) -> ApiVersion:
        return self.spec.api

    @property
    def succeeded(self) -> bool:
        return self.status_code == 0

    @property
    def is_operation(self) -> bool:
        return bool(self.operation_id)

    @property
    def awaits_last_entry(self) -> bool:
        """The first entry of a Compute operation: the change is not done yet, and Compute writes an
        ``operation.last`` entry when it is (confirmed, docs/gcp-facts.md §3.3). Acting on the first would
        read a state that is about to change and spend API calls on it."""
        return self.spec.api is ApiVersion.COMPUTE_V1 and self.operation_first and not self.operation_last

    @property
    def trigger(self) -> Trigger:
        """The ``trigger`` part of a Finding."""
        return Trigger(
            serviceName=self.service_name,
            methodName=self.method_name,
            resourceName=self.resource_name,
            principal=self.principal,
            insertId=self.insert_id,
            operationId=self.operation_id,
            timestamp=_format_time(self.timestamp),
        )

    def age(self, now: datetime | None = None) -> timedelta:
        """Time since the audited call (negative if clocks disagree). ``now`` defaults to the clock."""
        current = now if now is not None else datetime.now(timezone.utc)
        if current.tzinfo is None:
            current = current.replace(tzinfo=timezone.utc)
        return current - self.timestamp

    def is_stale(self, max_age: timedelta, now: datetime | None = None) -> bool:
        return self.age(now) > max_age

    def describe(self) -> str:
        """A short line for logs: what, on what, by whom."""
        where = f" (operation {'first' if self.operation_first else 'last' if self.operation_last else 'entry'})" \
            if self.operation_id else ""
        return f"{self.method_name} on {self.resource} by {self.principal or 'unknown principal'}{where}"


def screen(event: AuditEvent, *, max_age: timedelta, self_principals: Collection[str],
           now: datetime | None = None) -> None:
    """Raise for events every guardrail acknowledges without action; return for the rest.

    - the audited call failed (nothing changed): ``NotOurEvent``
    - egress-guard's own service account made the change (no self-trigger loops): ``NotOurEvent``
    - older than ``max_age`` (a retry storm must end): ``StaleEvent``
    """
    if not event.succeeded:
        raise NotOurEvent(f"{event.method_name} on {event.resource} failed with status {event.status_code} "
                          f"({event.status_message or 'no message'}); nothing changed, nothing to do")
    own = {p.strip().lower() for p in self_principals if p.strip()}
    if event.principal and event.principal.lower() in own:
        raise NotOurEvent(f"{event.method_name} on {event.resource} was made by egress-guard itself "
                          f"({event.principal}); ignored to avoid a loop")
    age = event.age(now)
    if age > max_age:
        raise StaleEvent(f"{event.method_name} on {event.resource} happened {int(age.total_seconds())}s ago, "
                         f"more than the {int(max_age.total_seconds())}s limit (event_max_age_seconds); "
                         "acknowledged without action: run `egress-guard sweep` to reconcile")


# --------------------------------------------------------------------------- read-only bodies


def freeze(value: Any) -> Any:
    """A deep read-only copy of a JSON value: dicts become mappingproxies, lists become tuples. A
    mappingproxy is already frozen (only this function makes them): kept as it is, not copied again.
    Exact types first: a sweep freezes 70,000 rule bodies, and ``isinstance`` against the ABCs
    was a tenth of its time."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None or kind is MappingProxyType:
        return value
    if kind is dict:
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if kind is list or kind is tuple:
        return tuple(map(freeze, value))
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(map(freeze, value))
    return value


def thaw(value: Any) -> Any:
    """The JSON-ready copy of a frozen value (for findings' ``before``/``after`` and logs), also of
    a plain value holding frozen parts (a planned body sharing what was read)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [thaw(v) for v in value]
    return value


# --------------------------------------------------------------------------- parse_event


def parse_event(source: object) -> AuditEvent:
    """Parse any accepted delivery form into an ``AuditEvent``; raise only ``PermanentError``."""
    try:
        entry, delivery = _unwrap(source)
        return _parse_log_entry(entry, delivery)
    except RecursionError:
        raise MalformedEvent("the event is nested too deeply to be a LogEntry") from None


def _unwrap(source: object) -> tuple[Mapping[str, Any], Delivery]:
    if hasattr(source, "get_attributes") and hasattr(source, "get_data"):
        try:
            attributes = dict(source.get_attributes())  # type: ignore[attr-defined]
            data = source.get_data()  # type: ignore[attr-defined]
        except Exception as exc:  # a CloudEvent-like object that is not one
            raise MalformedEvent(f"could not read the CloudEvent: {type(exc).__name__}") from None
        return _from_cloudevent(attributes, data)
    if isinstance(source, (bytes, bytearray, str)):
        source = _json_object(source, "the event")
    if not isinstance(source, Mapping):
        raise MalformedEvent(f"expected a CloudEvent, a LogEntry or their JSON, got {type(source).__name__}")
    if "protoPayload" in source:
        return source, Delivery.LOG_ENTRY
    if "specversion" in source or ("type" in source and ("data" in source or "data_base64" in source)):
        attributes = {k: v for k, v in source.items() if k not in ("data", "data_base64")}
        if "data_base64" in source:
            data: object = _b64decode(source["data_base64"], "data_base64")
        else:
            data = source.get("data")
        return _from_cloudevent(attributes, data)
    if "message" in source:
        # The Pub/Sub push body (MessagePublishedData) without a CloudEvent envelope.
        return _from_pubsub_data(source), Delivery.PUBSUB_MESSAGE
    if "jsonPayload" in source or "textPayload" in source:
        raise NotOurEvent("a LogEntry without protoPayload is not a Cloud Audit Logs entry")
    raise MalformedEvent("not a CloudEvent, a Pub/Sub message or a LogEntry: "
                         f"top-level keys are {sorted(map(str, source))[:10]}")


def _from_cloudevent(attributes: Mapping[str, Any], data: object) -> tuple[Mapping[str, Any], Delivery]:
    event_type = attributes.get("type")
    if event_type == AUDIT_LOG_EVENT_TYPE:
        entry = _json_object(data, "CloudEvent data") if isinstance(data, (bytes, bytearray, str)) else data
        if not isinstance(entry, Mapping):
            raise MalformedEvent(f"the audit-log CloudEvent's data is not a LogEntry object "
                                 f"(got {type(entry).__name__})", field="data")
        return entry, Delivery.AUDIT_LOG_EVENT
    if event_type == PUBSUB_EVENT_TYPE:
        body = _json_object(data, "CloudEvent data") if isinstance(data, (bytes, bytearray, str)) else data
        return _from_pubsub_data(body), Delivery.PUBSUB_MESSAGE
    if not isinstance(event_type, str):
        raise MalformedEvent("the CloudEvent has no 'type' attribute", field="type")
    raise NotOurEvent(f"CloudEvent type {event_type!r} is not one egress-guard handles "
                      f"(expected {AUDIT_LOG_EVENT_TYPE} or {PUBSUB_EVENT_TYPE})")


def _from_pubsub_data(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise MalformedEvent(f"the Pub/Sub event's data is not an object (got {type(body).__name__})", field="data")
    message = body.get("message")
    if not isinstance(message, Mapping):
        raise MalformedEvent("the Pub/Sub event has no 'message' object", field="data.message")
    payload = message.get("data")
    if payload is None or payload == "":
        raise MalformedEvent("the Pub/Sub message has no data (expected base64 of a LogEntry)",
                             field="data.message.data")
    raw = _b64decode(payload, "data.message.data")
    return _json_object(raw, "the Pub/Sub message data")


def _b64decode(value: object, field: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", errors="replace")
    if not isinstance(value, str):
        raise MalformedEvent(f"{field} is not a base64 string (got {type(value).__name__})", field=field)
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # Pub/Sub push bodies are standard base64, but be lenient about the URL-safe alphabet
        return base64.urlsafe_b64decode(value.strip())
    except (binascii.Error, ValueError):
        raise MalformedEvent(f"{field} is not valid base64", field=field) from None


def _json_object(raw: object, what: str) -> Mapping[str, Any]:
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        value = json.loads(text)  # type: ignore[arg-type]
    except UnicodeDecodeError:
        raise MalformedEvent(f"{what} is not UTF-8 text") from None
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{what} is JSON but not an object (got {type(value).__name__})")
    return value


# --------------------------------------------------------------------------- the LogEntry

_LOG_NAME_RE = re.compile(r"projects/([^/]+)/logs/([^/]+)")
_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})")


def _get(obj: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise MalformedEvent(f"{path} is missing", field=path)
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        if kind is Mapping or kind == (Mapping,):
            name = "object"
        raise MalformedEvent(f"{path} should be {name}, got {type(value).__name__}", field=path)
    return value


def _mapping(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = _get(obj, key, path, Mapping)
    return value if value is not None else {}


def _string(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str:
    value = _get(obj, key, path, str, required=required)
    if required and not value:
        raise MalformedEvent(f"{path} is empty", field=path)
    return value or ""


def _flag(obj: Mapping[str, Any], key: str, path: str) -> bool:
    return bool(_get(obj, key, path, bool))


def _int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 12:
        return int(value)  # proto3 JSON may render numbers as strings
    return _get(obj, key, path, int)


def parse_time(value: object, field: str = "timestamp") -> datetime:
    """RFC 3339 (nanoseconds allowed) -> aware UTC datetime, or ``MalformedEvent``."""
    if not isinstance(value, str):
        raise MalformedEvent(f"{field} should be an RFC 3339 timestamp string, got {type(value).__name__}", field=field)
    match = _TIME_RE.fullmatch(value.strip())
    if not match:
        raise MalformedEvent(f"{field} {value[:40]!r} is not an RFC 3339 timestamp", field=field)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0").ljust(6, "0")[:6])
    try:
        tz = timezone.utc if zone in ("Z", "z") else timezone(
            (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tz)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise MalformedEvent(f"{field} {value[:40]!r} is not a valid time: {exc}", field=field) from None


def _format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_log_entry(entry: Mapping[str, Any], delivery: Delivery) -> AuditEvent:
    payload = entry.get("protoPayload")
    if payload is None:
        raise NotOurEvent("the LogEntry has no protoPayload: not a Cloud Audit Logs entry")
    if not isinstance(payload, Mapping):
        raise MalformedEvent("protoPayload should be an object", field="protoPayload")
    payload_type = payload.get("@type")
    if payload_type is not None and payload_type != AUDIT_LOG_PAYLOAD_TYPE:
        raise NotOurEvent(f"protoPayload is a {payload_type!r}, not an AuditLog")

    # Which method: decided first, so that other services' entries get the plain "not ours" reason.
    service_name = _string(payload, "serviceName", "protoPayload.serviceName", required=True)
    method_name = _string(payload, "methodName", "protoPayload.methodName", required=True)
    spec = METHODS.get(method_name)
    if spec is None:
        raise NotOurEvent(f"{method_name} ({service_name}) is not a method egress-guard handles")
    if spec.service_name != service_name:
        raise MalformedEvent(f"protoPayload.serviceName is {service_name!r} but {method_name} belongs to "
                             f"{spec.service_name}", field="protoPayload.serviceName")

    log_name = _string(entry, "logName", "logName", required=True)
    log_match = _LOG_NAME_RE.fullmatch(log_name)
    if not log_match:
        raise MalformedEvent(f"logName {log_name[:120]!r} is not projects/PROJECT/logs/LOG_ID", field="logName")
    project = validate_project(log_match.group(1), "logName (project)")

    insert_id = _string(entry, "insertId", "insertId", required=True)
    timestamp = parse_time(entry.get("timestamp"), "timestamp")
    severity = _string(entry, "severity", "severity")
    resource_block = _mapping(entry, "resource", "resource")
    resource_type = _string(resource_block, "type", "resource.type")
    resource_labels = _string_map(_mapping(resource_block, "labels", "resource.labels"), "resource.labels")

    operation = _mapping(entry, "operation", "operation")
    operation_id = _string(operation, "id", "operation.id")
    operation_first = _flag(operation, "first", "operation.first")
    operation_last = _flag(operation, "last", "operation.last")

    split = _mapping(entry, "split", "split")
    split_index = _int(split, "index", "split.index") if split else None
    split_total = _int(split, "totalSplits", "split.totalSplits") if split else None

    auth = _mapping(payload, "authenticationInfo", "protoPayload.authenticationInfo")
    principal = _string(auth, "principalEmail", "protoPayload.authenticationInfo.principalEmail")
    if not principal:
        subject = _string(auth, "principalSubject", "protoPayload.authenticationInfo.principalSubject")
        principal = subject.split(":", 1)[1] if subject.startswith(("serviceAccount:", "user:")) else subject

    status = _mapping(payload, "status", "protoPayload.status")
    status_code = _int(status, "code", "protoPayload.status.code") or 0
    status_message = _string(status, "message", "protoPayload.status.message")

    request = _mapping(payload, "request", "protoPayload.request")
    response = _mapping(payload, "response", "protoPayload.response")
    resource_name = _string(payload, "resourceName", "protoPayload.resourceName", required=True)
    location_hint = _location_hint(payload, request, resource_labels)

    resource = _resource(spec, resource_name, request, project, location_hint)
    region = getattr(resource, "region", "") or ""

    return AuditEvent(
        delivery=delivery,
        spec=spec,
        service_name=service_name,
        method_name=method_name,
        log_name=log_name,
        project=project,
        region=region,
        resource=resource,
        resource_name=resource_name,
        principal=principal,
        status_code=status_code,
        status_message=status_message,
        operation_id=operation_id,
        operation_first=operation_first,
        operation_last=operation_last,
        insert_id=insert_id,
        timestamp=timestamp,
        severity=severity,
        resource_type=resource_type,
        resource_labels=MappingProxyType(dict(resource_labels)),
        request=freeze(request),
        response=freeze(response),
        split_index=split_index,
        split_total=split_total,
    )


def _string_map(value: Mapping[str, Any], path: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise MalformedEvent(f"{path}.{key} should be a string, got {type(item).__name__}", field=f"{path}.{key}")
        result[str(key)] = item
    return result


def _location_hint(payload: Mapping[str, Any], request: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """Where a Cloud Run v1 entry's resource lives (its resourceName has no region)."""
    for candidate in (labels.get("location"), request.get("region")):
        if isinstance(candidate, str) and candidate:
            return candidate
    locations = _mapping(payload, "resourceLocation", "protoPayload.resourceLocation").get("currentLocations")
    if isinstance(locations, list) and len(locations) == 1 and isinstance(locations[0], str):
        return locations[0]
    return None


def _resource(spec: MethodSpec, resource_name: str, request: Mapping[str, Any], project: str,
              location: str | None) -> ResourceName:
    field = "protoPayload.resourceName"
    if spec.kind is EventKind.CONNECTOR_CREATED:
        name = _child_of_parent(resource_name, request, "connectorId", "connectors")
        return _own_project(parse_connector(name, field=field), project)
    if spec.kind in (EventKind.RUN_SERVICE_WRITTEN, EventKind.RUN_JOB_WRITTEN):
        is_service = spec.kind is EventKind.RUN_SERVICE_WRITTEN
        collection, id_key, body_key = ("services", "serviceId", "service") if is_service else ("jobs", "jobId", "job")
        name = _child_of_parent(resource_name, request, id_key, collection)
        if spec.api is ApiVersion.RUN_V1 and re.fullmatch(r"namespaces/[^/]+", name):
            body = request.get(body_key)
            metadata = body.get("metadata") if isinstance(body, Mapping) else None
            child = metadata.get("name") if isinstance(metadata, Mapping) else None
            if isinstance(child, str) and "/" not in child:
                name = f"{name}/{collection}/{child}"
        if spec.api is ApiVersion.RUN_V1 and location is None:
            request_name = request.get("name")  # v1 requests carry projects/P/locations/R/services/S
            if isinstance(request_name, str):
                match = re.fullmatch(r"projects/[^/]+/locations/([^/]+)/.+", request_name)
                location = match.group(1) if match else None
        region = validate_region(location, "resource.labels.location") if location is not None else None
        parser = parse_run_service if is_service else parse_run_job
        return _own_project(parser(name, field=field, default_region=region), project)
    if spec.kind is EventKind.RUN_WORKER_POOL_WRITTEN:
        name = _child_of_parent(resource_name, request, "workerPoolId", "workerPools")
        return _own_project(parse_run_worker_pool(name, field=field), project)
    if spec.kind is EventKind.APP_ENGINE_VERSION_CREATED:
        return _own_project(parse_app_engine_version(resource_name, field=field), project)
    if spec.kind is EventKind.FUNCTION_WRITTEN:
        name = _child_of_parent(resource_name, request, "functionId", "functions")
        if spec.api is ApiVersion.FUNCTIONS_V1 and re.fullmatch(r"projects/[^/]+/locations/[^/]+", name):
            body = request.get("function")  # v1 names a new function in its body, not with an id
            child = body.get("name") if isinstance(body, Mapping) else None
            if isinstance(child, str) and child.startswith(f"{name}/functions/"):
                name = child
        return _own_project(parse_function(name, field=field), project)
    if spec.kind is EventKind.ROUTER_CHANGED:
        return _own_project(parse_router(resource_name, field=field), project)
    return _own_project(parse_firewall(resource_name, field=field), project)


def _child_of_parent(resource_name: str, request: Mapping[str, Any], id_key: str, collection: str) -> str:
    """``projects/P/locations/R`` + request[id_key] -> ``.../collection/ID``; otherwise unchanged."""
    if re.fullmatch(r"projects/[^/]+/locations/[^/]+", resource_name):
        child = request.get(id_key)
        if isinstance(child, str) and child:
            if "/" in child:
                raise InvalidName(f"protoPayload.request.{id_key}: {child[:80]!r} contains '/'",
                                  field=f"protoPayload.request.{id_key}")
            return f"{resource_name}/{collection}/{child}"
    return resource_name


def _own_project(resource: Any, project: str) -> Any:
    """Audit entries are written to the project that owns the resource: a number means ``project``."""
    if resource.project.isdigit():
        return replace(resource, project=project)
    return resource
