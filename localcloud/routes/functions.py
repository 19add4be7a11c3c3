"""Cloud Functions v2 URL routes, under the ``/cloudfunctions`` prefix localcloud serves the API at.

URL templates from the discovery document (``cloudfunctions.v2.json``). Handlers only convert
between calls and the backend; the source upload URL that ``generateUploadUrl`` hands out is served
by ``server.py`` (it takes a zip, not JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localcloud.auditlog.calls import origin_of_call
from localcloud.backends.functions import (
    FunctionsBackend,
    RUNTIMES,
    check_location,
    function_name,
)
from localcloud.backends.functions_v1 import RUNTIMES as V1_RUNTIMES
from localcloud.routing import AuditInfo, Call, Result, Route
from localcloud.routes.vpcaccess import LOCATIONS, paginate

if TYPE_CHECKING:
    from localcloud.backends.functions_v1 import FunctionsV1Backend
    from localcloud.services import Services

SERVICE_NAME = "cloudfunctions.googleapis.com"
API = "cloudfunctions.v2"
# resource.type of Cloud Functions audit entries: cloud_function, labels function_name, region
# (a real 1st gen CreateFunction entry, docs/gcp-facts.md §12.2; the same type is assumed for 2nd gen).
AUDIT_RESOURCE_TYPE = "cloud_function"


def method_name(verb: str) -> str:
    return f"google.cloud.functions.v2.FunctionService.{verb}Function"


def function_routes(app: "Services", backend: "FunctionsBackend | FunctionsV1Backend", api: str,
                    method_name: Callable[[str], str], created_name: Callable[[Call], str],
                    start_create: Callable[[Call, Any], Any]) -> list[Route]:
    """The routes both generations share, written once: create, list, get, patch, delete, the source
    upload URL and the locations list, over ``backend`` (v1's or v2's, which answer the same calls),
    with the audit entry each write gets. What differs is passed in: ``api`` (the discovery document,
    whose version is the URL's), ``method_name`` (the audit methodName of a verb), ``created_name``
    (where a create names its function: v2's ``functionId`` query, v1's body) and ``start_create``."""
    base = f"/cloudfunctions/{api.rsplit('.', 1)[-1]}/projects/{{project}}/locations"
    functions = f"{base}/{{location}}/functions"

    def audit(call: Call, verb: str, op) -> AuditInfo:
        p, r = call.params["project"], call.params["location"]
        name = call.params.get("function") or created_name(call)
        info = AuditInfo(
            service_name=SERVICE_NAME, method_name=method_name(verb),
            resource_name=function_name(p, r, name), resource_type=AUDIT_RESOURCE_TYPE,
            resource_labels={"project_id": p, "region": r, "function_name": name}, operation=op)
        if op is not None:
            op.audit, op.origin = info, origin_of_call(call, info)
        return info

    def create(call: Call) -> Result:
        op = start_create(call, app.faults.operation_fails(call.method_id, call.principal))
        return Result(op.snapshot(), audit=audit(call, "Create", op))

    def patch(call: Call) -> Result:
        p, r, f = call.params["project"], call.params["location"], call.params["function"]
        op = backend.update(p, r, f, call.body or {}, call.query.get("updateMask"),
                            fail_with=app.faults.operation_fails(call.method_id, call.principal))
        return Result(op.snapshot(), audit=audit(call, "Update", op))

    def delete(call: Call) -> Result:
        p, r, f = call.params["project"], call.params["location"], call.params["function"]
        op = backend.delete(p, r, f, fail_with=app.faults.operation_fails(call.method_id, call.principal))
        return Result(op.snapshot(), audit=audit(call, "Delete", op))

    def get(call: Call) -> Result:
        return Result(backend.get(call.params["project"], call.params["location"], call.params["function"]))

    def list_functions(call: Call) -> Result:
        page, token = paginate(backend.list(call.params["project"], call.params["location"]), call.query)
        return Result({"functions": page, **({"nextPageToken": token} if token else {})})

    def generate_upload_url(call: Call) -> Result:
        host = call.host or "127.0.0.1"
        base_url = host if host.startswith("http") else f"http://{host}"
        return Result(backend.upload_url(call.params["project"], call.params["location"], base_url))

    def list_locations(call: Call) -> Result:
        p = call.params["project"]
        check_location(p, "europe-west2")
        locations = [{"name": f"projects/{p}/locations/{r}", "locationId": r} for r in LOCATIONS]
        return Result({"locations": locations})

    m = "cloudfunctions.projects.locations"
    return [
        Route("POST", f"{functions}:generateUploadUrl", api, f"{m}.functions.generateUploadUrl", generate_upload_url),
        Route("POST", functions, api, f"{m}.functions.create", create, mutating=True),
        Route("GET", functions, api, f"{m}.functions.list", list_functions),
        Route("GET", f"{functions}/{{function}}", api, f"{m}.functions.get", get),
        Route("PATCH", f"{functions}/{{function}}", api, f"{m}.functions.patch", patch, mutating=True),
        Route("DELETE", f"{functions}/{{function}}", api, f"{m}.functions.delete", delete, mutating=True),
        Route("GET", base, api, f"{m}.list", list_locations),
    ]


def routes(app: "Services") -> list[Route]:
    backend: FunctionsBackend = app.functions
    base = "/cloudfunctions/v2/projects/{project}/locations"

    def start_create(call: Call, fail_with):
        p, r = call.params["project"], call.params["location"]
        return backend.create(p, r, call.query.get("functionId"), call.body or {}, fail_with=fail_with)

    def get_operation(call: Call) -> Result:
        p, r, o = call.params["project"], call.params["location"], call.params["operation"]
        check_location(p, r)
        return Result(backend.operation(f"projects/{p}/locations/{r}/operations/{o}").snapshot())

    def list_runtimes(call: Call) -> Result:
        """Both generations' runtimes (the v2 API lists 1st gen's too: ``gcloud functions deploy --no-gen2``
        asks with ``filter=name=R AND environment=GEN_1``); the filter's ``name=`` and ``environment=``
        terms are honoured."""
        check_location(call.params["project"], call.params["location"])
        wanted = dict(term.strip().split("=", 1) for term in call.query.get("filter", "").split(" AND ")
                      if "=" in term)
        runtimes = [{"name": name, "displayName": name, "environment": environment, "stage": "GA"}
                    for environment, names in (("GEN_2", RUNTIMES), ("GEN_1", V1_RUNTIMES)) for name in names]
        return Result({"runtimes": [r for r in runtimes if all(r.get(k) == v for k, v in wanted.items())]})

    m = "cloudfunctions.projects.locations"
    return [
        Route("GET", f"{base}/{{location}}/operations/{{operation}}", API, f"{m}.operations.get", get_operation),
        Route("GET", f"{base}/{{location}}/runtimes", API, f"{m}.runtimes.list", list_runtimes),
        *function_routes(app, backend, API, method_name, lambda call: call.query.get("functionId", ""), start_create),
    ]
