"""A person making changes: the real google-cloud-* clients calling localcloud as its default
principal (not as egress-guard's service accounts), so the audit entries they cause are a user's,
exactly what the sink would route to the guardrails.

Every write waits for its operation, so what it made exists (READY) when it returns.
"""

from __future__ import annotations

import json
import time
from typing import Any

REGION = "europe-west2"
TIMEOUT_S = 60.0
ALL_SUBNETWORKS_NAT = {"name": "user-nat", "natIpAllocateOption": "AUTO_ONLY",
                       "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"}


class User:
    def __init__(self, url: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import compute_v1, run_v2, vpcaccess_v1

        creds = AnonymousCredentials()

        def opts(suffix: str = "") -> dict[str, str]:
            return {"api_endpoint": url + suffix}

        self._compute_v1, self._run_v2, self._vpcaccess_v1 = compute_v1, run_v2, vpcaccess_v1
        self.networks = compute_v1.NetworksClient(credentials=creds, client_options=opts(), transport="rest")
        self.subnets = compute_v1.SubnetworksClient(credentials=creds, client_options=opts(), transport="rest")
        self.routers = compute_v1.RoutersClient(credentials=creds, client_options=opts(), transport="rest")
        self.firewalls = compute_v1.FirewallsClient(credentials=creds, client_options=opts(), transport="rest")
        self.global_ops = compute_v1.GlobalOperationsClient(credentials=creds, client_options=opts(), transport="rest")
        self.region_ops = compute_v1.RegionOperationsClient(credentials=creds, client_options=opts(), transport="rest")
        self.vpcaccess = vpcaccess_v1.VpcAccessServiceClient(credentials=creds, client_options=opts("/vpcaccess"),
                                                             transport="rest")
        self.services = run_v2.ServicesClient(credentials=creds, client_options=opts("/run"), transport="rest")
        self.jobs = run_v2.JobsClient(credentials=creds, client_options=opts("/run"), transport="rest")

    # -- Compute

    def network(self, project: str, name: str) -> None:
        op = self.networks.insert(project=project, network_resource=self._compute_v1.Network(
            name=name, auto_create_subnetworks=False))
        self.global_ops.wait(project=project, operation=op.name, timeout=TIMEOUT_S)

    def subnet(self, project: str, name: str, network: str, cidr: str, region: str = REGION) -> None:
        op = self.subnets.insert(project=project, region=region, subnetwork_resource=self._compute_v1.Subnetwork(
            name=name, network=f"projects/{project}/global/networks/{network}", ip_cidr_range=cidr))
        self.region_ops.wait(project=project, region=region, operation=op.name, timeout=TIMEOUT_S)

    def router(self, project: str, name: str, network: str, *nats: dict[str, Any], region: str = REGION) -> None:
        body = {"name": name, "network": f"projects/{project}/global/networks/{network}", "nats": list(nats)}
        op = self.routers.insert(project=project, region=region,
                                 router_resource=self._compute_v1.Router.from_json(json.dumps(body)))
        self.region_ops.wait(project=project, region=region, operation=op.name, timeout=TIMEOUT_S)

    def remove_nats(self, project: str, router: str, region: str = REGION) -> None:
        """As `gcloud compute routers nats delete` does: the router written back without its NATs."""
        found = self.routers.get(project=project, region=region, router=router)
        bare = self._compute_v1.Router(name=found.name, network=found.network, description=found.description)
        op = self.routers.update(project=project, region=region, router=router, router_resource=bare)
        self.region_ops.wait(project=project, region=region, operation=op.name, timeout=TIMEOUT_S)

    def delete_firewall(self, project: str, name: str) -> None:
        op = self.firewalls.delete(project=project, firewall=name)
        self.global_ops.wait(project=project, operation=op.name, timeout=TIMEOUT_S)

    # -- Serverless VPC Access and Cloud Run

    def connector(self, project: str, name: str, subnet: str, region: str = REGION) -> None:
        v1 = self._vpcaccess_v1
        op = self.vpcaccess.create_connector(parent=f"projects/{project}/locations/{region}", connector_id=name,
                                             connector=v1.Connector(subnet=v1.Connector.Subnet(name=subnet),
                                                                    min_instances=2, max_instances=3))
        op.result(timeout=TIMEOUT_S)

    def start_connector(self, project: str, name: str, subnet: str, region: str = REGION) -> float:
        """Send CreateConnector and return at once (the connector is CREATING); the epoch time the call was made."""
        v1 = self._vpcaccess_v1
        sent = time.time()
        self.vpcaccess.create_connector(parent=f"projects/{project}/locations/{region}", connector_id=name,
                                        connector=v1.Connector(subnet=v1.Connector.Subnet(name=subnet),
                                                               min_instances=2, max_instances=3))
        return sent

    def _vpc_access(self, project: str, connector: str, all_traffic: bool, region: str) -> Any:
        egresses = self._run_v2.VpcAccess.VpcEgress
        egress = egresses.ALL_TRAFFIC if all_traffic else egresses.PRIVATE_RANGES_ONLY
        return self._run_v2.VpcAccess(connector=f"projects/{project}/locations/{region}/connectors/{connector}",
                                      egress=egress)

    def job(self, project: str, name: str, connector: str, *, all_traffic: bool, region: str = REGION) -> None:
        run_v2 = self._run_v2
        job = run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(
            containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/job")],
            vpc_access=self._vpc_access(project, connector, all_traffic, region))))
        self.jobs.create_job(parent=f"projects/{project}/locations/{region}", job_id=name,
                             job=job).result(timeout=TIMEOUT_S)

    def service(self, project: str, name: str, connector: str, *, all_traffic: bool, region: str = REGION) -> None:
        run_v2 = self._run_v2
        service = run_v2.Service(template=run_v2.RevisionTemplate(
            containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")],
            vpc_access=self._vpc_access(project, connector, all_traffic, region)))
        self.services.create_service(parent=f"projects/{project}/locations/{region}", service_id=name,
                                     service=service).result(timeout=TIMEOUT_S)

    # -- a whole egress point

    def connector_on_new_network(self, project: str, *, nat: bool = False) -> str:
        """Network ``net``, /28 subnet ``conn-28``, connector ``conn`` (READY); with ``nat``, a user's
        router whose ALL_SUBNETWORKS NAT already covers it. Returns the connector's name."""
        self.network(project, "net")
        self.subnet(project, "conn-28", "net", "10.8.0.0/28")
        if nat:
            self.router(project, "user-router", "net", ALL_SUBNETWORKS_NAT)
        self.connector(project, "conn", "conn-28")
        return "conn"
