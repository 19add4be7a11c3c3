"""Cloud Run services, jobs and worker pools: one model, two views (v2 resources and v1 Knative objects).

Every service and job is stored once, as its v2 resource (Google's JSON) plus a sidecar of v1-only
details (``backends/run_knative.py`` converts). Writes through either API go through the same
steps: parse the request into v2 fields, check them as Cloud Run does (names, containers, the VPC
connector, system annotations), apply server defaults, then start reconciling: the resource is
visible at once with ``reconciling: true`` and a pending ``terminalCondition``, and becomes ready
when its operation completes after ``world.config.run_operation_delay_s`` — the v2 API hands that
operation to the caller, the v1 API answers synchronously and gcloud polls the resource's
conditions. Server-filled fields follow the REAL recordings (run-basicjob,
cloudruncomputeregionnetworkendpointgroup; reference/gcp-http-logs/NOTES.md §5).

Worker pools (v2 only, ``projects.locations.workerPools``; docs/gcp-facts.md §12.5) are kept like
services: a revision template at ``template`` (containers, ``vpcAccess``), revisions named
``NAME-00001-xyz``, an LRO whose metadata is the WorkerPool. Their server-filled fields follow the two
recorded GETs of real worker pools (run-runworkerpool-minimal/maximal, PROBABLY_REAL;
reference/gcp-http-logs/NOTES.md §1, §7): ``instanceSplits`` and ``instanceSplitStatuses`` all to the
latest revision, ``scaling.manualInstanceCount`` 1, the default service account and limits, a
``terminalCondition`` and no ``conditions`` list.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import time
import uuid
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from localcloud.backends import run_knative as kn
from localcloud.backends.vpcaccess import project_number
from localcloud.errors import ApiError
from localcloud.operations import Operation

SERVICE, JOB, WORKER_POOL = "SERVICE", "JOB", "WORKER_POOL"
KINDS = (SERVICE, JOB, WORKER_POOL)
# Kinds whose template is a revision template and whose writes make revisions.
REVISIONED = (SERVICE, WORKER_POOL)
RESOURCES = "run.resources"  # (kind, project, region, name) -> record (see _new_record)
OPERATIONS = "run.operations"  # operation name -> kind

TYPE_URL = {SERVICE: "type.googleapis.com/google.cloud.run.v2.Service",
            JOB: "type.googleapis.com/google.cloud.run.v2.Job",
            WORKER_POOL: "type.googleapis.com/google.cloud.run.v2.WorkerPool"}
EXECUTION_TYPE_URL = "type.googleapis.com/google.cloud.run.v2.Execution"
COLLECTION = {SERVICE: "services", JOB: "jobs", WORKER_POOL: "workerPools"}

# Cloud Run resource names: lowercase letters, digits and '-', starting with a letter, not ending
# with '-'. Services are capped at 49 characters (room for revision suffixes), jobs at 63.
# UNCONFIRMED: worker pools take the service rule (their revisions are named like a service's).
_NAME = {SERVICE: re.compile(r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?"), JOB: re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"),
         WORKER_POOL: re.compile(r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?")}
_MAX_NAME = {SERVICE: 49, JOB: 63, WORKER_POOL: 49}
_PROJECT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]|\d{6,19}")
_REGION = re.compile(r"[a-z]+(?:-[a-z]+)+[0-9]+")
_CONNECTOR_NAME = re.compile(r"[a-z][-a-z0-9]{0,23}[a-z0-9]")
_CONNECTOR_PATH = re.compile(r"projects/([^/]+)/locations/([^/]+)/connectors/([^/]+)")
_DURATION = re.compile(r"(\d+)(?:\.\d+)?s")

# Server defaults, as the REAL recordings show them.
DEFAULT_CPU, DEFAULT_MEMORY = "1000m", "512Mi"
DEFAULT_PORT = {"containerPort": 8080, "name": "http1"}
DEFAULT_SERVICE_TIMEOUT, DEFAULT_JOB_TIMEOUT = "300s", "600s"
DEFAULT_CONCURRENCY = 80
DEFAULT_MAX_RETRIES = 3
DEFAULT_SERVICE_SCALING = {"maxInstanceCount": 100}
# UNCONFIRMED: the revision-level default maximum when none is sent (the documented default
# maximum of instances is 100; the real GET only shows a template scaling that was sent).
DEFAULT_REVISION_MAX_INSTANCES = 100
# docs/gcp-facts.md §5: "If not provided, it defaults to PRIVATE_RANGES_ONLY".
DEFAULT_EGRESS = "PRIVATE_RANGES_ONLY"
MAX_TIMEOUT_S = {SERVICE: 3600, JOB: 168 * 3600, WORKER_POOL: 3600}
# A worker pool's defaults as the recorded minimal one shows them (run-runworkerpool-minimal: no split or
# scaling in its KCC config, and the GET has these).
DEFAULT_INSTANCE_SPLITS = [{"type": "INSTANCE_SPLIT_ALLOCATION_TYPE_LATEST", "percent": 100}]
DEFAULT_WORKER_POOL_SCALING = {"manualInstanceCount": 1}
DELETED_RETENTION = timedelta(days=30)  # expireTime = deleteTime + 30 days (run-basicjob)
# REAL (compute-cloudruncomputeregionnetworkendpointgroup): the first metadata of a service create
# operation has no latestCreatedRevision and no ingress although INGRESS_TRAFFIC_ALL was sent; the
# final poll and every GET have both. UNCONFIRMED for another ingress value: that one is kept.
CREATE_METADATA_OMITS = ("latestCreatedRevision",)
CREATE_METADATA_OMITTED_INGRESS = "INGRESS_TRAFFIC_ALL"

# *.a.run.app region codes (the real service in us-central1 answers on ...-uc.a.run.app).
REGION_CODES = {"us-central1": "uc", "us-east1": "ue", "us-east4": "uk", "us-west1": "uw", "europe-west1": "ew",
                "europe-west2": "nw", "europe-west3": "ey", "europe-west4": "ez", "asia-east1": "de",
                "asia-northeast1": "an", "australia-southeast1": "ts"}

REQUEST_LABEL = {("v2", SERVICE, "create"): "CreateServiceRequest.service",
                 ("v2", SERVICE, "update"): "UpdateServiceRequest.service",
                 ("v2", JOB, "create"): "CreateJobRequest.job", ("v2", JOB, "update"): "UpdateJobRequest.job",
                 ("v2", WORKER_POOL, "create"): "CreateWorkerPoolRequest.worker_pool",
                 ("v2", WORKER_POOL, "update"): "UpdateWorkerPoolRequest.worker_pool"}


def invalid(message: str) -> ApiError:
    return ApiError(400, message, status="INVALID_ARGUMENT", reason="badRequest")


def not_found(kind: str, project: str, region: str, name: str) -> ApiError:
    # The REAL 404 text (run-basicjob, and kind 'SERVICE' for services).
    return ApiError(404, f"Resource '{name}' of kind '{kind}' in region '{region}' in project '{project}' does not exist.",
                    status="NOT_FOUND", reason="notFound")


def already_exists(kind: str, project: str, region: str, name: str) -> ApiError:
    return ApiError(409, f"Resource '{name}' of kind '{kind}' in region '{region}' in project '{project}' already exists.",
                    status="ALREADY_EXISTS", reason="alreadyExists")


def conflict(message: str) -> ApiError:
    return ApiError(409, message, status="ABORTED", reason="conflict")


def check_location(project: str, region: str) -> None:
    if not _PROJECT.fullmatch(project):
        raise invalid(f"Invalid project '{project}'.")
    if not _REGION.fullmatch(region):
        raise invalid(f"Invalid location '{region}'.")


def check_name(kind: str, name: str | None, field: str) -> str:
    if not name:
        raise invalid(f"{field} must be set: the {kind.lower()} needs a name.")
    if len(name) > _MAX_NAME[kind] or not _NAME[kind].fullmatch(name):
        raise invalid(f"{field}: '{name}' is not a valid {kind.lower()} name. It must use only lowercase alphanumeric "
                      f"characters and dashes, cannot begin or end with a dash, and cannot be longer than "
                      f"{_MAX_NAME[kind]} characters.")
    return name


def resource_name(kind: str, project: str, region: str, name: str) -> str:
    return f"projects/{project}/locations/{region}/{COLLECTION[kind]}/{name}"


def default_service_account(project: str) -> str:
    return f"{project_number(project)}-compute@developer.gserviceaccount.com"


def service_urls(project: str, region: str, name: str) -> tuple[str, str]:
    """(deterministic URL, hashed uri) as Cloud Run assigns them."""
    digest = hashlib.sha256(f"{project}/{region}".encode()).hexdigest()
    letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in digest[:10])
    code = REGION_CODES.get(region) or "".join(part[0] for part in region.split("-"))[:2]
    return (f"https://{name}-{project_number(project)}.{region}.run.app", f"https://{name}-{letters}-{code}.a.run.app")


def _rfc3339(at: float) -> str:
    base = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{int((at % 1) * 1e6):06d}Z"


def _etag() -> str:
    # Real etags are quoted opaque strings ("\"CIy04sUG...\"").
    return '"' + secrets.token_urlsafe(48) + '"'


# ---- requests, parsed -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    kind: str
    project: str
    region: str
    name: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.project, self.region, self.name)

    @property
    def full_name(self) -> str:
        return resource_name(self.kind, self.project, self.region, self.name)


@dataclass(frozen=True)
class Write:
    """A create or update, after parsing: the v2 user fields and the v1 sidecar."""

    target: Target
    fields: dict[str, Any]
    sidecar: dict[str, Any]
    label: str  # where errors point: "CreateServiceRequest.service" (v2) or "" (v1)
    principal: str
    force_new_revision: bool = False
    # v2 ``updateMask``: with it, ``fields`` is the request body and only the paths it names change.
    update_mask: str | None = None


class RunBackend:
    """Services and jobs of every project and region. Registered as ``world.backends["run"]``."""

    def __init__(self, world, operations) -> None:
        self.world = world
        self.operations = operations

    # ---- reads ----------------------------------------------------------------------------------
    def record(self, target: Target) -> dict[str, Any]:
        with self.world.lock:
            found = self.world.table(RESOURCES).get(target.key)
            if found is None:
                raise not_found(target.kind, target.project, target.region, target.name)
            return copy.deepcopy(found)

    def find(self, target: Target) -> dict[str, Any] | None:
        with self.world.lock:
            found = self.world.table(RESOURCES).get(target.key)
            return copy.deepcopy(found) if found else None

    def records(self, kind: str, project: str, region: str | None) -> list[dict[str, Any]]:
        """Records of a project, one region or all ("-" or None), sorted by name."""
        with self.world.lock:
            found = [copy.deepcopy(r) for (k, p, reg, _), r in self.world.table(RESOURCES).items()
                     if k == kind and p == project and (region in (None, "-") or reg == region)]
        return sorted(found, key=lambda r: r["resource"]["name"])

    def project_with_number(self, number: str) -> str | None:
        """The project id behind a project number (v1 namespaces may be numbers), among known projects."""
        with self.world.lock:
            projects = {p for (_, p, _, _) in self.world.table(RESOURCES)}
        return next((p for p in sorted(projects) if project_number(p) == number), None)

    def regions_of(self, kind: str, project: str, name: str) -> list[str]:
        with self.world.lock:
            return sorted(reg for (k, p, reg, n) in self.world.table(RESOURCES) if (k, p, n) == (kind, project, name))

    # ---- writes ---------------------------------------------------------------------------------
    def create(self, write: Write, *, fail_with: ApiError | None, validate_only: bool = False) -> tuple[Operation | None, dict]:
        """Admit a new resource and start reconciling it. Returns (operation, record)."""
        t = write.target
        with self.world.lock:
            if t.key in self.world.table(RESOURCES):
                raise already_exists(t.kind, t.project, t.region, t.name)
            resource = self._admit(write, previous=None)
            record = {"resource": resource, "sidecar": write.sidecar, "revisions": [], "iam": None}
            if t.kind in REVISIONED:
                self._new_revision(record, write)
            if validate_only:
                return None, copy.deepcopy(record)
            self.world.table(RESOURCES)[t.key] = record
            op = self._reconcile_later(t, record, fail_with)
            if t.kind == SERVICE:
                metadata = op.body["metadata"]
                for key in CREATE_METADATA_OMITS:
                    metadata.pop(key, None)
                if metadata.get("ingress") == CREATE_METADATA_OMITTED_INGRESS:
                    metadata.pop("ingress")
            return op, copy.deepcopy(record)

    def update(self, write: Write, *, fail_with: ApiError | None, etag: str | None = None,
               resource_version: str | None = None, validate_only: bool = False) -> tuple[Operation | None, dict]:
        """Replace the user fields of an existing resource (new generation; new revision when the
        template changed) and start reconciling."""
        t = write.target
        with self.world.lock:
            record = self.world.table(RESOURCES).get(t.key)
            if record is None:
                raise not_found(t.kind, t.project, t.region, t.name)
            old = record["resource"]
            if write.update_mask:  # checked first, as the request's own shape
                fields = apply_update_mask(copy.deepcopy(old), write.fields, write.update_mask)
                write = dataclasses.replace(write, fields=fields, update_mask=None)
            if old.get("deleteTime"):
                raise ApiError(400, f"Resource '{t.name}' is being deleted.", status="FAILED_PRECONDITION",
                               reason="failedPrecondition")
            if etag and etag != old.get("etag"):
                raise conflict(f"Resource '{t.name}' has changed since it was read (etag mismatch); read it again.")
            if resource_version and resource_version != _resource_version(old):
                raise conflict(f"Resource '{t.name}' has changed since it was read (resourceVersion mismatch); "
                               "read it again.")
            resource = self._admit(write, previous=old)
            candidate = {**record, "resource": resource, "sidecar": write.sidecar}
            if t.kind in REVISIONED and (write.force_new_revision or _template_changed(record, candidate)):
                candidate = copy.deepcopy(candidate)
                self._new_revision(candidate, write)
            if validate_only:
                return None, copy.deepcopy(candidate)
            record.update(candidate)
            op = self._reconcile_later(t, record, fail_with)
            return op, copy.deepcopy(record)

    def delete(self, target: Target, principal: str, *, fail_with: ApiError | None,
               etag: str | None = None, validate_only: bool = False) -> tuple[Operation | None, dict]:
        t = target
        with self.world.lock:
            record = self.world.table(RESOURCES).get(t.key)
            if record is None:
                raise not_found(t.kind, t.project, t.region, t.name)
            resource = record["resource"]
            if etag and etag != resource.get("etag"):
                raise conflict(f"Resource '{t.name}' has changed since it was read (etag mismatch); read it again.")
            if resource.get("deleteTime"):
                raise ApiError(400, f"Resource '{t.name}' is already being deleted.", status="FAILED_PRECONDITION",
                               reason="failedPrecondition")
            if validate_only:
                return None, copy.deepcopy(record)
            now = time.time()
            resource.update(deleteTime=_rfc3339(now), expireTime=_rfc3339(now + DELETED_RETENTION.total_seconds()),
                            generation=str(int(resource["generation"]) + 1), etag=_etag(), reconciling=True,
                            lastModifier=principal)
            resource["terminalCondition"] = {**resource.get("terminalCondition", {}), "state": "CONDITION_PENDING"}
            holder: list[Operation] = []
            op = self._start_op(t, record, apply=lambda: self._finish_delete(t, holder), fail_with=fail_with)
            holder.append(op)
            if fail_with is not None:
                op.on_done.append(lambda _op: self._undo_delete(t))
            return op, copy.deepcopy(record)

    def run_job(self, target: Target, principal: str, *, fail_with: ApiError | None, etag: str | None = None,
                validate_only: bool = False) -> tuple[Operation | None, dict[str, Any]]:
        """Start an execution of a ready job. Nothing runs in localcloud: every task succeeds when the
        operation completes (``run_operation_delay_s``). Returns (operation, v2 Execution)."""
        t = target
        with self.world.lock:
            record = self.world.table(RESOURCES).get(t.key)
            if record is None or t.kind != JOB:
                raise not_found(JOB, t.project, t.region, t.name)
            job = record["resource"]
            if etag and etag != job.get("etag"):
                raise conflict(f"Resource '{t.name}' has changed since it was read (etag mismatch); read it again.")
            if job.get("deleteTime") or job.get("terminalCondition", {}).get("state") != "CONDITION_SUCCEEDED":
                raise ApiError(400, f"Job '{t.name}' is not ready to run (it is being deployed or deleted).",
                               status="FAILED_PRECONDITION", reason="failedPrecondition")
            execution = _new_execution(t, job, principal)
            if validate_only:
                return None, copy.deepcopy(execution)
            record.setdefault("executions", []).append(execution)
            job["executionCount"] = job.get("executionCount", 0) + 1
            job["latestCreatedExecution"] = {"name": execution["name"], "createTime": execution["createTime"],
                                             "completionStatus": "EXECUTION_RUNNING"}
            name = f"projects/{t.project}/locations/{t.region}/operations/{uuid.uuid4()}"
            self.world.table(OPERATIONS)[name] = JOB
            holder: list[Operation] = []
            op = self.operations.start_lro(name=name, metadata={"@type": EXECUTION_TYPE_URL, **execution},
                                           delay=self.world.config.run_operation_delay_s,
                                           apply=lambda: self._finish_execution(t, execution["name"], holder),
                                           fail_with=fail_with)
            holder.append(op)
            if fail_with is not None:
                op.on_done.append(lambda _op: self._fail_execution(t, execution["name"], fail_with))
            return op, copy.deepcopy(execution)

    def executions(self, target: Target) -> list[dict[str, Any]]:
        record = self.record(target)
        return sorted(record.get("executions", []), key=lambda e: e["createTime"], reverse=True)

    def _execution(self, t: Target, name: str) -> dict[str, Any] | None:
        record = self.world.table(RESOURCES).get(t.key)
        return next((e for e in (record or {}).get("executions", []) if e["name"] == name), None)

    def _finish_execution(self, t: Target, name: str, holder: list[Operation]) -> dict[str, Any]:
        execution = self._execution(t, name)
        if execution is None:
            raise ApiError(404, f"Execution '{name}' was deleted before it completed.", status="NOT_FOUND",
                           reason="notFound")
        now = _rfc3339(time.time())
        execution.pop("reconciling", None)
        execution.pop("runningCount", None)
        execution.update(completionTime=now, updateTime=now, succeededCount=execution["taskCount"],
                         observedGeneration=execution["generation"])
        execution["conditions"] = [{"type": kind, "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}
                                   for kind in ("Completed", "ResourcesAvailable", "Started")]
        self._note_completion(t, name, "EXECUTION_SUCCEEDED", now)
        if holder:
            holder[0].body["metadata"] = {"@type": EXECUTION_TYPE_URL, **copy.deepcopy(execution)}
        return {"@type": EXECUTION_TYPE_URL, **copy.deepcopy(execution)}

    def _fail_execution(self, t: Target, name: str, error: ApiError) -> None:
        with self.world.lock:
            execution = self._execution(t, name)
            if execution is None:
                return
            now = _rfc3339(time.time())
            execution.pop("reconciling", None)
            execution.pop("runningCount", None)
            execution.update(completionTime=now, failedCount=execution["taskCount"])
            execution["conditions"] = [{"type": "Completed", "state": "CONDITION_FAILED", "message": error.message,
                                        "lastTransitionTime": now}]
            self._note_completion(t, name, "EXECUTION_FAILED", now)

    def _note_completion(self, t: Target, name: str, status: str, when: str) -> None:
        record = self.world.table(RESOURCES).get(t.key)
        latest = (record or {}).get("resource", {}).get("latestCreatedExecution") or {}
        if latest.get("name") == name:
            latest.update(completionStatus=status, completionTime=when)

    def set_iam_policy(self, target: Target, policy: dict[str, Any]) -> dict[str, Any]:
        with self.world.lock:
            record = self.world.table(RESOURCES).get(target.key)
            if record is None:
                raise not_found(target.kind, target.project, target.region, target.name)
            record["iam"] = {**copy.deepcopy(policy), "etag": _iam_etag()}
            return copy.deepcopy(record["iam"])

    def iam_policy(self, target: Target) -> dict[str, Any]:
        record = self.record(target)
        return record["iam"] or {"version": 1, "etag": "ACAB"}

    # ---- operations -----------------------------------------------------------------------------
    def operation(self, name: str) -> Operation:
        return self.operations.owned(OPERATIONS, name)

    def operations_in(self, project: str, region: str) -> list[Operation]:
        return self.operations.owned_in(OPERATIONS, project, region)

    def forget_operation(self, name: str) -> None:
        """operations.delete: the client no longer wants the operation (its effect stays)."""
        self.operation(name)
        with self.world.lock:
            self.world.table(OPERATIONS).pop(name, None)

    # ---- the model ------------------------------------------------------------------------------
    def _admit(self, write: Write, previous: dict[str, Any] | None) -> dict[str, Any]:
        """Check the user fields, fill Google's defaults and the server fields (under the lock)."""
        t = write.target
        fields = copy.deepcopy(write.fields)
        for output_only in OUTPUT_ONLY_FIELDS:
            fields.pop(output_only, None)
        self._check(write, fields)
        if t.kind == SERVICE:
            _service_defaults(fields, t.project)
        elif t.kind == WORKER_POOL:
            _worker_pool_defaults(fields, t.project)
        else:
            _job_defaults(fields, t.project)
        now = time.time()
        resource = {
            **fields,
            "name": t.full_name,
            "uid": previous["uid"] if previous else str(uuid.uuid4()),
            "generation": str(int(previous["generation"]) + 1) if previous else "1",
            "createTime": previous["createTime"] if previous else _rfc3339(now),
            "updateTime": _rfc3339(now),
            "creator": previous["creator"] if previous else write.principal,
            "lastModifier": write.principal,
            "etag": _etag(),
            "reconciling": True,
            "terminalCondition": {**(previous or {}).get("terminalCondition", {}), "state": "CONDITION_PENDING"},
        }
        if previous and "observedGeneration" in previous:
            resource["observedGeneration"] = previous["observedGeneration"]
        if t.kind == SERVICE:
            resource["urls"] = [service_urls(t.project, t.region, t.name)[0]]
            for keep in ("uri", "urls", "conditions", "latestReadyRevision", "trafficStatuses", "latestCreatedRevision"):
                if previous and keep in previous:
                    resource[keep] = copy.deepcopy(previous[keep])
        elif t.kind == WORKER_POOL:
            for keep in ("latestReadyRevision", "instanceSplitStatuses", "latestCreatedRevision"):
                if previous and keep in previous:
                    resource[keep] = copy.deepcopy(previous[keep])
        else:
            resource["latestCreatedExecution"] = copy.deepcopy((previous or {}).get("latestCreatedExecution", {}))
            if previous and previous.get("executionCount"):
                resource["executionCount"] = previous["executionCount"]
        return resource

    def _check(self, write: Write, fields: dict[str, Any]) -> None:
        """Cloud Run's checks of the user fields; v2 errors locate the field ("Violation in ...")."""
        t, label = write.target, write.label

        def fail(path: str, v2_text: str, v1_text: str | None = None) -> ApiError:
            return invalid(f"Violation in {label}.{path}: {v2_text}" if label else (v1_text or v2_text))

        for scope, annotations in (("annotations", fields.get("annotations")),
                                   ("template.annotations", (fields.get("template") or {}).get("annotations"))):
            for key in annotations or {}:
                if kn.is_system_key(key):
                    raise fail(f"{scope}[{key}]", "system annotations are not supported in Cloud Run API v2.")
        template = fields.get("template")
        if not isinstance(template, dict):
            raise fail("template", "field is required.", f"spec.template is required for a {t.kind.lower()}.")
        task = template.get("template") if t.kind == JOB else template
        if not isinstance(task, dict):
            raise fail("template.template", "field is required.", "spec.template.spec.template is required for a job.")
        prefix = "template.template" if t.kind == JOB else "template"
        containers = task.get("containers") or []
        if not containers:
            raise fail(f"{prefix}.containers", f"a {t.kind.lower()} must have at least one container.")
        for index, container in enumerate(containers):
            if not container.get("image"):
                raise fail(f"{prefix}.containers[{index}].image", "field is required.",
                           f"Container {index} must specify an image.")
        timeout = task.get("timeout")
        if timeout is not None:
            m = _DURATION.fullmatch(str(timeout))
            if not m or not 0 < int(m.group(1)) <= MAX_TIMEOUT_S[t.kind]:
                raise fail(f"{prefix}.timeout", f"timeout must be between 1s and {MAX_TIMEOUT_S[t.kind]}s; got {timeout}.")
        scaling = template.get("scaling") or {}
        if t.kind == SERVICE and scaling.get("minInstanceCount", 0) > scaling.get("maxInstanceCount", 1 << 30):
            raise fail("template.scaling", "min_instance_count must not exceed max_instance_count.")
        vpc = task.get("vpcAccess")
        if vpc:
            self._check_vpc_access(t, vpc, lambda field, text: fail(f"{prefix}.vpc_access.{field}", text))

    def _check_vpc_access(self, t: Target, vpc: dict[str, Any], fail: Callable[[str, str], ApiError]) -> None:
        connector, interfaces = vpc.get("connector"), vpc.get("networkInterfaces")
        if connector and interfaces:
            # REAL text (google-cloud-node #4731).
            raise fail("connector", "one and only one of connector and network_interfaces must be set.")
        if interfaces and len(interfaces) != 1:
            raise fail("network_interfaces", "Currently only single network interface is supported.")
        if connector:
            vpc["connector"] = self._resolve_connector(t, connector, lambda text: fail("connector", text))
        if (connector or interfaces) and vpc.get("egress") in (None, "VPC_EGRESS_UNSPECIFIED"):
            vpc["egress"] = DEFAULT_EGRESS

    def _resolve_connector(self, t: Target, value: str, fail: Callable[[str], ApiError]) -> str:
        """A connector reference -> its full name; it must exist, READY, in the workload's region.

        A full name may name another project: Shared VPC puts the connector in the host project and
        Google documents ``--vpc-connector=projects/HOST_PROJECT_ID/locations/REGION/connectors/NAME``
        for services and jobs of a service project (docs/gcp-facts.md §12.1). The region must still be
        the workload's. A short name means the workload's own project."""
        m = _CONNECTOR_PATH.fullmatch(value)
        if m:
            project, region, name = m.groups()
            if project == project_number(t.project):
                project = t.project
            elif project.isdigit():  # a host project given by number: the project behind it, if known
                project = self._connector_project_with_number(project) or project
            if region != t.region:
                raise fail(f"VPC connector '{value}' is in region '{region}'; a connector must be in the same "
                           f"region as the {t.kind.lower()} ('{t.region}').")
        elif "/" not in value:
            project, name = t.project, value
        else:
            raise fail(f"Invalid VPC connector '{value}': expected a connector name or "
                       "projects/PROJECT/locations/REGION/connectors/CONNECTOR.")
        if not _CONNECTOR_NAME.fullmatch(name):
            raise fail(f"Invalid VPC connector name '{name}'.")
        vpcaccess = self.world.backends.get("vpcaccess")
        connector = vpcaccess.connector(project, t.region, name) if vpcaccess else None
        full = f"projects/{project}/locations/{t.region}/connectors/{name}"
        if connector is None:
            raise fail(f"VPC connector '{full}' does not exist in project '{project}' region '{t.region}', "
                       "or Cloud Run does not have permission to use it.")
        if connector.get("state") != "READY":
            raise fail(f"VPC connector '{full}' is not ready (state {connector.get('state')}).")
        vpcaccess.mark_connected(project, t.region, name, t.project)
        return value if m else full

    def _connector_project_with_number(self, number: str) -> str | None:
        vpcaccess = self.world.backends.get("vpcaccess")
        return vpcaccess.project_with_number(number) if vpcaccess else None

    def _new_revision(self, record: dict[str, Any], write: Write) -> None:
        t = write.target
        resource = record["resource"]
        template = resource["template"]
        index = len(record["revisions"]) + 1
        short = template.get("revision") or f"{t.name}-{index:05d}-{_revision_suffix()}"
        if not short.startswith(f"{t.name}-"):
            raise invalid(f"Revision name '{short}' must start with the {t.kind.lower().replace('_', ' ')} name "
                          "followed by '-'.")
        if any(r["name"] == short for r in record["revisions"]):
            raise conflict(f"Revision named '{short}' already exists.")
        record["revisions"].append({"name": short, "createTime": resource["updateTime"],
                                    "generation": resource["generation"], "template": copy.deepcopy(template),
                                    "sidecar": copy.deepcopy(record.get("sidecar") or {})})
        resource["latestCreatedRevision"] = f"{t.full_name}/revisions/{short}"

    def _reconcile_later(self, t: Target, record: dict[str, Any], fail_with: ApiError | None) -> Operation:
        generation = record["resource"]["generation"]
        holder: list[Operation] = []
        op = self._start_op(t, record, apply=lambda: self._finish_reconcile(t, generation, holder), fail_with=fail_with)
        holder.append(op)
        if fail_with is not None:
            op.on_done.append(lambda _op: self._fail_reconcile(t, generation, fail_with))
        return op

    def _start_op(self, t: Target, record: dict[str, Any], *, apply: Callable[[], dict[str, Any]],
                  fail_with: ApiError | None) -> Operation:
        name = f"projects/{t.project}/locations/{t.region}/operations/{uuid.uuid4()}"
        self.world.table(OPERATIONS)[name] = t.kind
        return self.operations.start_lro(name=name, metadata=operation_metadata(t.kind, record["resource"]),
                                         delay=self.world.config.run_operation_delay_s, apply=apply,
                                         fail_with=fail_with)

    def _finish_reconcile(self, t: Target, generation: str, holder: list[Operation]) -> dict[str, Any]:
        """The resource is ready (runs under the world lock when its operation completes)."""
        record = self.world.table(RESOURCES).get(t.key)
        if record is None:
            raise ApiError(404, f"Resource '{t.name}' was deleted before it became ready.", status="NOT_FOUND",
                           reason="notFound")
        resource = record["resource"]
        if resource["generation"] == generation and not resource.get("deleteTime"):
            _mark_ready(t, resource)
        if holder:
            holder[0].body["metadata"] = operation_metadata(t.kind, resource)
        return {"@type": TYPE_URL[t.kind], **copy.deepcopy(resource)}

    def _fail_reconcile(self, t: Target, generation: str, error: ApiError) -> None:
        with self.world.lock:
            record = self.world.table(RESOURCES).get(t.key)
            if record is None or record["resource"]["generation"] != generation:
                return
            resource = record["resource"]
            resource.pop("reconciling", None)
            resource["observedGeneration"] = generation
            resource["terminalCondition"] = {"type": "Ready", "state": "CONDITION_FAILED", "message": error.message,
                                             "lastTransitionTime": _rfc3339(time.time())}

    def _finish_delete(self, t: Target, holder: list[Operation]) -> dict[str, Any]:
        record = self.world.table(RESOURCES).pop(t.key, None)
        if record is None:
            raise not_found(t.kind, t.project, t.region, t.name)
        resource = record["resource"]
        resource.pop("reconciling", None)
        resource["observedGeneration"] = resource["generation"]
        resource["terminalCondition"] = {**resource.get("terminalCondition", {}), "type": "Ready",
                                         "state": "CONDITION_SUCCEEDED"}
        if holder:
            holder[0].body["metadata"] = operation_metadata(t.kind, resource)
        return {"@type": TYPE_URL[t.kind], **copy.deepcopy(resource)}

    def _undo_delete(self, t: Target) -> None:
        with self.world.lock:
            record = self.world.table(RESOURCES).get(t.key)
            if record is not None:
                for key in ("deleteTime", "expireTime", "reconciling"):
                    record["resource"].pop(key, None)

    def reset(self) -> None:
        """World.reset clears the tables; nothing else is kept here."""


