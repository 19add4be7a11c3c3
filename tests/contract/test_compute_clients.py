"""Compute Engine v1 in localcloud, driven by the real google-cloud-compute REST clients.

Every method the guardrails and the demo use: networks, subnetworks, firewalls, routers with
Cloud NAT, addresses, global/regional operations (get, list, wait, delete), list filters and
pagination, Google's errors as the client raises them, and injected faults the client sees.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from localcloud.identities import PROJECT, REGION

pytestmark = pytest.mark.contract



def compute_client(cls, url: str):
    """A compute client on localcloud. google-cloud-compute builds the operations client that
    ``ExtendedOperation.result()`` polls *without* the caller's client_options (it would poll
    compute.googleapis.com), so the operations clients are put in place here, as any client
    factory pointing compute at another endpoint must do."""
    options = {"api_endpoint": url}
    creds = AnonymousCredentials()
    client = cls(credentials=creds, client_options=options)
    services = getattr(client._transport, "_extended_operations_services", None)  # the library's own cache
    if services is None:  # the operations clients themselves poll nothing
        return client
    services["global_operations"] = compute_v1.GlobalOperationsClient(credentials=creds, client_options=options)
    services["region_operations"] = compute_v1.RegionOperationsClient(credentials=creds, client_options=options)
    return client


@pytest.fixture
def clients(localcloud_url):
    class Clients:
        networks = compute_client(compute_v1.NetworksClient, localcloud_url)
        subnets = compute_client(compute_v1.SubnetworksClient, localcloud_url)
        firewalls = compute_client(compute_v1.FirewallsClient, localcloud_url)
        routers = compute_client(compute_v1.RoutersClient, localcloud_url)
        addresses = compute_client(compute_v1.AddressesClient, localcloud_url)
        global_ops = compute_client(compute_v1.GlobalOperationsClient, localcloud_url)
        region_ops = compute_client(compute_v1.RegionOperationsClient, localcloud_url)

    return Clients


def make_network(clients, name="net-a", auto=False):
    clients.networks.insert(project=PROJECT, network_resource=compute_v1.Network(
        name=name, auto_create_subnetworks=auto)).result(timeout=30)


def make_subnet(clients, name, cidr, network="net-a", region=REGION):
    clients.subnets.insert(project=PROJECT, region=region, subnetwork_resource=compute_v1.Subnetwork(
        name=name, ip_cidr_range=cidr, network=f"global/networks/{network}")).result(timeout=30)


def allow_rule(name, network="net-a", **fields):
    return compute_v1.Firewall(name=name, network=f"projects/{PROJECT}/global/networks/{network}",
                               allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["80", "1000-2000"])], **fields)


# ---- networks ---------------------------------------------------------------------------------
def test_network_insert_waits_on_operation_and_reads_back(clients):
    op = clients.networks.insert(project=PROJECT, network_resource=compute_v1.Network(
        name="net-a", auto_create_subnetworks=False))
    op.result(timeout=30)
    assert op.done() and op.status == compute_v1.Operation.Status.DONE
    net = clients.networks.get(project=PROJECT, network="net-a")
    assert net.auto_create_subnetworks is False
    assert net.self_link == f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/networks/net-a"
    assert net.routing_config.routing_mode == "REGIONAL"
    assert net.network_firewall_policy_enforcement_order == "AFTER_CLASSIC_FIREWALL"
    assert not net.subnetworks
    assert [n.name for n in clients.networks.list(project=PROJECT)] == ["net-a"]


def test_auto_mode_network_gets_a_subnet_per_region_and_takes_them_on_delete(clients):
    make_network(clients, "auto-net", auto=True)
    net = clients.networks.get(project=PROJECT, network="auto-net")
    assert len(net.subnetworks) >= 2
    subnet = clients.subnets.get(project=PROJECT, region="europe-west2", subnetwork="auto-net")
    assert subnet.ip_cidr_range == "10.154.0.0/20" and subnet.gateway_address == "10.154.0.1"
    clients.networks.delete(project=PROJECT, network="auto-net").result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        clients.subnets.get(project=PROJECT, region="europe-west2", subnetwork="auto-net")


def test_network_patch_changes_routing_mode(clients):
    make_network(clients)
    op = clients.networks.patch(project=PROJECT, network="net-a", network_resource=compute_v1.Network(
        routing_config=compute_v1.NetworkRoutingConfig(routing_mode="GLOBAL")))
    op.result(timeout=30)
    assert clients.networks.get(project=PROJECT, network="net-a").routing_config.routing_mode == "GLOBAL"


def test_network_delete_in_use_ends_in_a_done_operation_with_error(clients):
    make_network(clients)
    clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-keep")).result(timeout=30)
    op = clients.networks.delete(project=PROJECT, network="net-a")
    with pytest.raises(exceptions.BadRequest) as raised:
        op.result(timeout=30)
    assert f"is already being used by 'projects/{PROJECT}/global/firewalls/fw-keep'" in str(raised.value)
    raw = clients.global_ops.get(project=PROJECT, operation=op.name)
    assert raw.status == compute_v1.Operation.Status.DONE
    assert raw.http_error_status_code == 400 and raw.http_error_message == "BAD REQUEST"
    assert raw.error.errors[0].code == "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
    clients.networks.get(project=PROJECT, network="net-a")  # still there


# ---- subnetworks --------------------------------------------------------------------------------
def test_subnetworks_insert_get_list_and_keep_network_current(clients):
    make_network(clients)
    make_subnet(clients, "sub-24", "10.10.0.0/24")
    make_subnet(clients, "sub-28", "10.8.0.0/28")
    subnet = clients.subnets.get(project=PROJECT, region=REGION, subnetwork="sub-24")
    assert subnet.gateway_address == "10.10.0.1"
    assert subnet.fingerprint and subnet.purpose == "PRIVATE" and subnet.stack_type == "IPV4_ONLY"
    assert subnet.network.endswith(f"/projects/{PROJECT}/global/networks/net-a")
    assert sorted(s.name for s in clients.subnets.list(project=PROJECT, region=REGION)) == ["sub-24", "sub-28"]
    net = clients.networks.get(project=PROJECT, network="net-a")
    assert sorted(link.rpartition("/")[2] for link in net.subnetworks) == ["sub-24", "sub-28"]
    clients.subnets.delete(project=PROJECT, region=REGION, subnetwork="sub-28").result(timeout=30)
    assert [link.rpartition("/")[2] for link in clients.networks.get(project=PROJECT, network="net-a").subnetworks] \
        == ["sub-24"]


def test_subnetwork_overlap_is_refused_with_googles_message(clients):
    make_network(clients)
    make_subnet(clients, "sub-a", "10.10.0.0/24")
    with pytest.raises(exceptions.BadRequest) as raised:
        make_subnet(clients, "sub-b", "10.10.0.16/28", region="us-central1")
    assert "Invalid IPCidrRange: 10.10.0.16/28 conflicts with existing subnetwork 'sub-a' in region " \
           "'europe-west2'" in str(raised.value)


def test_subnetwork_patch_needs_the_current_fingerprint(clients):
    make_network(clients)
    make_subnet(clients, "sub-a", "10.10.0.0/24")
    current = clients.subnets.get(project=PROJECT, region=REGION, subnetwork="sub-a")
    clients.subnets.patch(project=PROJECT, region=REGION, subnetwork="sub-a", subnetwork_resource=compute_v1.Subnetwork(
        fingerprint=current.fingerprint, log_config=compute_v1.SubnetworkLogConfig(enable=True))).result(timeout=30)
    after = clients.subnets.get(project=PROJECT, region=REGION, subnetwork="sub-a")
    assert after.log_config.enable is True and after.fingerprint != current.fingerprint
    with pytest.raises(exceptions.PreconditionFailed):
        clients.subnets.patch(project=PROJECT, region=REGION, subnetwork="sub-a",
                              subnetwork_resource=compute_v1.Subnetwork(
                                  fingerprint=current.fingerprint,
                                  log_config=compute_v1.SubnetworkLogConfig(enable=False)))


def test_set_private_ip_google_access(clients):
    make_network(clients)
    make_subnet(clients, "sub-a", "10.10.0.0/24")
    op = clients.subnets.set_private_ip_google_access(
        project=PROJECT, region=REGION, subnetwork="sub-a",
        subnetworks_set_private_ip_google_access_request_resource=compute_v1.SubnetworksSetPrivateIpGoogleAccessRequest(
            private_ip_google_access=True))
    op.result(timeout=30)
    assert clients.region_ops.get(project=PROJECT, region=REGION, operation=op.name).operation_type == \
        "setPrivateIpGoogleAccess"
    assert clients.subnets.get(project=PROJECT, region=REGION, subnetwork="sub-a").private_ip_google_access is True


# ---- firewalls ----------------------------------------------------------------------------------
def test_firewall_insert_fills_googles_defaults(clients):
    make_network(clients)
    clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web")).result(timeout=30)
    rule = clients.firewalls.get(project=PROJECT, firewall="fw-web")
    assert rule.direction == "INGRESS" and rule.priority == 1000 and rule.disabled is False
    assert list(rule.source_ranges) == ["0.0.0.0/0"]
    assert rule.log_config.enable is False
    assert rule.network == f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/networks/net-a"
    assert [(a.I_p_protocol, list(a.ports)) for a in rule.allowed] == [("tcp", ["80", "1000-2000"])]


def test_firewall_every_field_round_trips(clients):
    make_network(clients)
    deny = compute_v1.Firewall(
        name="fw-deny", network="global/networks/net-a", direction="EGRESS", priority=990,
        denied=[compute_v1.Denied(I_p_protocol="all")], destination_ranges=["10.0.0.0/8"],
        target_tags=["vpc-connector-europe-west2-conn"], description="managed-by: egress-guard",
        disabled=True, log_config=compute_v1.FirewallLogConfig(enable=True))
    clients.firewalls.insert(project=PROJECT, firewall_resource=deny).result(timeout=30)
    rule = clients.firewalls.get(project=PROJECT, firewall="fw-deny")
    assert (rule.direction, rule.priority, rule.disabled) == ("EGRESS", 990, True)
    assert list(rule.destination_ranges) == ["10.0.0.0/8"] and not rule.source_ranges
    assert list(rule.target_tags) == ["vpc-connector-europe-west2-conn"]
    assert rule.log_config.metadata == "INCLUDE_ALL_METADATA"
    sa = compute_v1.Firewall(name="fw-sa", network="global/networks/net-a",
                             allowed=[compute_v1.Allowed(I_p_protocol="udp", ports=["53"])],
                             source_service_accounts=["a@p.iam.gserviceaccount.com"],
                             target_service_accounts=["b@p.iam.gserviceaccount.com"])
    clients.firewalls.insert(project=PROJECT, firewall_resource=sa).result(timeout=30)
    rule = clients.firewalls.get(project=PROJECT, firewall="fw-sa")
    assert list(rule.source_service_accounts) == ["a@p.iam.gserviceaccount.com"] and not rule.source_ranges


def test_firewall_patch_is_a_merge_patch_and_update_replaces(clients):
    make_network(clients)
    clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule(
        "fw-web", target_tags=["web"], description="d")).result(timeout=30)
    clients.firewalls.patch(project=PROJECT, firewall="fw-web", firewall_resource=compute_v1.Firewall(
        disabled=True)).result(timeout=30)
    rule = clients.firewalls.get(project=PROJECT, firewall="fw-web")
    assert rule.disabled is True and list(rule.target_tags) == ["web"] and rule.description == "d"
    op = clients.firewalls.update(project=PROJECT, firewall="fw-web", firewall_resource=compute_v1.Firewall(
        name="fw-web", network="global/networks/net-a", allowed=[compute_v1.Allowed(I_p_protocol="icmp")],
        source_ranges=["10.0.0.0/8"]))
    op.result(timeout=30)
    rule = clients.firewalls.get(project=PROJECT, firewall="fw-web")
    assert rule.disabled is False and not rule.target_tags and rule.description == ""
    assert [a.I_p_protocol for a in rule.allowed] == ["icmp"] and list(rule.source_ranges) == ["10.0.0.0/8"]
    assert clients.global_ops.get(project=PROJECT, operation=op.name).operation_type == "update"


def test_firewall_errors_are_googles(clients):
    make_network(clients)
    with pytest.raises(exceptions.NotFound) as raised:
        clients.firewalls.get(project=PROJECT, firewall="nope")
    assert raised.value.message.endswith(f"The resource 'projects/{PROJECT}/global/firewalls/nope' was not found")
    clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web")).result(timeout=30)
    with pytest.raises(exceptions.Conflict) as raised:
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web"))
    assert raised.value.message.endswith(f"The resource 'projects/{PROJECT}/global/firewalls/fw-web' already exists")
    with pytest.raises(exceptions.BadRequest) as raised:
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("Bad_Name"))
    assert raised.value.message.endswith("Invalid value for field 'resource.name': 'Bad_Name'. Must be a match of "
                                         "regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
    with pytest.raises(exceptions.BadRequest):  # allowed and denied together
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule(
            "fw-both", denied=[compute_v1.Denied(I_p_protocol="tcp")]))
    with pytest.raises(exceptions.BadRequest):  # source tags on an EGRESS rule
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule(
            "fw-egress", direction="EGRESS", source_tags=["a"]))
    with pytest.raises(exceptions.BadRequest):  # a port that is not one
        clients.firewalls.insert(project=PROJECT, firewall_resource=compute_v1.Firewall(
            name="fw-port", network="global/networks/net-a",
            allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["70000"])]))
    with pytest.raises(exceptions.NotFound):  # a network that does not exist
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-x", network="nowhere"))
    with pytest.raises(exceptions.NotFound):
        clients.firewalls.delete(project=PROJECT, firewall="nope")


def test_firewall_list_filters_and_pages(clients):
    make_network(clients)
    make_network(clients, "net-b")
    for i in range(5):
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule(f"fw-a{i}")).result(timeout=30)
    clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-b", network="net-b")).result(timeout=30)
    by_network = clients.firewalls.list(request=compute_v1.ListFirewallsRequest(
        project=PROJECT, filter='network eq ".*(net-b).*"'))
    assert [r.name for r in by_network] == ["fw-b"]
    assert [r.name for r in clients.firewalls.list(request=compute_v1.ListFirewallsRequest(
        project=PROJECT, filter='(name = "fw-a1") OR (name = "fw-b")'))] == ["fw-a1", "fw-b"]
    assert len(list(clients.firewalls.list(request=compute_v1.ListFirewallsRequest(
        project=PROJECT, filter="name != fw-b")))) == 5
    pager = clients.firewalls.list(request=compute_v1.ListFirewallsRequest(project=PROJECT, max_results=2))
    pages = list(pager.pages)
    assert [len(p.items) for p in pages] == [2, 2, 2]
    assert [r.name for p in pages for r in p.items] == ["fw-a0", "fw-a1", "fw-a2", "fw-a3", "fw-a4", "fw-b"]
    with pytest.raises(exceptions.BadRequest):
        list(clients.firewalls.list(request=compute_v1.ListFirewallsRequest(project=PROJECT, page_token="bogus")))
    with pytest.raises(exceptions.BadRequest):
        list(clients.firewalls.list(request=compute_v1.ListFirewallsRequest(project=PROJECT, filter="name = (")))


# ---- routers and Cloud NAT ----------------------------------------------------------------------
def nat(name, option="ALL_SUBNETWORKS_ALL_IP_RANGES", **fields):
    return compute_v1.RouterNat(name=name, source_subnetwork_ip_ranges_to_nat=option,
                                nat_ip_allocate_option=fields.pop("allocate", "AUTO_ONLY"), **fields)


def test_router_insert_with_nat_and_read_back_googles_shape(clients):
    make_network(clients)
    router = compute_v1.Router(name="eg-europe-west2", network="global/networks/net-a", nats=[
        nat("nat-all", log_config=compute_v1.RouterNatLogConfig(enable=True, filter="ERRORS_ONLY"),
            min_ports_per_vm=64)])
    clients.routers.insert(project=PROJECT, region=REGION, router_resource=router).result(timeout=30)
    got = clients.routers.get(project=PROJECT, region=REGION, router="eg-europe-west2")
    assert got.encrypted_interconnect_router is False
    only = got.nats[0]
    assert (only.type_, only.nat_ip_allocate_option, only.effective_tcp_time_wait_timeout_sec) == \
        ("PUBLIC", "AUTO_ONLY", 120)
    assert list(only.endpoint_types) == ["ENDPOINT_TYPE_VM"] and only.min_ports_per_vm == 64
    assert (only.log_config.enable, only.log_config.filter) == (True, "ERRORS_ONLY")
    assert [r.name for r in clients.routers.list(project=PROJECT, region=REGION)] == ["eg-europe-west2"]
    status = clients.routers.get_router_status(project=PROJECT, region=REGION, router="eg-europe-west2")
    assert status.result.nat_status[0].name == "nat-all"


def test_second_all_subnetworks_nat_in_network_and_region_is_refused(clients):
    make_network(clients)
    clients.routers.insert(project=PROJECT, region=REGION, router_resource=compute_v1.Router(
        name="r1", network="global/networks/net-a", nats=[nat("nat-1")])).result(timeout=30)
    with pytest.raises(exceptions.BadRequest) as raised:
        clients.routers.insert(project=PROJECT, region=REGION, router_resource=compute_v1.Router(
            name="r2", network="global/networks/net-a", nats=[nat("nat-2")]))
    assert "Can not create new Nats since a Nat with option ALL_SUBNETWORKS_ALL_IP_RANGES exists." in \
        raised.value.message
    # another region is another scope
    clients.routers.insert(project=PROJECT, region="us-central1", router_resource=compute_v1.Router(
        name="r3", network="global/networks/net-a", nats=[nat("nat-3")])).result(timeout=30)


def test_router_patch_replaces_nats_wholesale_read_modify_write(clients):
    make_network(clients)
    make_subnet(clients, "sub-a", "10.10.0.0/24")
    make_subnet(clients, "sub-b", "10.11.0.0/24")
    clients.routers.insert(project=PROJECT, region=REGION, router_resource=compute_v1.Router(
        name="r1", network="global/networks/net-a", description="keep me")).result(timeout=30)
    current = clients.routers.get(project=PROJECT, region=REGION, router="r1")
    current.nats.append(nat("nat-a", "LIST_OF_SUBNETWORKS", subnetworks=[compute_v1.RouterNatSubnetworkToNat(
        name="sub-a", source_ip_ranges_to_nat=["ALL_IP_RANGES"])]))
    clients.routers.patch(project=PROJECT, region=REGION, router="r1", router_resource=current).result(timeout=30)
    got = clients.routers.get(project=PROJECT, region=REGION, router="r1")
    assert got.description == "keep me"
    assert got.nats[0].subnetworks[0].name == \
        f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/regions/{REGION}/subnetworks/sub-a"
    got.nats.append(nat("nat-b", "LIST_OF_SUBNETWORKS", subnetworks=[compute_v1.RouterNatSubnetworkToNat(
        name=f"projects/{PROJECT}/regions/{REGION}/subnetworks/sub-b", source_ip_ranges_to_nat=["PRIMARY_IP_RANGE"])]))
    clients.routers.patch(project=PROJECT, region=REGION, router="r1", router_resource=got).result(timeout=30)
    assert [n.name for n in clients.routers.get(project=PROJECT, region=REGION, router="r1").nats] == \
        ["nat-a", "nat-b"]
    # a subnet is translated by one NAT only
    with pytest.raises(exceptions.BadRequest) as raised:
        clients.routers.insert(project=PROJECT, region=REGION, router_resource=compute_v1.Router(
            name="r2", network="global/networks/net-a", nats=[nat("nat-c", "LIST_OF_SUBNETWORKS", subnetworks=[
                compute_v1.RouterNatSubnetworkToNat(name="sub-b", source_ip_ranges_to_nat=["PRIMARY_IP_RANGE"])])]))
    assert "already configured for Nat with the option PRIMARY_IP_RANGE" in raised.value.message
    # a subnetwork that does not exist
    with pytest.raises(exceptions.NotFound):
        clients.routers.patch(project=PROJECT, region=REGION, router="r1", router_resource=compute_v1.Router(nats=[
            nat("nat-x", "LIST_OF_SUBNETWORKS", subnetworks=[compute_v1.RouterNatSubnetworkToNat(
                name="ghost", source_ip_ranges_to_nat=["ALL_IP_RANGES"])])]))
    # an update (PUT) without nats removes them
    clients.routers.update(project=PROJECT, region=REGION, router="r1", router_resource=compute_v1.Router(
        name="r1", network="global/networks/net-a")).result(timeout=30)
    assert not clients.routers.get(project=PROJECT, region=REGION, router="r1").nats


def test_router_aggregated_list_keys_regions_and_warns_on_empty_ones(clients):
    make_network(clients)
    clients.routers.insert(project=PROJECT, region=REGION, router_resource=compute_v1.Router(
        name="r1", network="global/networks/net-a")).result(timeout=30)
    scopes = dict(clients.routers.aggregated_list(project=PROJECT))
    assert [r.name for r in scopes[f"regions/{REGION}"].routers] == ["r1"]
    assert scopes["regions/us-east1"].warning.code == "NO_RESULTS_ON_PAGE"


def test_manual_nat_ips_must_be_static_addresses_of_the_region(clients):
    make_network(clients)
    clients.addresses.insert(project=PROJECT, region=REGION, address_resource=compute_v1.Address(
        name="nat-ip-1")).result(timeout=30)
    address = clients.addresses.get(project=PROJECT, region=REGION, address="nat-ip-1")
    assert address.address.startswith("203.0.113.") and address.status == "RESERVED"
    assert address.address_type == "EXTERNAL" and address.network_tier == "PREMIUM"
    clients.routers.insert(project=PROJECT, region=REGION, router_resource=compute_v1.Router(
        name="r1", network="global/networks/net-a", nats=[nat("nat-m", allocate="MANUAL_ONLY", nat_ips=[
            f"projects/{PROJECT}/regions/{REGION}/addresses/nat-ip-1"])])).result(timeout=30)
    got = clients.routers.get(project=PROJECT, region=REGION, router="r1")
    assert list(got.nats[0].nat_ips) == [address.self_link]
    in_use = clients.addresses.get(project=PROJECT, region=REGION, address="nat-ip-1")
    assert in_use.status == "IN_USE" and list(in_use.users) == [got.self_link]
    with pytest.raises(exceptions.NotFound):
        clients.routers.insert(project=PROJECT, region=REGION, router_resource=compute_v1.Router(
            name="r2", network="global/networks/net-a", nats=[nat("nat-n", allocate="MANUAL_ONLY", nat_ips=[
                f"projects/{PROJECT}/regions/{REGION}/addresses/missing"])]))
    clients.routers.delete(project=PROJECT, region=REGION, router="r1").result(timeout=30)
    assert clients.addresses.get(project=PROJECT, region=REGION, address="nat-ip-1").status == "RESERVED"


# ---- addresses ----------------------------------------------------------------------------------
def test_addresses_insert_list_set_labels_delete(clients):
    op = clients.addresses.insert(project=PROJECT, region=REGION, address_resource=compute_v1.Address(name="ip-1"))
    op.result(timeout=30)
    clients.addresses.insert(project=PROJECT, region=REGION,
                             address_resource=compute_v1.Address(name="ip-2")).result(timeout=30)
    listed = {a.name: a.address for a in clients.addresses.list(project=PROJECT, region=REGION)}
    assert set(listed) == {"ip-1", "ip-2"} and len(set(listed.values())) == 2
    current = clients.addresses.get(project=PROJECT, region=REGION, address="ip-1")
    set_op = clients.addresses.set_labels(
        project=PROJECT, region=REGION, resource="ip-1",
        region_set_labels_request_resource=compute_v1.RegionSetLabelsRequest(
            label_fingerprint=current.label_fingerprint, labels={"team": "net"}))
    set_op.result(timeout=30)
    labelled = clients.addresses.get(project=PROJECT, region=REGION, address="ip-1")
    assert dict(labelled.labels) == {"team": "net"} and labelled.label_fingerprint != current.label_fingerprint
    with pytest.raises(exceptions.PreconditionFailed):
        clients.addresses.set_labels(
            project=PROJECT, region=REGION, resource="ip-1",
            region_set_labels_request_resource=compute_v1.RegionSetLabelsRequest(
                label_fingerprint=current.label_fingerprint, labels={}))
    clients.addresses.delete(project=PROJECT, region=REGION, address="ip-1").result(timeout=30)
    assert [a.name for a in clients.addresses.list(project=PROJECT, region=REGION)] == ["ip-2"]
    assert f"regions/{REGION}" in dict(clients.addresses.aggregated_list(project=PROJECT))


# ---- operations ---------------------------------------------------------------------------------
def test_operations_get_list_wait_delete(clients, localcloud):
    localcloud.config(compute_operation_delay_s=0.3)
    op = clients.networks.insert(project=PROJECT, network_resource=compute_v1.Network(
        name="net-a", auto_create_subnetworks=False))
    first = clients.global_ops.get(project=PROJECT, operation=op.name)
    assert first.status == compute_v1.Operation.Status.RUNNING and first.progress == 0
    waited = clients.global_ops.wait(project=PROJECT, operation=op.name)
    assert waited.status == compute_v1.Operation.Status.DONE and waited.progress == 100
    assert waited.end_time and waited.target_link.endswith("/global/networks/net-a")
    names = [o.name for o in clients.global_ops.list(project=PROJECT)]
    assert op.name in names
    localcloud.config(compute_operation_delay_s=0.0)
    make_subnet(clients, "sub-a", "10.10.0.0/24")
    regional = list(clients.region_ops.list(project=PROJECT, region=REGION))
    assert [o.operation_type for o in regional] == ["insert"]
    assert clients.region_ops.wait(project=PROJECT, region=REGION, operation=regional[0].name).status == \
        compute_v1.Operation.Status.DONE
    clients.global_ops.delete(project=PROJECT, operation=op.name)
    with pytest.raises(exceptions.NotFound):
        clients.global_ops.get(project=PROJECT, operation=op.name)
    with pytest.raises(exceptions.NotFound):
        clients.region_ops.get(project=PROJECT, region=REGION, operation="operation-0-none")


# ---- faults and bad input -----------------------------------------------------------------------
def test_injected_503s_reach_the_client(clients, localcloud):
    make_network(clients)
    clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web")).result(timeout=30)
    localcloud.set_faults([{"methods": "compute.firewalls.get", "error_rate": 0.3, "code": 503}], seed=7)
    outcomes = []
    for _ in range(40):
        try:
            clients.firewalls.get(project=PROJECT, firewall="fw-web", retry=None)
            outcomes.append("ok")
        except exceptions.ServiceUnavailable:
            outcomes.append("503")
    assert 0 < outcomes.count("503") < 40, outcomes
    localcloud.clear_faults()
    clients.firewalls.get(project=PROJECT, firewall="fw-web")


def test_injected_operation_failure_ends_the_operation_in_error(clients, localcloud):
    localcloud.set_faults([{"methods": "compute.networks.insert", "operation_error_rate": 1.0}])
    op = clients.networks.insert(project=PROJECT, network_resource=compute_v1.Network(
        name="net-a", auto_create_subnetworks=False))
    with pytest.raises(exceptions.GoogleAPICallError):
        op.result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        clients.networks.get(project=PROJECT, network="net-a")


@pytest.mark.parametrize("code,reason,raised", [
    (404, None, exceptions.NotFound), (409, None, exceptions.Conflict), (400, None, exceptions.BadRequest),
    (400, "resourceNotReady", exceptions.BadRequest),
])
def test_injected_errors_arrive_in_computes_envelope_with_its_reason(clients, localcloud, code, reason, raised):
    """An injected 404/409/400 is what the client gets from Compute: errors[].reason notFound,
    alreadyExists, invalid (or the reason asked for), a message naming the resource."""
    make_network(clients)
    localcloud.set_faults([{"methods": "compute.firewalls.insert", "error_rate": 1.0, "code": code, "count": 1,
                            **({"reason": reason} if reason else {})}])
    with pytest.raises(raised) as caught:
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web"))
    expected = reason or {404: "notFound", 409: "alreadyExists", 400: "invalid"}[code]
    assert [e["reason"] for e in caught.value.errors] == [expected]
    assert f"projects/{PROJECT}/global/firewalls" in caught.value.message
    clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web")).result(timeout=30)  # count 1


def test_a_held_call_is_served_after_the_client_gave_up(clients, localcloud):
    """A timeout as Google produces one: the server holds the write past the client's timeout; the
    client gives up, and the write still lands once the call goes on (released, or its bound)."""
    make_network(clients)
    localcloud.set_faults([{"methods": "compute.firewalls.insert", "hold": True, "latency_ms": 10_000, "count": 1}])
    with pytest.raises(requests.exceptions.ReadTimeout):
        clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web"), timeout=0.5)
    assert localcloud.held() == 1
    with pytest.raises(exceptions.NotFound):
        clients.firewalls.get(project=PROJECT, firewall="fw-web")
    assert localcloud.release() == 1
    for _ in range(200):  # the held insert goes on now; its operation then completes
        try:
            clients.firewalls.get(project=PROJECT, firewall="fw-web")
            break
        except exceptions.NotFound:
            time.sleep(0.05)
    else:
        raise AssertionError("the released insert never landed")
    assert localcloud.held() == 0


def test_an_operation_outlasts_the_wait_and_completes_later(clients, localcloud):
    make_network(clients)
    localcloud.set_faults([{"methods": "compute.firewalls.insert", "operation_delay_s": 1.5, "count": 1}])
    op = clients.firewalls.insert(project=PROJECT, firewall_resource=allow_rule("fw-web"))
    waited = clients.global_ops.get(project=PROJECT, operation=op.name)
    assert waited.status == compute_v1.Operation.Status.RUNNING
    with pytest.raises(exceptions.NotFound):
        clients.firewalls.get(project=PROJECT, firewall="fw-web")
    op.result(timeout=30)
    assert clients.firewalls.get(project=PROJECT, firewall="fw-web").name == "fw-web"


def test_a_hold_without_a_bound_is_refused(localcloud):
    with pytest.raises(Exception, match="latency_ms"):
        localcloud.set_faults([{"methods": "compute.*", "hold": True}])


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/global/firewalls", b"{not json"),
    ("POST", "/global/firewalls", json.dumps({"name": "fw", "priority": "high"}).encode()),
    ("POST", "/global/firewalls", json.dumps({"name": "fw", "bogus": 1}).encode()),
    ("POST", "/global/firewalls", json.dumps({"name": "fw", "allowed": "tcp"}).encode()),
    ("POST", "/global/firewalls", json.dumps(["a list"]).encode()),
    ("POST", "/global/networks", json.dumps({"name": "UPPER", "autoCreateSubnetworks": False}).encode()),
    ("POST", "/global/networks", json.dumps({"name": "n1"}).encode()),
    ("POST", "/regions/europe-west2/subnetworks", json.dumps({"name": "s", "network": "net-a",
                                                              "ipCidrRange": "10.0.0.1/33"}).encode()),
    ("POST", "/regions/europe-west2/subnetworks", json.dumps({"name": "s", "network": "a/b/c/d",
                                                              "ipCidrRange": "10.0.0.0/24"}).encode()),
    ("POST", "/regions/europe-west2/routers", json.dumps({"name": "r", "network": "net-a",
                                                          "nats": [{"name": "n"}]}).encode()),
    ("POST", "/regions/europe-west2/routers", json.dumps({"name": "r", "network": "net-a",
                                                          "nats": "nope"}).encode()),
    ("GET", "/global/firewalls/..", None),
    ("GET", "/global/firewalls/a%2Fb", None),
    ("GET", "/global/firewalls/%2E%2E", None),
    ("GET", "/regions/not-a-region/routers/r", None),
    ("GET", "/regions/europe-west2/routers/UPPER", None),
    ("GET", "/global/firewalls?maxResults=9999", None),
    ("GET", "/global/firewalls?maxResults=abc", None),
    ("GET", "/global/firewalls?orderBy=priority", None),
    ("GET", "/global/firewalls?filter=%28%28name", None),
    ("DELETE", "/global/firewalls/nope", None),
    ("PUT", "/global/networks/net-a", b"{}"),
])
def test_bad_input_is_a_4xx_never_a_500(clients, localcloud_url, method, path, body):
    make_network(clients)
    response = requests.request(method, f"{localcloud_url}/compute/v1/projects/{PROJECT}{path}", data=body,
                                headers={"Content-Type": "application/json"}, timeout=10)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"] == response.status_code and error["message"] and error["errors"][0]["reason"]
