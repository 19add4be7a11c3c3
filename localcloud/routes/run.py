"""Cloud Run URL routes: the v2 API and the v1 Knative-style API gcloud uses, over one backend.

URL templates from the discovery documents (``run.v2.json``, ``run.v1.json``) under the ``/run``
prefix localcloud serves the API at. ``gcloud run`` talks to a regional host
(``REGION-run.localcloud:PORT``, reached through localcloud acting as its HTTP proxy): the v1
namespaces API takes the region from that host, else from the ``cloud.googleapis.com/location``
label of the body, else (reads) from the one region holding a resource of that name.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from localcloud.auditlog.calls import origin_of_call
from localcloud.auditlog.methods import RUN_WORKER_POOL_RESOURCE_TYPE
from localcloud.backends import run_knative as kn
from localcloud.backends.run import (
    JOB,
    REQUEST_LABEL,
    EXECUTION_TYPE_URL,
    SERVICE,
    TYPE_URL,
    WORKER_POOL,
    RunBackend,
    Target,
    Write,
    check_location,
    check_name,
    invalid,
    not_found,
)
from localcloud.backends.vpcaccess import project_number
from localcloud.errors import ApiError
from localcloud.routes.vpcaccess import LOCATIONS, paginate
from localcloud.routing import AuditInfo, Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services

SERVICE_NAME = "run.googleapis.com"
# gcloud prefixes the endpoint's host with the region: REGION-run.localcloud, REGION-127.0.0.1 ...
_REGIONAL_HOST = re.compile(r"([a-z]+(?:-[a-z]+)+[0-9]+)-")
MAX_WAIT_S = 60.0  # operations.wait: how long one call may block
V2_PREFIX = "/run/v2/projects/{project}/locations/{location}"
V1_SERVICES = "/run/apis/serving.knative.dev/v1/namespaces/{namespace}"
V1_JOBS = "/run/apis/run.googleapis.com/v1/namespaces/{namespace}"
V1_PROJECTS = "/run/v1/projects/{project}/locations"
_SINGULAR = {SERVICE: "Service", JOB: "Job", WORKER_POOL: "WorkerPool"}
_PLURAL = {SERVICE: "Services", JOB: "Jobs", WORKER_POOL: "WorkerPools"}
# The v2 URL's resource parameter, the create call's id parameter and the list field, per kind.
_PARAM = {SERVICE: "service", JOB: "job", WORKER_POOL: "workerPool"}
_ID_PARAM = {SERVICE: "serviceId", JOB: "jobId", WORKER_POOL: "workerPoolId"}
_LIST_FIELD = {SERVICE: "services", JOB: "jobs", WORKER_POOL: "workerPools"}


def routes(app: "Services") -> list[Route]:
    backend = app.run
    return [*_v2_routes(app, backend), *_v1_routes(app, backend)]


# ---- audit ------------------------------------------------------------------------------------------
def audit_info(kind: str, version: str, verb: str, target: Target, op=None, call: Call | None = None) -> AuditInfo:
    """What the audit writer records (docs/gcp-facts.md §3.1/§3.2: v1 names ``namespaces/P/services/N``)."""
    rpc = {"create": "Create", "update": "Replace" if version == "v1" else "Update", "delete": "Delete",
           "run": "Run"}[verb]
    if version == "v1":
        name = f"namespaces/{target.project}/{'services' if kind == SERVICE else 'jobs'}/{target.name}"
    else:
        name = target.full_name
    if kind == SERVICE:
        resource_type = "cloud_run_revision"
        labels = {"configuration_name": "", "location": target.region, "project_id": target.project,
                  "revision_name": "", "service_name": target.name}
    elif kind == WORKER_POOL:  # UNCONFIRMED type and labels (docs/gcp-facts.md §12.5)
        resource_type = RUN_WORKER_POOL_RESOURCE_TYPE
        labels = {"location": target.region, "project_id": target.project, "worker_pool_name": target.name}
    else:
        resource_type = "cloud_run_job"  # UNCONFIRMED for audit entries (docs/gcp-facts.md §3.2)
        labels = {"job_name": target.name, "location": target.region, "project_id": target.project}
    info = AuditInfo(service_name=SERVICE_NAME,
                     method_name=f"google.cloud.run.{version}.{_PLURAL[kind]}.{rpc}{_SINGULAR[kind]}",
                     resource_name=name, resource_type=resource_type, resource_labels=labels, operation=op)
    if op is not None:
        op.audit, op.origin = info, origin_of_call(call, info)
    return info


# ---- v2 -----------------------------------------------------------------------------------------------
def _v2_routes(app: "Services", backend: RunBackend) -> list[Route]:
    def fail_with(call: Call):
        return app.faults.operation_fails(call.method_id, call.principal)

    def target(call: Call, kind: str, name: str | None = None) -> Target:
        p, r = call.params["project"], call.params["location"]
        check_location(p, r)
        key = _PARAM[kind]
        return Target(kind, p, r, check_name(kind, name if name is not None else call.params[key], _snake(key)))

    def create(kind: str) -> Callable[[Call], Result]:
        id_param = _ID_PARAM[kind]

        def handler(call: Call) -> Result:
            p, r = call.params["project"], call.params["location"]
            check_location(p, r)
            t = Target(kind, p, r, check_name(kind, call.query.get(id_param), _snake(id_param)))
            body = dict(call.body or {})
            _check_body_name(body, t, REQUEST_LABEL[("v2", kind, "create")])
            write = Write(t, body, {}, REQUEST_LABEL[("v2", kind, "create")], call.principal)
            op, record = backend.create(write, fail_with=fail_with(call), validate_only=_flag(call, "validateOnly"))
            if op is None:
                return Result(_validated(t, record))
            return Result(op.snapshot(), audit=audit_info(kind, "v2", "create", t, op, call))

        return handler

    def update(kind: str) -> Callable[[Call], Result]:
        def handler(call: Call) -> Result:
            t = target(call, kind)
            body = dict(call.body or {})
            label = REQUEST_LABEL[("v2", kind, "update")]
            _check_body_name(body, t, label)
            existing = backend.find(t)
            if existing is None:
                if not _flag(call, "allowMissing"):
                    raise not_found(kind, t.project, t.region, t.name)
                write = Write(t, body, {}, label, call.principal)
                op, record = backend.create(write, fail_with=fail_with(call), validate_only=_flag(call, "validateOnly"))
                verb = "create"
            else:
                write = Write(t, body, existing.get("sidecar") or {}, label, call.principal,
                              force_new_revision=_flag(call, "forceNewRevision"),
                              update_mask=call.query.get("updateMask"))
                op, record = backend.update(write, fail_with=fail_with(call), etag=body.get("etag"),
                                            validate_only=_flag(call, "validateOnly"))
                verb = "update"
            if op is None:
                return Result(_validated(t, record))
            return Result(op.snapshot(), audit=audit_info(kind, "v2", verb, t, op, call))

        return handler

    def delete(kind: str) -> Callable[[Call], Result]:
        def handler(call: Call) -> Result:
            t = target(call, kind)
            op, record = backend.delete(t, call.principal, fail_with=fail_with(call), etag=call.query.get("etag"),
                                        validate_only=_flag(call, "validateOnly"))
            if op is None:
                return Result(_validated(t, record))
            return Result(op.snapshot(), audit=audit_info(kind, "v2", "delete", t, op, call))

        return handler

    def get(kind: str) -> Callable[[Call], Result]:
        def handler(call: Call) -> Result:
            return Result(backend.record(target(call, kind))["resource"])

        return handler

    def list_(kind: str) -> Callable[[Call], Result]:
        field = _LIST_FIELD[kind]

        def handler(call: Call) -> Result:
            p, r = call.params["project"], call.params["location"]
            if r != "-":
                check_location(p, r)
            items = [rec["resource"] for rec in backend.records(kind, p, r)]
            page, token = paginate(items, call.query)
            return Result({field: page, **({"nextPageToken": token} if token else {})})

        return handler

    def run_job(call: Call) -> Result:
        t = target(call, JOB)
        body = call.body or {}
        op, execution = backend.run_job(t, call.principal, fail_with=fail_with(call), etag=body.get("etag"),
                                        validate_only=bool(body.get("validateOnly")))
        if op is None:
            return Result({"name": f"projects/{t.project}/locations/{t.region}/operations/validate-only", "done": True,
                           "response": {"@type": EXECUTION_TYPE_URL, **execution}})
        return Result(op.snapshot(), audit=audit_info(JOB, "v2", "run", t, op, call))

    def list_executions(call: Call) -> Result:
        items = backend.executions(target(call, JOB))
        page, token = paginate(items, call.query)
        return Result({"executions": page, **({"nextPageToken": token} if token else {})})

    def get_execution(call: Call) -> Result:
        t = target(call, JOB)
        for execution in backend.executions(t):
            if execution["name"].rsplit("/", 1)[1] == call.params["execution"]:
                return Result(execution)
        raise ApiError(404, f"Resource '{call.params['execution']}' of kind 'EXECUTION' in region '{t.region}' in "
                            f"project '{t.project}' does not exist.", status="NOT_FOUND", reason="notFound")

    def op_name(call: Call) -> str:
        check_location(call.params["project"], call.params["location"])
        return f"projects/{call.params['project']}/locations/{call.params['location']}/operations/{call.params['operation']}"

    def get_operation(call: Call) -> Result:
        return Result(backend.operation(op_name(call)).snapshot())

    def list_operations(call: Call) -> Result:
        check_location(call.params["project"], call.params["location"])
        ops = sorted((op.snapshot() for op in backend.operations_in(call.params["project"], call.params["location"])),
                     key=lambda o: o["name"])
        page, token = paginate(ops, call.query)
        return Result({"operations": page, **({"nextPageToken": token} if token else {})})

    def wait_operation(call: Call) -> Result:
        op = backend.operation(op_name(call))
        timeout = _duration((call.body or {}).get("timeout"), MAX_WAIT_S)
        app.operations.wait(op, min(timeout, MAX_WAIT_S))
        return Result(op.snapshot())

    def delete_operation(call: Call) -> Result:
        backend.forget_operation(op_name(call))
        return Result({})

    out: list[Route] = []
    for kind, coll, param in ((SERVICE, "services", "service"), (JOB, "jobs", "job"),
                              (WORKER_POOL, "workerPools", "workerPool")):
        m = f"run.projects.locations.{coll}"
        base = f"{V2_PREFIX}/{coll}"
        out += [
            Route("POST", base, "run.v2", f"{m}.create", create(kind), mutating=True),
            Route("GET", base, "run.v2", f"{m}.list", list_(kind)),
            Route("GET", f"{base}/{{{param}}}", "run.v2", f"{m}.get", get(kind)),
            Route("PATCH", f"{base}/{{{param}}}", "run.v2", f"{m}.patch", update(kind), mutating=True),
            Route("DELETE", f"{base}/{{{param}}}", "run.v2", f"{m}.delete", delete(kind), mutating=True),
        ]
    jobs = f"{V2_PREFIX}/jobs/{{job}}"
    out += [
        Route("POST", f"{jobs}:run", "run.v2", "run.projects.locations.jobs.run", run_job, mutating=True),
        Route("GET", f"{jobs}/executions", "run.v2", "run.projects.locations.jobs.executions.list", list_executions),
        Route("GET", f"{jobs}/executions/{{execution}}", "run.v2", "run.projects.locations.jobs.executions.get",
              get_execution),
    ]
    ops = f"{V2_PREFIX}/operations"
    m = "run.projects.locations.operations"
    out += [
        Route("POST", f"{ops}/{{operation}}:wait", "run.v2", f"{m}.wait", wait_operation),
        Route("GET", f"{ops}/{{operation}}", "run.v2", f"{m}.get", get_operation),
        Route("DELETE", f"{ops}/{{operation}}", "run.v2", f"{m}.delete", delete_operation),
        Route("GET", ops, "run.v2", f"{m}.list", list_operations),
    ]
    return out


def _check_body_name(body: dict[str, Any], t: Target, label: str) -> None:
    name = body.get("name")
    if name and name not in (t.full_name, t.name):
        raise invalid(f"Violation in {label}.name: name must be empty or '{t.full_name}'; got '{name}'.")


def _validated(t: Target, record: dict[str, Any]) -> dict[str, Any]:
    """validateOnly: a done operation carrying what would have been written (nothing is kept)."""
    return {"name": f"projects/{t.project}/locations/{t.region}/operations/validate-only", "done": True,
            "response": {"@type": TYPE_URL[t.kind], **record["resource"]}}


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _flag(call: Call, name: str) -> bool:
    return str(call.query.get(name, "")).lower() == "true"


def _duration(value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(value))
    if not m:
        raise invalid(f"Invalid value at 'timeout' (type.googleapis.com/google.protobuf.Duration), {value!r}")
    return float(m.group(1))


# ---- v1 (Knative) ---------------------------------------------------------------------------------
def _v1_routes(app: "Services", backend: RunBackend) -> list[Route]:
    def fail_with(call: Call):
        return app.faults.operation_fails(call.method_id, call.principal)

    def project_of(call: Call) -> str:
        """The namespace (project id; a project number is mapped back when localcloud knows it)."""
        namespace = call.params.get("namespace") or call.params["project"]
        if namespace.isdigit():
            known = backend.project_with_number(namespace)
            if known is None:
                raise invalid(f"Namespace '{namespace}': use the project id; localcloud knows no project with this "
                              "number.")
            return known
        check_location(namespace, "europe-west2")
        return namespace

    def region_of(call: Call, kind: str, project: str, name: str | None, body: dict[str, Any] | None) -> str:
        if call.params.get("location"):
            check_location(project, call.params["location"])
            return call.params["location"]
        m = _REGIONAL_HOST.match(call.host or "")
        if m:
            return m.group(1)
        label = (((body or {}).get("metadata") or {}).get("labels") or {}).get(kn.LOCATION_LABEL)
        if label:
            check_location(project, label)
            return label
        if name:
            regions = backend.regions_of(kind, project, name)
            if len(regions) == 1:
                return regions[0]
        raise invalid("Could not determine the region: call the regional endpoint (REGION-run.googleapis.com) or "
                      f"set the {kn.LOCATION_LABEL} label.")

    def render(kind: str, record: dict[str, Any], t: Target) -> dict[str, Any]:
        renderer = kn.render_service_v1 if kind == SERVICE else kn.render_job_v1
        return renderer(record, project=t.project, project_number=project_number(t.project), region=t.region)

    def parse(kind: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        expected = "Service" if kind == SERVICE else "Job"
        if body.get("kind") not in (None, "", expected):
            raise invalid(f"kind must be '{expected}'; got '{body.get('kind')}'.")
        return kn.v1_service_to_v2(body) if kind == SERVICE else kn.v1_job_to_v2(body)

    def check_label(t: Target, body: dict[str, Any]) -> None:
        label = (((body.get("metadata") or {}).get("labels")) or {}).get(kn.LOCATION_LABEL)
        if label and label != t.region:
            raise invalid(f"The {kn.LOCATION_LABEL} label '{label}' does not match the region '{t.region}' "
                          "of the request.")

    def create(kind: str) -> Callable[[Call], Result]:
        def handler(call: Call) -> Result:
            body = call.body or {}
            project = project_of(call)
            name = check_name(kind, (body.get("metadata") or {}).get("name"), "metadata.name")
            t = Target(kind, project, region_of(call, kind, project, None, body), name)
            check_label(t, body)
            fields, sidecar = parse(kind, body)
            _, record = backend.create(Write(t, fields, sidecar, "", call.principal), fail_with=fail_with(call))
            return Result(render(kind, record, t), audit=audit_info(kind, "v1", "create", t))

        return handler

    def replace(kind: str) -> Callable[[Call], Result]:
        key = "service" if kind == SERVICE else "job"

        def handler(call: Call) -> Result:
            body = call.body or {}
            project = project_of(call)
            name = check_name(kind, call.params[key], key)
            body_name = (body.get("metadata") or {}).get("name")
            if body_name and body_name != name:
                raise invalid(f"metadata.name '{body_name}' does not match the name in the URL '{name}'.")
            t = Target(kind, project, region_of(call, kind, project, name, body), name)
            check_label(t, body)
            fields, sidecar = parse(kind, body)
            _, record = backend.update(Write(t, fields, sidecar, "", call.principal), fail_with=fail_with(call),
                                       resource_version=(body.get("metadata") or {}).get("resourceVersion"))
            return Result(render(kind, record, t), audit=audit_info(kind, "v1", "update", t))

        return handler

    def delete(kind: str) -> Callable[[Call], Result]:
        key = "service" if kind == SERVICE else "job"

        def handler(call: Call) -> Result:
            project = project_of(call)
            name = check_name(kind, call.params[key], key)
            t = Target(kind, project, region_of(call, kind, project, name, None), name)
            _, record = backend.delete(t, call.principal, fail_with=fail_with(call))
            group = "serving.knative.dev" if kind == SERVICE else "run.googleapis.com"
            status = {"status": "Success", "details": {"name": name, "group": group, "kind": f"{key}s",
                                                       "uid": record["resource"]["uid"]}}
            return Result(status, audit=audit_info(kind, "v1", "delete", t))

        return handler

    def get(kind: str) -> Callable[[Call], Result]:
        key = "service" if kind == SERVICE else "job"

        def handler(call: Call) -> Result:
            project = project_of(call)
            name = check_name(kind, call.params[key], key)
            t = Target(kind, project, region_of(call, kind, project, name, None), name)
            return Result(render(kind, backend.record(t), t))

        return handler

    def list_(kind: str) -> Callable[[Call], Result]:
        def handler(call: Call) -> Result:
            project = project_of(call)
            m = _REGIONAL_HOST.match(call.host or "")
            region = call.params.get("location") or (m.group(1) if m else None)
            items = []
            for record in backend.records(kind, project, region):
                t = Target(kind, project, record["resource"]["name"].split("/")[3], record["resource"]["name"].rsplit("/", 1)[1])
                items.append(render(kind, record, t))
            items = _label_selected(items, call.query.get("labelSelector"))
            api_version = "serving.knative.dev/v1" if kind == SERVICE else "run.googleapis.com/v1"
            return Result({"apiVersion": api_version, "kind": f"{_SINGULAR[kind]}List", "items": items,
                           "metadata": {}})

        return handler

    def revisions(call: Call) -> Result:
        project = project_of(call)
        m = _REGIONAL_HOST.match(call.host or "")
        region = call.params.get("location") or (m.group(1) if m else None)
        items = []
        for record in backend.records(SERVICE, project, region):
            rregion = record["resource"]["name"].split("/")[3]
            for revision in record["revisions"]:
                items.append(kn.render_revision_v1(record, revision, project=project,
                                                   project_number=project_number(project), region=rregion))
        items = _label_selected(items, call.query.get("labelSelector"))
        return Result({"apiVersion": "serving.knative.dev/v1", "kind": "RevisionList", "items": items, "metadata": {}})

    def revision(call: Call) -> Result:
        project = project_of(call)
        name = call.params["revision"]
        m = _REGIONAL_HOST.match(call.host or "")
        region = call.params.get("location") or (m.group(1) if m else None)
        for record in backend.records(SERVICE, project, region):
            for rev in record["revisions"]:
                if rev["name"] == name:
                    rregion = record["resource"]["name"].split("/")[3]
                    return Result(kn.render_revision_v1(record, rev, project=project,
                                                        project_number=project_number(project), region=rregion))
        raise ApiError(404, f"Resource '{name}' of kind 'REVISION' in region '{region or '-'}' in project "
                            f"'{project}' does not exist.", status="NOT_FOUND", reason="notFound")

    def run_job_v1(call: Call) -> Result:
        project = project_of(call)
        name = check_name(JOB, call.params["job"], "job")
        t = Target(JOB, project, region_of(call, JOB, project, name, None), name)
        _, execution = backend.run_job(t, call.principal, fail_with=fail_with(call))
        return Result(kn.render_execution_v1(execution, project_number=project_number(project), region=t.region),
                      audit=audit_info(JOB, "v1", "run", t))

    def v1_executions(call: Call) -> list[dict[str, Any]]:
        project = project_of(call)
        m = _REGIONAL_HOST.match(call.host or "")
        region = m.group(1) if m else None
        items = []
        for record in backend.records(JOB, project, region):
            rregion = record["resource"]["name"].split("/")[3]
            for execution in sorted(record.get("executions", []), key=lambda e: e["createTime"], reverse=True):
                items.append(kn.render_execution_v1(execution, project_number=project_number(project), region=rregion))
        return items

    def list_executions_v1(call: Call) -> Result:
        items = _label_selected(v1_executions(call), call.query.get("labelSelector"))
        return Result({"apiVersion": "run.googleapis.com/v1", "kind": "ExecutionList", "items": items, "metadata": {}})

    def get_execution_v1(call: Call) -> Result:
        for item in v1_executions(call):
            if item["metadata"]["name"] == call.params["execution"]:
                return Result(item)
        raise ApiError(404, f"Resource '{call.params['execution']}' of kind 'EXECUTION' in project "
                            f"'{project_of(call)}' does not exist.", status="NOT_FOUND", reason="notFound")

    def locations(call: Call) -> Result:
        p = call.params["project"]
        check_location(p, "europe-west2")
        items = [{"name": f"projects/{p}/locations/{r}", "locationId": r, "displayName": r,
                  "labels": {"cloud.googleapis.com/region": r}} for r in LOCATIONS]
        page, token = paginate(items, call.query)
        return Result({"locations": page, **({"nextPageToken": token} if token else {})})

    def iam_target(call: Call) -> Target:
        p, r = call.params["project"], call.params["location"]
        check_location(p, r)
        return Target(SERVICE, p, r, check_name(SERVICE, call.params["service"], "service"))

    def get_iam(call: Call) -> Result:
        return Result(backend.iam_policy(iam_target(call)))

    def set_iam(call: Call) -> Result:
        policy = (call.body or {}).get("policy") or {}
        return Result(backend.set_iam_policy(iam_target(call), policy))

    def test_iam(call: Call) -> Result:
        # The local caller owns the project: every permission asked about is held, as for the project
        # (routes/platform.py). `gcloud run deploy` without --[no-]allow-unauthenticated asks whether it
        # may set the service's IAM policy before it decides whether to offer making it public; it asks
        # before the service exists, so the name is checked, not looked up.
        iam_target(call)
        asked = (call.body or {}).get("permissions") or []
        return Result({"permissions": list(asked)} if asked else {})

    out: list[Route] = []
    for kind, base, coll, param in ((SERVICE, V1_SERVICES, "services", "service"),
                                    (JOB, V1_JOBS, "jobs", "job")):
        m = f"run.namespaces.{coll}"
        replace_id = "replaceService" if kind == SERVICE else "replaceJob"
        out += [
            Route("POST", f"{base}/{coll}", "run.v1", f"{m}.create", create(kind), mutating=True),
            Route("GET", f"{base}/{coll}", "run.v1", f"{m}.list", list_(kind)),
            Route("GET", f"{base}/{coll}/{{{param}}}", "run.v1", f"{m}.get", get(kind)),
            Route("PUT", f"{base}/{coll}/{{{param}}}", "run.v1", f"{m}.{replace_id}", replace(kind), mutating=True),
            Route("DELETE", f"{base}/{coll}/{{{param}}}", "run.v1", f"{m}.delete", delete(kind), mutating=True),
        ]
    m = "run.projects.locations.services"
    svc = f"{V1_PROJECTS}/{{location}}/services"
    out += [
        Route("GET", f"{V1_SERVICES}/revisions", "run.v1", "run.namespaces.revisions.list", revisions),
        Route("GET", f"{V1_SERVICES}/revisions/{{revision}}", "run.v1", "run.namespaces.revisions.get", revision),
        Route("GET", V1_PROJECTS, "run.v1", "run.projects.locations.list", locations),
        Route("POST", f"{V1_JOBS}/jobs/{{job}}:run", "run.v1", "run.namespaces.jobs.run", run_job_v1, mutating=True),
        Route("GET", f"{V1_JOBS}/executions", "run.v1", "run.namespaces.executions.list", list_executions_v1),
        Route("GET", f"{V1_JOBS}/executions/{{execution}}", "run.v1", "run.namespaces.executions.get",
              get_execution_v1),
        Route("GET", f"{svc}/{{service}}:getIamPolicy", "run.v1", f"{m}.getIamPolicy", get_iam),
        Route("POST", f"{svc}/{{service}}:setIamPolicy", "run.v1", f"{m}.setIamPolicy", set_iam),
        Route("POST", f"{svc}/{{service}}:testIamPermissions", "run.v1", f"{m}.testIamPermissions", test_iam),
        Route("POST", svc, "run.v1", f"{m}.create", create(SERVICE), mutating=True),
        Route("GET", svc, "run.v1", f"{m}.list", list_(SERVICE)),
        Route("GET", f"{svc}/{{service}}", "run.v1", f"{m}.get", get(SERVICE)),
        Route("PUT", f"{svc}/{{service}}", "run.v1", f"{m}.replaceService", replace(SERVICE), mutating=True),
        Route("DELETE", f"{svc}/{{service}}", "run.v1", f"{m}.delete", delete(SERVICE), mutating=True),
    ]
    return out


def _label_selected(items: list[dict[str, Any]], selector: str | None) -> list[dict[str, Any]]:
    """Kubernetes ``labelSelector`` equality terms (``a=b,c!=d``), the form gcloud sends."""
    if not selector:
        return items
    terms = []
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append((key.strip(), value.strip(), False))
        elif "=" in term:
            key, value = term.split("=", 1)
            terms.append((key.strip(), value.strip().lstrip("="), True))
        elif term:
            raise invalid(f"Unsupported labelSelector term '{term}'.")
    out = []
    for item in items:
        labels = (item.get("metadata") or {}).get("labels") or {}
        if all((labels.get(k) == v) == positive for k, v, positive in terms):
            out.append(item)
    return out