# ---- pure helpers ---------------------------------------------------------------------------------
OUTPUT_ONLY_FIELDS = ("name", "uid", "generation", "createTime", "updateTime", "deleteTime", "expireTime", "creator",
                "lastModifier", "etag", "reconciling", "terminalCondition", "conditions", "observedGeneration",
                "latestCreatedRevision", "latestReadyRevision", "trafficStatuses", "uri", "urls", "satisfiesPzs",
                "latestCreatedExecution", "executionCount", "threatDetectionEnabled", "instanceSplitStatuses")


def operation_metadata(kind: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A Cloud Run LRO's metadata is the resource itself, without uid (REAL recordings)."""
    out = {"@type": TYPE_URL[kind], **copy.deepcopy(resource)}
    out.pop("uid", None)
    return out


def _service_defaults(fields: dict[str, Any], project: str) -> None:
    fields.setdefault("ingress", "INGRESS_TRAFFIC_ALL")
    if fields.get("ingress") == "INGRESS_TRAFFIC_UNSPECIFIED":
        fields["ingress"] = "INGRESS_TRAFFIC_ALL"
    _launch_stage_default(fields)
    fields.setdefault("scaling", dict(DEFAULT_SERVICE_SCALING))
    fields.setdefault("traffic", [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}])
    template = fields["template"]
    template.setdefault("maxInstanceRequestConcurrency", DEFAULT_CONCURRENCY)
    template.setdefault("serviceAccount", default_service_account(project))
    template.setdefault("timeout", DEFAULT_SERVICE_TIMEOUT)
    template.setdefault("scaling", {}).setdefault("maxInstanceCount", DEFAULT_REVISION_MAX_INSTANCES)
    for index, container in enumerate(template["containers"]):
        resources = container.setdefault("resources", {})
        resources.setdefault("cpuIdle", True)
        limits = resources.setdefault("limits", {})
        limits.setdefault("cpu", DEFAULT_CPU)
        limits.setdefault("memory", DEFAULT_MEMORY)
        if index == 0:  # the ingress container serves on 8080 and is probed there
            container.setdefault("ports", [dict(DEFAULT_PORT)])
            port = container["ports"][0].get("containerPort", 8080) if container["ports"] else 8080
            container.setdefault("startupProbe", {"failureThreshold": 1, "periodSeconds": 240,
                                                  "tcpSocket": {"port": port}, "timeoutSeconds": 240})


