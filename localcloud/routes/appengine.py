"""App Engine Admin API v1 URL routes (versions and operations), under ``/appengine``, from the
discovery document (``appengine.v1.json``). Handlers only convert between calls and the backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localcloud.auditlog.calls import origin_of_call
from localcloud.backends.appengine import CREATE_METHOD, version_name
from localcloud.routes.vpcaccess import paginate
from localcloud.routing import AuditInfo, Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services

API = "appengine.v1"
SERVICE_NAME = "appengine.googleapis.com"
AUDIT_RESOURCE_TYPE = "gae_app"  # a real CreateVersion pair (docs/gcp-facts.md §12.4)


def routes(app: "Services") -> list[Route]:
    backend = app.appengine
    versions = "/appengine/v1/apps/{app}/services/{service}/versions"

    def create(call: Call) -> Result:
        a, s = call.params["app"], call.params["service"]
        op = backend.create(a, s, call.body or {}, principal=call.principal,
                            fail_with=app.faults.operation_fails(call.method_id, call.principal))
        version = (call.body or {}).get("id", "")
        info = AuditInfo(service_name=SERVICE_NAME, method_name=CREATE_METHOD,
                         resource_name=version_name(a, s, version), resource_type=AUDIT_RESOURCE_TYPE,
                         resource_labels={"module_id": s, "project_id": a, "version_id": version, "zone": ""},
                         operation=op)
        op.audit, op.origin = info, origin_of_call(call, info)
        return Result(op.snapshot(), audit=info)

    def get(call: Call) -> Result:
        return Result(backend.get(call.params["app"], call.params["service"], call.params["version"]))

    def list_versions(call: Call) -> Result:
        page, token = paginate(backend.list(call.params["app"], call.params["service"]), call.query)
        return Result({"versions": page, **({"nextPageToken": token} if token else {})})

    def list_services(call: Call) -> Result:
        page, token = paginate(backend.services(call.params["app"]), call.query)
        return Result({"services": page, **({"nextPageToken": token} if token else {})})

    def get_operation(call: Call) -> Result:
        return Result(backend.operation(f"apps/{call.params['app']}/operations/{call.params['operation']}").snapshot())

    m = "appengine.apps"
    return [
        Route("POST", versions, API, f"{m}.services.versions.create", create, mutating=True),
        Route("GET", versions, API, f"{m}.services.versions.list", list_versions),
        Route("GET", f"{versions}/{{version}}", API, f"{m}.services.versions.get", get),
        Route("GET", "/appengine/v1/apps/{app}/services", API, f"{m}.services.list", list_services),
        Route("GET", "/appengine/v1/apps/{app}/operations/{operation}", API, f"{m}.operations.get", get_operation),
    ]
