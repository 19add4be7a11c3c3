"""Google's Compute rules in the localcloud backend, without HTTP: a planned write is refused at
once (400/404/409/412) or applied by running its Mutation, as the operation would."""

from __future__ import annotations

import pytest

from localcloud.backends.compute import (
    AUTO_MODE_SUBNET_RANGES,
    ComputeBackend,
    ListQuery,
    compile_filter,
    merge_patch,
    parse_network_ref,
)
from localcloud.errors import ApiError
from localcloud.world import World

P, R = "proj-1", "europe-west2"
LINK = "https://www.googleapis.com/compute/v1"


@pytest.fixture
def compute() -> ComputeBackend:
    return ComputeBackend(World())


def done(mutation):
    mutation.apply()
    return mutation


def net(compute, name="net-a", auto=False):
    return done(compute.network_insert(P, {"name": name, "autoCreateSubnetworks": auto}))


def subnet(compute, name, cidr, network="net-a", region=R, **extra):
    return done(compute.subnetwork_insert(P, region, {"name": name, "network": network, "ipCidrRange": cidr, **extra}))


def raises(code, fn, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value


# ---- names, links, merge patch ------------------------------------------------------------------
@pytest.mark.parametrize("value", ["https://www.googleapis.com/compute/v1/projects/proj-1/global/networks/net-a",
                                   "http://127.0.0.1:8790/compute/v1/projects/proj-1/global/networks/net-a",
                                   "https://compute.googleapis.com/compute/beta/projects/proj-1/global/networks/net-a",
                                   "projects/proj-1/global/networks/net-a", "global/networks/net-a", "net-a"])
def test_network_links_in_every_form(value):
    ref = parse_network_ref(value, P, "resource.network")
    assert (ref.project, ref.name) == (P, "net-a")


@pytest.mark.parametrize("value", ["a/b/c", "projects/p/global/networks/BAD", "../net", "networks/", ""])
def test_malformed_links_are_400(value):
    raises(400, parse_network_ref, value, P, "resource.network")


def test_merge_patch_replaces_arrays_and_null_removes():
    target = {"a": 1, "nats": [{"name": "x"}], "o": {"k": 1, "m": 2}}
    assert merge_patch(target, {"nats": [{"name": "y"}], "o": {"k": None}, "a": None}) == \
        {"nats": [{"name": "y"}], "o": {"m": 2}}
    assert merge_patch(target, {}) == target


@pytest.mark.parametrize("bad", ["BAD", "a_b", "-a", "a-", "1abc", "x" * 64, "..", "a/b", "a%2Fb"])
def test_bad_resource_names_are_refused(compute, bad):
    error = raises(400, compute.network_insert, P, {"name": bad, "autoCreateSubnetworks": False})
    assert "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'" in error.message
    raises(400, compute.firewall_get, P, bad)


def test_path_parameters_are_checked(compute):
    assert raises(400, compute.router_get, P, "mars-east1", "r").message == \
        "Invalid value for field 'region': 'mars-east1'. Unknown region."
    assert raises(400, compute.firewall_list, "Bad Project", ListQuery()).reason == "invalidParameter"


# ---- networks -----------------------------------------------------------------------------------
def test_network_insert_conflict_is_checked_at_call_and_at_apply(compute):
    first = compute.network_insert(P, {"name": "net-a", "autoCreateSubnetworks": False})
    second = compute.network_insert(P, {"name": "net-a", "autoCreateSubnetworks": False})
    first.apply()
    assert raises(409, second.apply).message == f"The resource 'projects/{P}/global/networks/net-a' already exists"
    raises(409, compute.network_insert, P, {"name": "net-a", "autoCreateSubnetworks": False})


def test_legacy_network_is_refused_clearly(compute):
    assert "legacy" in raises(400, compute.network_insert, P, {"name": "n"}).message


def test_auto_mode_network_creates_the_fixed_regions_subnets(compute):
    net(compute, "auto", auto=True)
    got = compute.network_get(P, "auto")
    assert len(got["subnetworks"]) == len(AUTO_MODE_SUBNET_RANGES)
    assert compute.subnetwork_get(P, "us-central1", "auto")["ipCidrRange"] == "10.128.0.0/20"


def test_network_delete_blocked_by_each_kind_of_user(compute):
    net(compute)
    subnet(compute, "s1", "10.0.0.0/24")
    error = raises(400, compute.network_delete(P, "net-a").apply)
    assert error.reason == "resourceInUseByAnotherResource"
    assert error.message == (f"The network resource 'projects/{P}/global/networks/net-a' is already being used by "
                             f"'projects/{P}/regions/{R}/subnetworks/s1'")
    done(compute.subnetwork_delete(P, R, "s1"))
    compute.register_hidden_subnet(P, R, "net-a", "aet-hidden", "10.8.0.0/28")
    assert "subnetworks/aet-hidden" in raises(400, compute.network_delete(P, "net-a").apply).message
    compute.unregister_hidden_subnet(P, R, "net-a", "aet-hidden")
    done(compute.network_delete(P, "net-a"))
    raises(404, compute.network_get, P, "net-a")


def test_network_patch_only_changes_what_google_lets_change(compute):
    net(compute)
    done(compute.network_patch(P, "net-a", {"routingConfig": {"routingMode": "GLOBAL"}, "mtu": 1500}))
    got = compute.network_get(P, "net-a")
    assert got["routingConfig"] == {"bgpBestPathSelectionMode": "LEGACY", "routingMode": "GLOBAL"}
    assert got["mtu"] == 1500
    raises(400, compute.network_patch, P, "net-a", {"autoCreateSubnetworks": True})
    done(compute.network_patch(P, "net-a", got))  # sending back what was read changes nothing


# ---- subnetworks --------------------------------------------------------------------------------
@pytest.mark.parametrize("cidr", ["10.0.0.0/24", "10.0.0.128/25", "10.0.0.5/32", "10.0.0.0/8"])
def test_overlapping_subnet_ranges_are_refused(compute, cidr):
    net(compute)
    subnet(compute, "s1", "10.0.0.0/24")
    error = raises(400, compute.subnetwork_insert, P, "us-east1", {
        "name": "s2", "network": "net-a", "ipCidrRange": cidr})
    assert "conflicts with existing subnetwork 's1' in region 'europe-west2'" in error.message or \
        "Invalid IPCidrRange" in error.message


@pytest.mark.parametrize("insert, body", [
    ("subnetwork_insert", {"name": "s", "network": "net-a", "ipCidrRange": "10.9.0.0/24"}),
    ("address_insert", {"name": "ip-1"}),
])
def test_a_body_region_other_than_the_urls_is_refused_and_nothing_is_stored(compute, insert, body):
    net(compute)
    error = raises(400, getattr(compute, insert), P, R, {**body, "region": f"{LINK}/projects/{P}/regions/us-east1"})
    assert f"must match the region of the request URL ('{R}')" in error.message
    done(getattr(compute, insert)(P, R, {**body, "region": f"regions/{R}"}))  # the same region is fine


def test_hidden_connector_subnets_block_overlaps_but_stay_invisible(compute):
    net(compute)
    compute.register_hidden_subnet(P, R, f"{LINK}/projects/{P}/global/networks/net-a", "aet-conn", "10.8.0.0/28")
    assert "conflicts with existing subnetwork 'aet-conn'" in raises(
        400, compute.subnetwork_insert, P, R, {"name": "s", "network": "net-a", "ipCidrRange": "10.8.0.0/24"}).message
    raises(404, compute.subnetwork_get, P, R, "aet-conn")
    assert compute.subnetwork_list(P, R, ListQuery()).get("items") is None
    assert compute.network_get(P, "net-a").get("subnetworks") is None
    assert [s["name"] for s in compute.subnetworks_of_network(P, "net-a")] == ["aet-conn"]
    raises(400, compute.register_hidden_subnet, P, R, "net-a", "aet-other", "10.8.0.0/28")
    assert compute.unregister_hidden_subnet(P, R, "net-a", "aet-conn") is True
    subnet(compute, "s", "10.8.0.0/24")


def test_overlap_is_checked_again_when_the_operation_completes(compute):
    net(compute)
    first = compute.subnetwork_insert(P, R, {"name": "s1", "network": "net-a", "ipCidrRange": "10.0.0.0/24"})
    second = compute.subnetwork_insert(P, R, {"name": "s2", "network": "net-a", "ipCidrRange": "10.0.0.0/25"})
    first.apply()
    raises(400, second.apply)


@pytest.mark.parametrize("cidr", ["10.0.0.1/24", "10.0.0.0/30", "10.0.0.0/7", "127.0.0.0/24", "300.0.0.0/24",
                                  "fd00::/64", "banana", 42])
def test_invalid_subnet_ranges(compute, cidr):
    net(compute)
    raises(400, compute.subnetwork_insert, P, R, {"name": "s", "network": "net-a", "ipCidrRange": cidr})


def test_subnet_fields_and_gateway(compute):
    net(compute)
    subnet(compute, "s", "10.1.2.0/28")
    got = compute.subnetwork_get(P, R, "s")
    assert got["gatewayAddress"] == "10.1.2.1" and got["stackType"] == "IPV4_ONLY" and "state" not in got
    assert got["network"] == f"{LINK}/projects/{P}/global/networks/net-a"
    assert "logConfig" not in got and "enableFlowLogs" not in got
    subnet(compute, "natsub", "10.9.0.0/24", purpose="PRIVATE_NAT", logConfig={"enable": False})
    natsub = compute.subnetwork_get(P, R, "natsub")
    assert "stackType" not in natsub and natsub["enableFlowLogs"] is False


def test_subnet_patch_fingerprint_is_optimistic_locking(compute):
    net(compute)
    subnet(compute, "s", "10.1.2.0/24")
    fp = compute.subnetwork_get(P, R, "s")["fingerprint"]
    assert raises(400, compute.subnetwork_patch, P, R, "s", {"logConfig": {"enable": True}}).reason == "required"
    stale_later = compute.subnetwork_patch(P, R, "s", {"fingerprint": fp, "privateIpGoogleAccess": True})
    done(compute.subnetwork_patch(P, R, "s", {"fingerprint": fp, "logConfig": {"enable": True}}))
    after = compute.subnetwork_get(P, R, "s")
    assert after["fingerprint"] != fp and after["enableFlowLogs"] is True
    assert raises(412, stale_later.apply).reason == "conditionNotMet"
    raises(412, compute.subnetwork_patch, P, R, "s", {"fingerprint": fp})
    raises(400, compute.subnetwork_patch, P, R, "s", {"fingerprint": after["fingerprint"],
                                                      "ipCidrRange": "10.1.0.0/16"})


# ---- firewalls ----------------------------------------------------------------------------------
def test_firewall_defaults_as_google_fills_them(compute):
    rule, ref = compute.normalize_firewall(P, {"name": "fw", "network": "net-a",
                                               "allowed": [{"IPProtocol": "TCP", "ports": ["22"]}]})
    assert ref.name == "net-a"
    assert rule == {"name": "fw", "description": "", "priority": 1000, "sourceRanges": ["0.0.0.0/0"],
                    "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "direction": "INGRESS",
                    "logConfig": {"enable": False}, "disabled": False}
    egress, _ = compute.normalize_firewall(P, {"name": "eg", "direction": "EGRESS", "denied": [{"IPProtocol": "all"}]})
    assert egress["destinationRanges"] == ["0.0.0.0/0"] and "sourceRanges" not in egress
    tagged, _ = compute.normalize_firewall(P, {"name": "t", "sourceTags": ["a"], "allowed": [{"IPProtocol": "icmp"}]})
    assert "sourceRanges" not in tagged


@pytest.mark.parametrize("body", [
    {"allowed": [{"IPProtocol": "tcp"}], "denied": [{"IPProtocol": "tcp"}]},
    {},
    {"allowed": []},
    {"allowed": [{"IPProtocol": "tcp"}], "direction": "EGRESS", "sourceTags": ["a"]},
    {"allowed": [{"IPProtocol": "tcp"}], "sourceServiceAccounts": ["a@b.c"], "sourceTags": ["t"]},
    {"allowed": [{"IPProtocol": "tcp"}], "targetServiceAccounts": ["a@b.c"], "targetTags": ["t"]},
    {"allowed": [{"IPProtocol": "tcp", "ports": ["0-70000"]}]},
    {"allowed": [{"IPProtocol": "tcp", "ports": ["90-80"]}]},
    {"allowed": [{"IPProtocol": "tcp", "ports": ["http"]}]},
    {"allowed": [{"IPProtocol": "icmp", "ports": ["80"]}]},
    {"allowed": [{"IPProtocol": "gopher"}]},
    {"allowed": [{"IPProtocol": "tcp"}], "priority": 65536},
    {"allowed": [{"IPProtocol": "tcp"}], "priority": -1},
    {"allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["10.0.0.0/33"]},
    {"allowed": [{"IPProtocol": "tcp"}], "targetTags": ["Web"]},
    {"allowed": [{"IPProtocol": "tcp"}], "direction": "SIDEWAYS"},
    {"allowed": "tcp"},
    {"allowed": [{"IPProtocol": "tcp"}], "sourceRanges": "10.0.0.0/8"},
    {"allowed": [{"IPProtocol": "tcp"}], "disabled": "yes"},
])
def test_firewall_validation(compute, body):
    raises(400, compute.normalize_firewall, P, {"name": "fw", **body})


def test_firewall_patch_merges_and_update_replaces(compute):
    net(compute)
    done(compute.firewall_insert(P, {"name": "fw", "network": "net-a", "targetTags": ["web"], "description": "d",
                                     "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}]}))
    created = compute.firewall_get(P, "fw")
    done(compute.firewall_patch(P, "fw", {"disabled": True, "targetTags": None}))
    patched = compute.firewall_get(P, "fw")
    assert patched["disabled"] is True and "targetTags" not in patched and patched["description"] == "d"
    assert (patched["id"], patched["creationTimestamp"]) == (created["id"], created["creationTimestamp"])
    done(compute.firewall_patch(P, "fw", {"allowed": [{"IPProtocol": "tcp"}], "denied": []}))  # REAL Terraform body
    assert compute.firewall_get(P, "fw")["allowed"] == [{"IPProtocol": "tcp"}]
    done(compute.firewall_update(P, "fw", {"name": "fw", "denied": [{"IPProtocol": "all"}]}))
    updated = compute.firewall_get(P, "fw")
    assert "allowed" not in updated and updated["disabled"] is False and updated["description"] == ""
    raises(400, compute.firewall_patch, P, "fw", {"name": "other"})
    raises(400, compute.firewall_patch, P, "fw", {"denied": None})  # would leave neither allowed nor denied
    net(compute, "net-b")
    raises(400, compute.firewall_patch, P, "fw", {"network": "net-b"})
    raises(404, compute.firewall_patch, P, "ghost", {"disabled": True})


def test_internal_firewall_insert_is_immediate_and_checked(compute):
    net(compute)
    stored = compute.firewall_insert_internal(P, {"name": "aet-euwest2-conn-hcfw",
                                                  "network": f"{LINK}/projects/{P}/global/networks/net-a",
                                                  "allowed": [{"IPProtocol": "tcp", "ports": ["667"]}],
                                                  "priority": 100}, "service-1@gcp-sa-vpcaccess.iam.gserviceaccount.com")
    assert compute.firewall_get(P, "aet-euwest2-conn-hcfw") == stored and stored["id"]
    raises(409, compute.firewall_insert_internal, P, {"name": "aet-euwest2-conn-hcfw", "network": "net-a",
                                                      "allowed": [{"IPProtocol": "tcp"}]}, "x@y")
    assert compute.firewall_delete_internal(P, "aet-euwest2-conn-hcfw", "x@y") is True
    assert compute.firewall_delete_internal(P, "aet-euwest2-conn-hcfw", "x@y") is False


# ---- routers and NAT ----------------------------------------------------------------------------
def nat(name, option="ALL_SUBNETWORKS_ALL_IP_RANGES", **extra):
    return {"name": name, "sourceSubnetworkIpRangesToNat": option, "natIpAllocateOption": "AUTO_ONLY", **extra}


def router(compute, name, nats=(), region=R, network="net-a"):
    return done(compute.router_insert(P, region, {"name": name, "network": network, "nats": list(nats)}))


def test_all_subnetworks_nat_is_exclusive_in_network_and_region(compute):
    net(compute)
    net(compute, "net-b")
    subnet(compute, "s1", "10.0.0.0/24")
    router(compute, "r1", [nat("all")])
    error = raises(400, compute.router_insert, P, R, {"name": "r2", "network": "net-a", "nats": [nat("other")]})
    assert error.message == ("Invalid value for field 'resource.nats[0].sourceSubnetworkIpRangesToNat': "
                             "'ALL_SUBNETWORKS_ALL_IP_RANGES'. Can not create new Nats since a Nat with option "
                             "ALL_SUBNETWORKS_ALL_IP_RANGES exists.")
    raises(400, compute.router_patch, P, R, "r1", {"nats": [nat("all"), nat("list", "LIST_OF_SUBNETWORKS", subnetworks=[
        {"name": "s1", "sourceIpRangesToNat": ["ALL_IP_RANGES"]}])]})
    router(compute, "r-b", [nat("all-b")], network="net-b")  # another network
    router(compute, "r-us", [nat("all-us")], region="us-east1")  # another region
    router(compute, "r2")  # a router without NAT is fine
    done(compute.router_patch(P, R, "r1", {"nats": []}))
    router(compute, "r3", [nat("list", "LIST_OF_SUBNETWORKS", subnetworks=[
        {"name": "s1", "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}])])
    error = raises(400, compute.router_patch, P, R, "r2", {"nats": [nat("all2", "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES")]})
    assert "must be the only Nat of its network and region" in error.message


def test_a_subnet_range_is_translated_by_one_nat_only(compute):
    net(compute)
    subnet(compute, "s1", "10.0.0.0/24", secondaryIpRanges=[{"rangeName": "pods", "ipCidrRange": "10.4.0.0/16"}])
    entry = lambda *ranges, **kw: {"name": "s1", "sourceIpRangesToNat": list(ranges), **kw}  # noqa: E731
    router(compute, "r1", [nat("n1", "LIST_OF_SUBNETWORKS", subnetworks=[entry("PRIMARY_IP_RANGE")])])
    error = raises(400, compute.router_insert, P, R, {"name": "r2", "network": "net-a", "nats": [
        nat("n2", "LIST_OF_SUBNETWORKS", subnetworks=[entry("PRIMARY_IP_RANGE")])]})
    assert "Can not specify PRIMARY_IP_RANGE for the Subnetwork since it is already configured for Nat with the " \
           "option PRIMARY_IP_RANGE." in error.message
    raises(400, compute.router_insert, P, R, {"name": "r2", "network": "net-a", "nats": [
        nat("n2", "LIST_OF_SUBNETWORKS", subnetworks=[entry("ALL_IP_RANGES")])]})
    # the secondary range is still free
    router(compute, "r2", [nat("n2", "LIST_OF_SUBNETWORKS", subnetworks=[
        entry("LIST_OF_SECONDARY_IP_RANGES", secondaryIpRangeNames=["pods"])])])
    raises(400, compute.router_patch, P, R, "r1", {"nats": [nat("n1", "LIST_OF_SUBNETWORKS", subnetworks=[
        entry("PRIMARY_IP_RANGE"), entry("PRIMARY_IP_RANGE")])]})


@pytest.mark.parametrize("bad_nat", [
    {"name": "n"},
    {"name": "N!", "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES", "natIpAllocateOption": "AUTO_ONLY"},
    nat("n", "LIST_OF_SUBNETWORKS"),
    nat("n", subnetworks=[{"name": "s1", "sourceIpRangesToNat": ["ALL_IP_RANGES"]}]),
    nat("n", "LIST_OF_SUBNETWORKS", subnetworks=[{"name": "s1"}]),
    nat("n", "LIST_OF_SUBNETWORKS", subnetworks=[{"name": "s1", "sourceIpRangesToNat": ["ALL_IP_RANGES",
                                                                                     "PRIMARY_IP_RANGE"]}]),
    nat("n", "LIST_OF_SUBNETWORKS", subnetworks=[{"name": "s1", "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"],
                                                   "secondaryIpRangeNames": ["x"]}]),
    nat("n", natIps=["ip-1"]),
    {**nat("n"), "natIpAllocateOption": "MANUAL_ONLY"},
    {**nat("n"), "natIpAllocateOption": None},
    nat("n", enableDynamicPortAllocation=True, enableEndpointIndependentMapping=True),
    nat("n", minPortsPerVm=1),
    nat("n", udpIdleTimeoutSec=0),
    "not-an-object",
])
def test_nat_validation(compute, bad_nat):
    net(compute)
    subnet(compute, "s1", "10.0.0.0/24")
    raises(400, compute.router_insert, P, R, {"name": "r", "network": "net-a", "nats": [bad_nat]})


def test_nat_subnets_must_exist_in_the_routers_region_and_network(compute):
    net(compute)
    net(compute, "net-b")
    subnet(compute, "other-net", "10.50.0.0/24", network="net-b")
    subnet(compute, "us", "10.60.0.0/24", region="us-east1")
    compute.register_hidden_subnet(P, R, "net-a", "aet-hidden", "10.8.0.0/28")
    for name, code in (("ghost", 404), ("aet-hidden", 404), ("other-net", 400),
                       (f"projects/{P}/regions/us-east1/subnetworks/us", 400)):
        raises(code, compute.router_insert, P, R, {"name": "r", "network": "net-a", "nats": [
            nat("n", "LIST_OF_SUBNETWORKS", subnetworks=[{"name": name, "sourceIpRangesToNat": ["ALL_IP_RANGES"]}])]})


def test_nat_fields_google_returns(compute):
    net(compute)
    subnet(compute, "s1", "10.0.0.0/24")
    done(compute.address_insert(P, R, {"name": "ip-1"}))
    router(compute, "r", [
        {"name": "manual", "natIpAllocateOption": "MANUAL_ONLY", "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
         "natIps": [f"projects/{P}/regions/{R}/addresses/ip-1"], "drainNatIps": [], "logConfig": None,
         "subnetworks": [{"name": f"regions/{R}/subnetworks/s1", "sourceIpRangesToNat": ["ALL_IP_RANGES"]}],
         "tcpTimeWaitTimeoutSec": 60, "enableEndpointIndependentMapping": False}])
    (stored,) = compute.router_get(P, R, "r")["nats"]
    assert stored == {
        "name": "manual", "natIpAllocateOption": "MANUAL_ONLY", "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
        "natIps": [f"{LINK}/projects/{P}/regions/{R}/addresses/ip-1"],
        "subnetworks": [{"name": f"{LINK}/projects/{P}/regions/{R}/subnetworks/s1",
                         "sourceIpRangesToNat": ["ALL_IP_RANGES"]}],
        "tcpTimeWaitTimeoutSec": 60, "enableEndpointIndependentMapping": False, "type": "PUBLIC",
        "endpointTypes": ["ENDPOINT_TYPE_VM"], "effectiveTcpTimeWaitTimeoutSec": 60}
    address = compute.address_get(P, R, "ip-1")
    assert address["status"] == "IN_USE" and address["users"] == [f"{LINK}/projects/{P}/regions/{R}/routers/r"]
    assert "in use" in raises(400, compute.address_delete(P, R, "ip-1").apply).message.replace("being used", "in use")
    private = compute._nat(P, R, f"{LINK}/projects/{P}/global/networks/net-a", 0, {
        "name": "p", "type": "PRIVATE", "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"})
    assert private["enableDynamicPortAllocation"] is True and "natIpAllocateOption" not in private
    assert "udpIdleTimeoutSec" not in private  # REAL: Google fills no timeouts


def test_router_patch_is_merge_patch_and_checked_again_at_apply(compute):
    net(compute)
    subnet(compute, "s1", "10.0.0.0/24")
    done(compute.router_insert(P, R, {"name": "r", "network": "net-a", "description": "keep", "bgp": None}))
    done(compute.router_patch(P, R, "r", {}))
    got = compute.router_get(P, R, "r")
    assert got["description"] == "keep" and "bgp" not in got and "nats" not in got
    read = compute.router_get(P, R, "r")
    read["nats"] = [nat("n1", "LIST_OF_SUBNETWORKS", subnetworks=[{"name": "s1", "sourceIpRangesToNat": ["ALL_IP_RANGES"]}])]
    planned = compute.router_patch(P, R, "r", read)  # a read-modify-write of the whole router
    router(compute, "other", [nat("all")])  # meanwhile another router took the network and region
    raises(400, planned.apply)
    assert "nats" not in compute.router_get(P, R, "r")
    raises(400, compute.router_patch, P, R, "r", {"network": "projects/proj-1/global/networks/elsewhere"})
    raises(400, compute.router_update, P, R, "r", {"name": "renamed"})


def test_subnet_used_by_a_nat_cannot_be_deleted(compute):
    net(compute)
    subnet(compute, "s1", "10.0.0.0/24")
    router(compute, "r", [nat("n", "LIST_OF_SUBNETWORKS", subnetworks=[{"name": "s1", "sourceIpRangesToNat": ["ALL_IP_RANGES"]}])])
    error = raises(400, compute.subnetwork_delete(P, R, "s1").apply)
    assert error.message.endswith(f"is already being used by 'projects/{P}/regions/{R}/routers/r'")


def test_router_aggregated_list_warns_for_empty_regions(compute):
    net(compute)
    router(compute, "r")
    body = compute.router_aggregated_list(P, ListQuery())
    assert [r["name"] for r in body["items"][f"regions/{R}"]["routers"]] == ["r"]
    assert body["items"]["regions/us-east1"] == {"warning": {
        "code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope 'regions/us-east1' on this page.",
        "data": [{"key": "scope", "value": "regions/us-east1"}]}}


# ---- addresses ----------------------------------------------------------------------------------
def test_addresses_come_from_documentation_ranges_and_labels_need_the_fingerprint(compute):
    done(compute.address_insert(P, R, {"name": "a1", "labels": {"ignored": "on-insert"}}))
    done(compute.address_insert(P, R, {"name": "a2", "address": "198.51.100.7"}))
    a1, a2 = compute.address_get(P, R, "a1"), compute.address_get(P, R, "a2")
    assert a1["address"] == "203.0.113.1" and a2["address"] == "198.51.100.7"
    assert "labels" not in a1 and a1["labelFingerprint"] == "42WmSpB8rSM="  # REAL: insert labels not applied
    raises(400, compute.address_insert, P, R, {"name": "a3", "address": "8.8.8.8"})
    raises(400, compute.address_insert, P, R, {"name": "a3", "address": "198.51.100.7"})
    raises(400, compute.address_insert, P, R, {"name": "a3", "addressType": "INTERNAL"})
    mutation = done(compute.address_set_labels(P, R, "a1", {"labelFingerprint": "42WmSpB8rSM=", "labels": {"k": "v"}}))
    assert mutation.done_at_once and mutation.operation_type == "setLabels"
    assert compute.address_get(P, R, "a1")["labels"] == {"k": "v"}
    raises(412, compute.address_set_labels, P, R, "a1", {"labelFingerprint": "42WmSpB8rSM=", "labels": {}})
    raises(400, compute.address_set_labels, P, R, "a1", {"labelFingerprint": "x", "labels": {"Bad": "v"}})


# ---- list filters and pages ---------------------------------------------------------------------
RESOURCES = [
    {"name": "fw-a", "network": f"{LINK}/projects/p/global/networks/net-a", "priority": 900, "disabled": False,
     "targetTags": ["web", "db"], "logConfig": {"enable": True}, "creationTimestamp": "2024-01-01"},
    {"name": "fw-b", "network": f"{LINK}/projects/p/global/networks/net-b", "priority": 1000, "disabled": True,
     "creationTimestamp": "2024-01-02"},
    {"name": "aet-c", "network": f"{LINK}/projects/p/global/networks/net-a", "priority": 100, "disabled": False,
     "creationTimestamp": "2024-01-03"},
]


@pytest.mark.parametrize("text,expected", [
    ('network eq ".*(net-a).*"', ["fw-a", "aet-c"]),
    ("network eq '.*net-b'", ["fw-b"]),
    ("name ne aet-.*", ["fw-a", "fw-b"]),
    ('(name eq "fw-.*") (network eq ".*net-a")', ["fw-a"]),
    ('name = "fw-a"', ["fw-a"]),
    ("name != fw-a", ["fw-b", "aet-c"]),
    ("disabled = true", ["fw-b"]),
    ("priority < 1000", ["fw-a", "aet-c"]),
    ("priority >= 1000", ["fw-b"]),
    ("targetTags = db", ["fw-a"]),
    ("targetTags:*", ["fw-a"]),
    ("logConfig.enable = true", ["fw-a"]),
    ("(name = fw-a) OR (name = fw-b)", ["fw-a", "fw-b"]),
    ("name = fw-a OR name = aet-c AND disabled = false", ["fw-a", "aet-c"]),
    ("NOT disabled = true", ["fw-a", "aet-c"]),
    ("name = fw-*", ["fw-a", "fw-b"]),
])
def test_filters(text, expected):
    matcher = compile_filter(text)
    assert [r["name"] for r in RESOURCES if matcher(r)] == expected


@pytest.mark.parametrize("text", ["name", "name =", "(name = a", "name eq [", "name = a) b", 'name = "open',
                                  "(name eq a) (priority < 3)", "= a"])
def test_bad_filters_are_400(text):
    error = raises(400, compile_filter, text)
    assert error.message.startswith("Invalid value for field 'filter'")


def test_pagination_tokens_are_opaque_and_checked():
    items = [{"name": f"r{i:02d}"} for i in range(7)]
    query = ListQuery.parse({"maxResults": "3"})
    page, token = query.page(items)
    seen = [r["name"] for r in page]
    while token:
        page, token = ListQuery.parse({"maxResults": "3", "pageToken": token}).page(items)
        seen += [r["name"] for r in page]
    assert seen == [f"r{i:02d}" for i in range(7)]
    _, token = query.page(items)
    raises(400, ListQuery.parse({"maxResults": "3", "pageToken": token, "filter": "name = r01"}).page, items)
    raises(400, ListQuery.parse({"pageToken": "!!!"}).page, items)
    for bad in ({"maxResults": "501"}, {"maxResults": "-1"}, {"maxResults": "ten"}, {"orderBy": "priority"}):
        raises(400, ListQuery.parse, bad)
    newest, _ = ListQuery.parse({"orderBy": "creationTimestamp desc"}).page(RESOURCES)
    assert [r["name"] for r in newest] == ["aet-c", "fw-b", "fw-a"]


def test_internal_firewall_writes_are_logged_as_the_agent_from_inside_google():
    """Google's own writes (the aet-* rules) reach the audit log as operation first and last entries by
    the service agent, with callerIp "private" and the logged request's pluralised field names."""
    from localcloud.services import Services

    world = World()
    compute = Services.build(world).compute
    net(compute)
    agent = "service-1@gcp-sa-vpcaccess.iam.gserviceaccount.com"
    compute.firewall_insert_internal(P, {"name": "aet-euwest2-conn-hcfw", "network": "net-a",
                                         "allowed": [{"IPProtocol": "tcp", "ports": ["667"]}]}, agent)
    world.backends["operations"].tick()
    compute.firewall_delete_internal(P, "aet-euwest2-conn-hcfw", agent)
    world.backends["operations"].tick()
    entries = world.audit.entries()
    marks = [(e["protoPayload"]["methodName"], "first" if e["operation"].get("first") else "last") for e in entries]
    assert marks == [("v1.compute.firewalls.insert", "first"), ("v1.compute.firewalls.insert", "last"),
                     ("v1.compute.firewalls.delete", "first"), ("v1.compute.firewalls.delete", "last")]
    first = entries[0]
    assert first["protoPayload"]["authenticationInfo"] == {"principalEmail": agent}
    assert first["protoPayload"]["requestMetadata"]["callerIp"] == "private"
    assert first["protoPayload"]["request"]["alloweds"] == [{"IPProtocol": "tcp", "ports": ["667"]}]
    assert first["protoPayload"]["resourceName"] == f"projects/{P}/global/firewalls/aet-euwest2-conn-hcfw"
    assert first["resource"]["type"] == "gce_firewall_rule"
    assert first["protoPayload"]["resourceLocation"] == {"currentLocations": ["global"]}
    assert entries[0]["operation"]["id"] == entries[1]["operation"]["id"]
    assert all(e["protoPayload"]["authenticationInfo"]["principalEmail"] == agent for e in entries)
