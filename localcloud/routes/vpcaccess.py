"""Serverless VPC Access URL routes (v1, and v1beta1 for the recorded Terraform traffic).

URL templates from the discovery documents (``vpcaccess.v1.json``), under the ``/vpcaccess``
prefix localcloud serves the API at. Handlers only convert between calls and the backend.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from localcloud.auditlog.calls import origin_of_call
from localcloud.backends.vpcaccess import (
    API_VERSIONS,
    VpcAccessBackend,
    check_parent,
    invalid_argument,
    method_name,
)
from localcloud.routing import AuditInfo, Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services

SERVICE_NAME = "vpcaccess.googleapis.com"
# UNCONFIRMED: the resource.type of vpcaccess audit entries, chosen once in egress-guard's registry.
from egress_guard.assumptions import VPCACCESS_RESOURCE_TYPE as AUDIT_RESOURCE_TYPE  # noqa: E402

# Regions `locations.list` answers with (a fixed slice of Google's; any region name is accepted).
LOCATIONS = ("europe-west1", "europe-west2", "europe-west3", "europe-west4", "us-central1", "us-east1",
             "us-east4", "us-west1", "asia-east1", "asia-northeast1", "australia-southeast1")

DEFAULT_PAGE_SIZE = 500


def routes(app: "Services") -> list[Route]:
    backend = app.vpcaccess
    out: list[Route] = []
    for version in API_VERSIONS:
        out.extend(_version_routes(app, backend, version))
    return out


def _version_routes(app: "Services", backend: VpcAccessBackend, version: str) -> list[Route]:
    api = f"vpcaccess.{version}"
    base = f"/vpcaccess/{version}/projects/{{project}}/locations"
    conn = f"{base}/{{location}}/connectors"

    def audit(call: Call, verb: str, op) -> AuditInfo:
        p, r = call.params["project"], call.params["location"]
        name = call.params.get("connector") or call.query.get("connectorId", "")
        info = AuditInfo(
            service_name=SERVICE_NAME, method_name=method_name(version, verb),
            resource_name=f"projects/{p}/locations/{r}/connectors/{name}", resource_type=AUDIT_RESOURCE_TYPE,
            resource_labels={"project_id": p, "location": r, "connector_name": name}, operation=op)
        if op is not None:
            op.audit, op.origin = info, origin_of_call(call, info)
        return info

    def create(call: Call) -> Result:
        p, r = call.params["project"], call.params["location"]
        spec = backend.parse_create(p, r, call.query.get("connectorId"), call.body or {})
        op = backend.create(spec, api_version=version,
                            fail_with=app.faults.operation_fails(call.method_id, call.principal))
        return Result(op.snapshot(), audit=audit(call, "Create", op))

    def delete(call: Call) -> Result:
        p, r, c = call.params["project"], call.params["location"], call.params["connector"]
        op = backend.delete(p, r, c, api_version=version,
                            fail_with=app.faults.operation_fails(call.method_id, call.principal))
        return Result(op.snapshot(), audit=audit(call, "Delete", op))

    def get(call: Call) -> Result:
        # Google's names take a project number wherever they take an id; a Cloud Run workload's
        # connector reference may carry one (the Shared VPC host's), and readers use it as found.
        project = call.params["project"]
        if project.isdigit():
            project = backend.project_with_number(project) or project
        return Result(backend.get(project, call.params["location"], call.params["connector"], version))

    def list_connectors(call: Call) -> Result:
        items = backend.list(call.params["project"], call.params["location"], version)
        page, token = paginate(items, call.query)
        return Result({"connectors": page, **({"nextPageToken": token} if token else {})})

    def get_operation(call: Call) -> Result:
        p, r, o = call.params["project"], call.params["location"], call.params["operation"]
        check_parent(p, r)
        return Result(backend.operation(f"projects/{p}/locations/{r}/operations/{o}").snapshot())

    def list_operations(call: Call) -> Result:
        ops = [op.snapshot() for op in backend.operations_in(call.params["project"], call.params["location"])]
        page, token = paginate(sorted(ops, key=lambda o: o["name"]), call.query)
        return Result({"operations": page, **({"nextPageToken": token} if token else {})})

    def list_locations(call: Call) -> Result:
        p = call.params["project"]
        check_parent(p, "europe-west2")
        locations = [{"name": f"projects/{p}/locations/{r}", "locationId": r} for r in LOCATIONS]
        page, token = paginate(locations, call.query)
        return Result({"locations": page, **({"nextPageToken": token} if token else {})})

    m = "vpcaccess.projects.locations"
    return [
        Route("POST", conn, api, f"{m}.connectors.create", create, mutating=True),
        Route("GET", conn, api, f"{m}.connectors.list", list_connectors),
        Route("GET", f"{conn}/{{connector}}", api, f"{m}.connectors.get", get),
        Route("DELETE", f"{conn}/{{connector}}", api, f"{m}.connectors.delete", delete, mutating=True),
        Route("GET", f"{base}/{{location}}/operations/{{operation}}", api, f"{m}.operations.get", get_operation),
        Route("GET", f"{base}/{{location}}/operations", api, f"{m}.operations.list", list_operations),
        Route("GET", base, api, f"{m}.list", list_locations),
    ]


def paginate(items: list[Any], query) -> tuple[list[Any], str | None]:
    """One page of ``items`` per ``pageSize``/``pageToken`` (an opaque offset)."""
    try:
        size = int(query.get("pageSize") or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise invalid_argument(f"Invalid value for pageSize: {query.get('pageSize')!r}.") from None
    if size < 0:
        raise invalid_argument("page_size must not be negative.")
    size = size or DEFAULT_PAGE_SIZE
    start = 0
    token = query.get("pageToken")
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid_argument("Invalid page token.") from None
        if start < 0:
            raise invalid_argument("Invalid page token.")
    page = items[start:start + size]
    more = start + size < len(items)
    return page, base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode() if more else None

