"""Compute Engine v1 URL routes.

URL templates from compute.v1.json (the same ones the google-cloud-compute REST transport uses),
under ``/compute/v1/``. Handlers only convert between the call and the backend
(``localcloud/backends/compute/``); every write becomes a compute operation (answered RUNNING,
DONE when ``compute_operation_delay_s`` has passed), and mutating routes tell the audit writer
what Google would log (``v1.compute.<collection>.<verb>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from localcloud.auditlog.calls import origin_of_call
from localcloud.backends.compute import ListQuery, Mutation
from localcloud.errors import not_found
from localcloud.routing import AuditInfo, Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services

API = "compute.v1"
SERVICE_NAME = "compute.googleapis.com"
# Google's operations.wait returns after at most 2 minutes; localcloud caps the wait lower so a test
# or a function never hangs for long, which is within the contract ("might return before the
# default deadline"): callers must loop until DONE anyway.
OPERATION_WAIT_CAP_S = 30.0

BASE = "/compute/v1/projects/{project}"


def routes(app: "Services") -> list[Route]:
    compute = app.compute
    operations = app.operations
    world = app.world

    # ---- writes: a Mutation becomes a compute operation ----------------------------------------
    def start(call: Call, mutation: Mutation) -> Result:
        op = operations.start_compute(
            project=mutation.project, region=mutation.region, operation_type=mutation.operation_type,
            target_link=mutation.target_link, target_id=mutation.target_id, user=call.principal,
            delay=(0.0 if mutation.done_at_once else world.config.compute_operation_delay_s) + call.operation_delay_s,
            apply=mutation.apply, fail_with=app.faults.operation_fails(call.method_id, call.principal))
        info = AuditInfo(service_name=SERVICE_NAME, method_name=f"v1.{call.method_id}",
                         resource_name=mutation.resource_name, resource_type=mutation.resource_type,
                         resource_labels=mutation.resource_labels, operation=op)
        op.audit, op.origin = info, origin_of_call(call, info)
        if mutation.done_at_once:
            operations.tick()
        return Result(op.snapshot(), audit=info)

    def p(call: Call, name: str) -> str:
        return call.params[name]

    def q(call: Call) -> ListQuery:
        return ListQuery.parse(call.query)

    # ---- networks ------------------------------------------------------------------------------
    def networks_list(c: Call) -> Result:
        return Result(compute.network_list(p(c, "project"), q(c)))

    def networks_get(c: Call) -> Result:
        return Result(compute.network_get(p(c, "project"), p(c, "network")))

    def networks_insert(c: Call) -> Result:
        return start(c, compute.network_insert(p(c, "project"), c.body))

    def networks_patch(c: Call) -> Result:
        return start(c, compute.network_patch(p(c, "project"), p(c, "network"), c.body))

    def networks_delete(c: Call) -> Result:
        return start(c, compute.network_delete(p(c, "project"), p(c, "network")))

    # ---- subnetworks ---------------------------------------------------------------------------
    def subnets_list(c: Call) -> Result:
        return Result(compute.subnetwork_list(p(c, "project"), p(c, "region"), q(c)))

    def subnets_aggregated(c: Call) -> Result:
        return Result(compute.subnetwork_aggregated_list(p(c, "project"), q(c)))

    def subnets_get(c: Call) -> Result:
        return Result(compute.subnetwork_get(p(c, "project"), p(c, "region"), p(c, "subnetwork")))

    def subnets_insert(c: Call) -> Result:
        return start(c, compute.subnetwork_insert(p(c, "project"), p(c, "region"), c.body))

    def subnets_patch(c: Call) -> Result:
        return start(c, compute.subnetwork_patch(p(c, "project"), p(c, "region"), p(c, "subnetwork"), c.body))

    def subnets_delete(c: Call) -> Result:
        return start(c, compute.subnetwork_delete(p(c, "project"), p(c, "region"), p(c, "subnetwork")))

    def subnets_private_access(c: Call) -> Result:
        return start(c, compute.subnetwork_set_private_ip_google_access(
            p(c, "project"), p(c, "region"), p(c, "subnetwork"), c.body))

    # ---- firewalls -----------------------------------------------------------------------------
    def firewalls_list(c: Call) -> Result:
        return Result(compute.firewall_list(p(c, "project"), q(c)))

    def firewalls_get(c: Call) -> Result:
        return Result(compute.firewall_get(p(c, "project"), p(c, "firewall")))

    def firewalls_insert(c: Call) -> Result:
        return start(c, compute.firewall_insert(p(c, "project"), c.body))

    def firewalls_patch(c: Call) -> Result:
        return start(c, compute.firewall_patch(p(c, "project"), p(c, "firewall"), c.body))

    def firewalls_update(c: Call) -> Result:
        return start(c, compute.firewall_update(p(c, "project"), p(c, "firewall"), c.body))

    def firewalls_delete(c: Call) -> Result:
        return start(c, compute.firewall_delete(p(c, "project"), p(c, "firewall")))

    # ---- routers -------------------------------------------------------------------------------
    def routers_list(c: Call) -> Result:
        return Result(compute.router_list(p(c, "project"), p(c, "region"), q(c)))

    def routers_aggregated(c: Call) -> Result:
        return Result(compute.router_aggregated_list(p(c, "project"), q(c)))

    def routers_get(c: Call) -> Result:
        return Result(compute.router_get(p(c, "project"), p(c, "region"), p(c, "router")))

    def routers_status(c: Call) -> Result:
        return Result(compute.router_status(p(c, "project"), p(c, "region"), p(c, "router")))

    def routers_insert(c: Call) -> Result:
        return start(c, compute.router_insert(p(c, "project"), p(c, "region"), c.body))

    def routers_patch(c: Call) -> Result:
        return start(c, compute.router_patch(p(c, "project"), p(c, "region"), p(c, "router"), c.body))

    def routers_update(c: Call) -> Result:
        return start(c, compute.router_update(p(c, "project"), p(c, "region"), p(c, "router"), c.body))

    def routers_delete(c: Call) -> Result:
        return start(c, compute.router_delete(p(c, "project"), p(c, "region"), p(c, "router")))

    # ---- addresses -----------------------------------------------------------------------------
    def addresses_list(c: Call) -> Result:
        return Result(compute.address_list(p(c, "project"), p(c, "region"), q(c)))

    def addresses_aggregated(c: Call) -> Result:
        return Result(compute.address_aggregated_list(p(c, "project"), q(c)))

    def addresses_get(c: Call) -> Result:
        return Result(compute.address_get(p(c, "project"), p(c, "region"), p(c, "address")))

    def addresses_insert(c: Call) -> Result:
        return start(c, compute.address_insert(p(c, "project"), p(c, "region"), c.body))

    def addresses_delete(c: Call) -> Result:
        return start(c, compute.address_delete(p(c, "project"), p(c, "region"), p(c, "address")))

    def addresses_set_labels(c: Call) -> Result:
        return start(c, compute.address_set_labels(p(c, "project"), p(c, "region"), p(c, "resource"), c.body))

    # ---- operations ----------------------------------------------------------------------------
    def find_operation(c: Call):
        path = compute.operation_path(p(c, "project"), c.params.get("region"), p(c, "operation"))
        op = operations.get(path)
        if op is None or op.kind != "compute" or not compute.operation_visible(path):
            raise not_found(path)
        return path, op

    def operation_get(c: Call) -> Result:
        return Result(find_operation(c)[1].snapshot())

    def operation_wait(c: Call) -> Result:
        _, op = find_operation(c)
        operations.wait(op, OPERATION_WAIT_CAP_S)
        return Result(op.snapshot())

    def operation_delete(c: Call) -> Result:
        path, _ = find_operation(c)
        with world.lock:
            compute.forget_operation(path)
        project, region = p(c, "project"), c.params.get("region")
        return Result(None, audit=AuditInfo(
            service_name=SERVICE_NAME, method_name=f"v1.{c.method_id}", resource_name=path,
            resource_type="gce_operation", resource_labels={"project_id": project, **(
                {"region": region} if region else {})}))

    def operation_list(c: Call) -> Result:
        project, region = p(c, "project"), c.params.get("region")
        query = q(c)
        prefix = compute.operation_scope(project, region) + "/operations/"
        bodies = [op.snapshot() for op in operations.list(prefix)
                  if op.kind == "compute" and "/" not in op.name[len(prefix):] and compute.operation_visible(op.name)]
        return Result(compute.operation_list_body(project, region, bodies, query))

    # ---- the table -----------------------------------------------------------------------------
    regional = f"{BASE}/regions/{{region}}"
    table: list[tuple[str, str, str, Callable[[Call], Result], bool]] = [
        ("GET", f"{BASE}/global/networks", "networks.list", networks_list, False),
        ("POST", f"{BASE}/global/networks", "networks.insert", networks_insert, True),
        ("GET", f"{BASE}/global/networks/{{network}}", "networks.get", networks_get, False),
        ("PATCH", f"{BASE}/global/networks/{{network}}", "networks.patch", networks_patch, True),
        ("DELETE", f"{BASE}/global/networks/{{network}}", "networks.delete", networks_delete, True),

        ("GET", f"{BASE}/aggregated/subnetworks", "subnetworks.aggregatedList", subnets_aggregated, False),
        ("GET", f"{regional}/subnetworks", "subnetworks.list", subnets_list, False),
        ("POST", f"{regional}/subnetworks", "subnetworks.insert", subnets_insert, True),
        ("GET", f"{regional}/subnetworks/{{subnetwork}}", "subnetworks.get", subnets_get, False),
        ("PATCH", f"{regional}/subnetworks/{{subnetwork}}", "subnetworks.patch", subnets_patch, True),
        ("DELETE", f"{regional}/subnetworks/{{subnetwork}}", "subnetworks.delete", subnets_delete, True),
        ("POST", f"{regional}/subnetworks/{{subnetwork}}/setPrivateIpGoogleAccess",
         "subnetworks.setPrivateIpGoogleAccess", subnets_private_access, True),

        ("GET", f"{BASE}/global/firewalls", "firewalls.list", firewalls_list, False),
        ("POST", f"{BASE}/global/firewalls", "firewalls.insert", firewalls_insert, True),
        ("GET", f"{BASE}/global/firewalls/{{firewall}}", "firewalls.get", firewalls_get, False),
        ("PATCH", f"{BASE}/global/firewalls/{{firewall}}", "firewalls.patch", firewalls_patch, True),
        ("PUT", f"{BASE}/global/firewalls/{{firewall}}", "firewalls.update", firewalls_update, True),
        ("DELETE", f"{BASE}/global/firewalls/{{firewall}}", "firewalls.delete", firewalls_delete, True),

        ("GET", f"{BASE}/aggregated/routers", "routers.aggregatedList", routers_aggregated, False),
        ("GET", f"{regional}/routers", "routers.list", routers_list, False),
        ("POST", f"{regional}/routers", "routers.insert", routers_insert, True),
        ("GET", f"{regional}/routers/{{router}}", "routers.get", routers_get, False),
        ("GET", f"{regional}/routers/{{router}}/getRouterStatus", "routers.getRouterStatus", routers_status, False),
        ("PATCH", f"{regional}/routers/{{router}}", "routers.patch", routers_patch, True),
        ("PUT", f"{regional}/routers/{{router}}", "routers.update", routers_update, True),
        ("DELETE", f"{regional}/routers/{{router}}", "routers.delete", routers_delete, True),

        ("GET", f"{BASE}/aggregated/addresses", "addresses.aggregatedList", addresses_aggregated, False),
        ("GET", f"{regional}/addresses", "addresses.list", addresses_list, False),
        ("POST", f"{regional}/addresses", "addresses.insert", addresses_insert, True),
        ("GET", f"{regional}/addresses/{{address}}", "addresses.get", addresses_get, False),
        ("DELETE", f"{regional}/addresses/{{address}}", "addresses.delete", addresses_delete, True),
        ("POST", f"{regional}/addresses/{{resource}}/setLabels", "addresses.setLabels", addresses_set_labels, True),

        ("GET", f"{regional}/operations", "regionOperations.list", operation_list, False),
        ("GET", f"{regional}/operations/{{operation}}", "regionOperations.get", operation_get, False),
        ("POST", f"{regional}/operations/{{operation}}/wait", "regionOperations.wait", operation_wait, False),
        ("DELETE", f"{regional}/operations/{{operation}}", "regionOperations.delete", operation_delete, True),
        ("GET", f"{BASE}/global/operations", "globalOperations.list", operation_list, False),
        ("GET", f"{BASE}/global/operations/{{operation}}", "globalOperations.get", operation_get, False),
        ("POST", f"{BASE}/global/operations/{{operation}}/wait", "globalOperations.wait", operation_wait, False),
        ("DELETE", f"{BASE}/global/operations/{{operation}}", "globalOperations.delete", operation_delete, True),
    ]
    return [Route(method, pattern, API, f"compute.{method_id}", handler, mutating=mutating)
            for method, pattern, method_id, handler, mutating in table]
