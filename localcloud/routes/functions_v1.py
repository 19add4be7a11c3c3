"""Cloud Functions v1 (1st gen) URL routes, under the ``/cloudfunctions`` prefix localcloud serves the API at.

URL templates from the discovery document (``cloudfunctions.v1.json``): the functions of a location,
the global ``operations/ID`` of v1's long-running operations, and a function's IAM policy, which
``gcloud functions deploy --no-gen2`` reads to keep a new HTTP function private. Handlers only
convert between calls and the backend (``backends/functions_v1.py``); the source upload URL is served
by ``server.py``, as for 2nd gen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localcloud.auditlog.calls import origin_of_call
from localcloud.backends.functions import check_location
from localcloud.backends.functions_v1 import FunctionsV1Backend, function_name
from localcloud.routing import AuditInfo, Call, Result, Route
from localcloud.routes.functions import AUDIT_RESOURCE_TYPE, SERVICE_NAME
from localcloud.routes.vpcaccess import LOCATIONS, paginate

if TYPE_CHECKING:
    from localcloud.services import Services

API = "cloudfunctions.v1"


def method_name(verb: str) -> str:
    """The audit methodName (docs/gcp-facts.md §12.2, Google's audit-logging page for Cloud Functions)."""
    return f"google.cloud.functions.v1.CloudFunctionsService.{verb}Function"


def routes(app: "Services") -> list[Route]:
    backend: FunctionsV1Backend = app.functions_v1
    base = "/cloudfunctions/v1/projects/{project}/locations"
    functions = f"{base}/{{location}}/functions"

    def audit(call: Call, verb: str, op) -> AuditInfo:
        p, r = call.params["project"], call.params["location"]
        name = call.params.get("function") or str((call.body or {}).get("name", "")).rsplit("/", 1)[-1]
        info = AuditInfo(
            service_name=SERVICE_NAME, method_name=method_name(verb),
            resource_name=function_name(p, r, name), resource_type=AUDIT_RESOURCE_TYPE,
            resource_labels={"project_id": p, "region": r, "function_name": name}, operation=op)
        if op is not None:
            op.audit, op.origin = info, origin_of_call(call, info)
        return info

    def create(call: Call) -> Result:
        p, r = call.params["project"], call.params["location"]
        op = backend.create(p, r, call.body or {},
                            fail_with=app.faults.operation_fails(call.method_id, call.principal))
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

    def get_iam_policy(call: Call) -> Result:
        # Nobody but its owner may invoke a new function: an empty policy (bindings are not emulated).
        backend.get(call.params["project"], call.params["location"], call.params["function"])
        return Result({"version": 1, "etag": "BwAAAAAAAAA="})

    def get_operation(call: Call) -> Result:
        return Result(backend.operation(f"operations/{call.params['operation']}").snapshot())

    def list_locations(call: Call) -> Result:
        p = call.params["project"]
        check_location(p, "europe-west2")
        locations = [{"name": f"projects/{p}/locations/{r}", "locationId": r} for r in LOCATIONS]
        return Result({"locations": locations})

    m = "cloudfunctions.projects.locations"
    return [
        Route("POST", f"{functions}:generateUploadUrl", API, f"{m}.functions.generateUploadUrl", generate_upload_url),
        Route("POST", functions, API, f"{m}.functions.create", create, mutating=True),
        Route("GET", functions, API, f"{m}.functions.list", list_functions),
        Route("GET", f"{functions}/{{function}}:getIamPolicy", API, f"{m}.functions.getIamPolicy", get_iam_policy),
        Route("GET", f"{functions}/{{function}}", API, f"{m}.functions.get", get),
        Route("PATCH", f"{functions}/{{function}}", API, f"{m}.functions.patch", patch, mutating=True),
        Route("DELETE", f"{functions}/{{function}}", API, f"{m}.functions.delete", delete, mutating=True),
        Route("GET", "/cloudfunctions/v1/operations/{operation}", API, "cloudfunctions.operations.get", get_operation),
        Route("GET", base, API, f"{m}.list", list_locations),
    ]