def _worker_pool_defaults(fields: dict[str, Any], project: str) -> None:
    """A worker pool serves no requests: no ingress, ports, probes or concurrency (the recorded GETs
    have none of them)."""
    _launch_stage_default(fields)
    fields.setdefault("instanceSplits", copy.deepcopy(DEFAULT_INSTANCE_SPLITS))
    fields.setdefault("scaling", dict(DEFAULT_WORKER_POOL_SCALING))
    template = fields["template"]
    template.setdefault("serviceAccount", default_service_account(project))
    for container in template["containers"]:
        limits = container.setdefault("resources", {}).setdefault("limits", {})
        limits.setdefault("cpu", DEFAULT_CPU)
        limits.setdefault("memory", DEFAULT_MEMORY)


def _job_defaults(fields: dict[str, Any], project: str) -> None:
    _launch_stage_default(fields)
    execution = fields["template"]
    execution.setdefault("taskCount", 1)
    task = execution["template"]
    task.setdefault("maxRetries", DEFAULT_MAX_RETRIES)
    task.setdefault("serviceAccount", default_service_account(project))
    task.setdefault("timeout", DEFAULT_JOB_TIMEOUT)
    task.setdefault("executionEnvironment", "EXECUTION_ENVIRONMENT_GEN2")
    for container in task["containers"]:
        limits = container.setdefault("resources", {}).setdefault("limits", {})
        limits.setdefault("cpu", DEFAULT_CPU)
        limits.setdefault("memory", DEFAULT_MEMORY)


def _launch_stage_default(fields: dict[str, Any]) -> None:
    if fields.get("launchStage") in (None, "LAUNCH_STAGE_UNSPECIFIED"):
        fields["launchStage"] = "GA"


def _mark_ready(t: Target, resource: dict[str, Any]) -> None:
    now = _rfc3339(time.time())
    resource.pop("reconciling", None)
    resource["observedGeneration"] = resource["generation"]
    resource["terminalCondition"] = {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}
    if t.kind == SERVICE:
        resource["conditions"] = [
            {"type": "RoutesReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
            {"type": "ConfigurationsReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
        ]
        resource["latestReadyRevision"] = resource.get("latestCreatedRevision")
        deterministic, uri = service_urls(t.project, t.region, t.name)
        resource["uri"] = uri
        resource["urls"] = [deterministic, uri]
        resource["trafficStatuses"] = [{k: v for k, v in target.items()} for target in resource.get("traffic", [])]
    elif t.kind == WORKER_POOL:  # no conditions list: the recorded ready pools have only terminalCondition
        resource["latestReadyRevision"] = resource.get("latestCreatedRevision")
        resource["instanceSplitStatuses"] = [dict(split) for split in resource.get("instanceSplits", [])]


def _template_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    before = (old["resource"].get("template"), (old.get("sidecar") or {}).get("template_labels"),
              (old.get("sidecar") or {}).get("template_annotations"))
    after = (new["resource"].get("template"), (new.get("sidecar") or {}).get("template_labels"),
             (new.get("sidecar") or {}).get("template_annotations"))
    return json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True)


def _new_execution(t: Target, job: dict[str, Any], principal: str) -> dict[str, Any]:
    """A v2 Execution of ``job`` as it starts (its name: job name + 5 random characters)."""
    now = _rfc3339(time.time())
    execution_template = job.get("template") or {}
    short = f"{t.name[:57]}-{''.join(secrets.choice('abcdefghijklmnopqrstuvwxyz0123456789') for _ in range(5))}"
    out = {
        "name": f"{t.full_name}/executions/{short}", "uid": str(uuid.uuid4()), "generation": "1",
        "createTime": now, "startTime": now, "updateTime": now, "creator": principal,
        "job": t.name, "launchStage": job.get("launchStage", "GA"),
        "taskCount": execution_template.get("taskCount", 1),
        "template": copy.deepcopy(execution_template.get("template") or {}), "reconciling": True,
        "conditions": [{"type": "Started", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
                       {"type": "ResourcesAvailable", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
                       {"type": "Completed", "state": "CONDITION_PENDING", "lastTransitionTime": now}],
        "runningCount": execution_template.get("taskCount", 1), "etag": _etag(),
    }
    if execution_template.get("parallelism"):
        out["parallelism"] = execution_template["parallelism"]
    return out


def _revision_suffix() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3))


def _resource_version(resource: dict[str, Any]) -> str:
    return resource.get("etag", "").strip('"')


def _iam_etag() -> str:
    return secrets.token_urlsafe(6).replace("-", "A").replace("_", "B")[:8]


# ---- field masks (v2 update) ---------------------------------------------------------------------
def apply_update_mask(existing: dict[str, Any], body: dict[str, Any], mask: str | None) -> dict[str, Any]:
    """The user fields after an update: the whole body, or with ``updateMask`` only the named paths."""
    if not mask:
        return body
    fields = {k: v for k, v in existing.items() if k not in OUTPUT_ONLY_FIELDS}
    for path in filter(None, (p.strip() for p in mask.split(","))):
        parts = [camel(p) for p in path.split(".")]
        source: Any = body
        for part in parts:
            source = source.get(part) if isinstance(source, dict) else None
        holder = fields
        for part in parts[:-1]:
            holder = holder.setdefault(part, {})
            if not isinstance(holder, dict):
                raise invalid(f"update_mask path '{path}' does not name a message field.")
        if source is None:
            holder.pop(parts[-1], None)
        else:
            holder[parts[-1]] = source
    return fields


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)
