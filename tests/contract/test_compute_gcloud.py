"""Compute Engine v1 in localcloud, driven by the real gcloud CLI (the commands the demo and
README use): networks, subnets, firewall-rules, routers, routers nats, addresses."""

from __future__ import annotations

import shutil

import pytest

from localcloud.identities import PROJECT, REGION
from tests.gcloud import gcloud, gcloud_json

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(shutil.which("gcloud") is None, reason="the gcloud CLI is not installed"),
]

LINK = "https://www.googleapis.com/compute/v1"


def test_gcloud_networks_subnets_and_firewall_rules(localcloud_url):
    run = lambda *args: gcloud(localcloud_url, PROJECT, *args)  # noqa: E731
    run("compute", "networks", "create", "net-a", "--subnet-mode=custom")
    run("compute", "networks", "create", "net-b", "--subnet-mode=custom")
    run("compute", "networks", "subnets", "create", "sub-24", "--network=net-a", f"--region={REGION}",
        "--range=10.10.0.0/24")
    run("compute", "networks", "subnets", "create", "conn-28", "--network=net-a", f"--region={REGION}",
        "--range=10.8.0.0/28")
    overlap = gcloud(localcloud_url, PROJECT, "compute", "networks", "subnets", "create", "dup", "--network=net-a",
                     f"--region={REGION}", "--range=10.10.0.128/25", check=False)
    assert overlap.returncode != 0
    assert "conflicts with existing subnetwork 'sub-24' in region 'europe-west2'" in overlap.stderr

    network = gcloud_json(localcloud_url, PROJECT, "compute", "networks", "describe", "net-a")
    assert network["autoCreateSubnetworks"] is False
    assert sorted(network["subnetworks"]) == [f"{LINK}/projects/{PROJECT}/regions/{REGION}/subnetworks/conn-28",
                                              f"{LINK}/projects/{PROJECT}/regions/{REGION}/subnetworks/sub-24"]
    subnet = gcloud_json(localcloud_url, PROJECT, "compute", "networks", "subnets", "describe", "conn-28",
                         f"--region={REGION}")
    assert (subnet["ipCidrRange"], subnet["gatewayAddress"]) == ("10.8.0.0/28", "10.8.0.1")

    run("compute", "firewall-rules", "create", "fw-web", "--network=net-a", "--allow=tcp:80,tcp:443",
        "--target-tags=web", "--priority=900")
    run("compute", "firewall-rules", "create", "fw-other", "--network=net-b", "--allow=icmp")
    listed = gcloud_json(localcloud_url, PROJECT, "compute", "firewall-rules", "list", "--filter=network~net-a")
    assert [r["name"] for r in listed] == ["fw-web"]
    rule = gcloud_json(localcloud_url, PROJECT, "compute", "firewall-rules", "describe", "fw-web")
    assert rule["sourceRanges"] == ["0.0.0.0/0"] and rule["targetTags"] == ["web"]
    assert (rule["direction"], rule["priority"], rule["disabled"]) == ("INGRESS", 900, False)
    assert rule["network"] == f"{LINK}/projects/{PROJECT}/global/networks/net-a"

    run("compute", "firewall-rules", "update", "fw-web", "--disabled", "--source-ranges=10.0.0.0/8")
    rule = gcloud_json(localcloud_url, PROJECT, "compute", "firewall-rules", "describe", "fw-web")
    assert rule["disabled"] is True and rule["sourceRanges"] == ["10.0.0.0/8"] and rule["targetTags"] == ["web"]

    run("compute", "firewall-rules", "delete", "fw-web", "--quiet")
    assert [r["name"] for r in gcloud_json(localcloud_url, PROJECT, "compute", "firewall-rules", "list")] == \
        ["fw-other"]
    missing = gcloud(localcloud_url, PROJECT, "compute", "firewall-rules", "describe", "fw-web", check=False)
    assert missing.returncode != 0
    assert f"The resource 'projects/{PROJECT}/global/firewalls/fw-web' was not found" in missing.stderr


def test_gcloud_routers_and_cloud_nat(localcloud_url):
    run = lambda *args: gcloud(localcloud_url, PROJECT, *args)  # noqa: E731
    run("compute", "networks", "create", "net-a", "--subnet-mode=custom")
    run("compute", "networks", "subnets", "create", "sub-a", "--network=net-a", f"--region={REGION}",
        "--range=10.10.0.0/24")
    run("compute", "routers", "create", "rt-a", "--network=net-a", f"--region={REGION}")
    run("compute", "routers", "nats", "create", "nat-all", "--router=rt-a", f"--region={REGION}",
        "--auto-allocate-nat-external-ips", "--nat-all-subnet-ip-ranges", "--enable-logging")

    router = gcloud_json(localcloud_url, PROJECT, "compute", "routers", "describe", "rt-a", f"--region={REGION}")
    assert router["network"] == f"{LINK}/projects/{PROJECT}/global/networks/net-a"
    (nat,) = router["nats"]
    assert nat["name"] == "nat-all" and nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert nat["natIpAllocateOption"] == "AUTO_ONLY" and nat["logConfig"]["enable"] is True
    assert nat["type"] == "PUBLIC" and nat["endpointTypes"] == ["ENDPOINT_TYPE_VM"]

    # An ALL_SUBNETWORKS NAT must be the only NAT of its network and region, across routers.
    run("compute", "routers", "create", "rt-b", "--network=net-a", f"--region={REGION}")
    refused = gcloud(localcloud_url, PROJECT, "compute", "routers", "nats", "create", "nat-two", "--router=rt-b",
                     f"--region={REGION}", "--auto-allocate-nat-external-ips", "--nat-all-subnet-ip-ranges",
                     check=False)
    assert refused.returncode != 0
    assert "Can not create new Nats since a Nat with option ALL_SUBNETWORKS_ALL_IP_RANGES exists." in refused.stderr
    assert "nats" not in gcloud_json(localcloud_url, PROJECT, "compute", "routers", "describe", "rt-b",
                                     f"--region={REGION}")

    run("compute", "routers", "nats", "delete", "nat-all", "--router=rt-a", f"--region={REGION}", "--quiet")
    assert "nats" not in gcloud_json(localcloud_url, PROJECT, "compute", "routers", "describe", "rt-a",
                                     f"--region={REGION}")

    run("compute", "routers", "nats", "create", "nat-list", "--router=rt-b", f"--region={REGION}",
        "--auto-allocate-nat-external-ips", "--nat-custom-subnet-ip-ranges=sub-a")
    (nat,) = gcloud_json(localcloud_url, PROJECT, "compute", "routers", "describe", "rt-b",
                         f"--region={REGION}")["nats"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat["subnetworks"] == [{"name": f"{LINK}/projects/{PROJECT}/regions/{REGION}/subnetworks/sub-a",
                                   "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}]

    run("compute", "addresses", "create", "nat-ip", f"--region={REGION}")
    address = gcloud_json(localcloud_url, PROJECT, "compute", "addresses", "describe", "nat-ip", f"--region={REGION}")
    assert address["address"].startswith("203.0.113.") and address["status"] == "RESERVED"
    # The same subnet range in a second NAT is refused; a manual NAT on an address works elsewhere.
    dup = gcloud(localcloud_url, PROJECT, "compute", "routers", "nats", "create", "nat-dup", "--router=rt-a",
                 f"--region={REGION}", "--nat-external-ip-pool=nat-ip", "--nat-custom-subnet-ip-ranges=sub-a",
                 check=False)
    assert dup.returncode != 0 and "already configured for Nat" in dup.stderr
    run("compute", "routers", "nats", "delete", "nat-list", "--router=rt-b", f"--region={REGION}", "--quiet")
    run("compute", "routers", "nats", "create", "nat-man", "--router=rt-a", f"--region={REGION}",
        "--nat-external-ip-pool=nat-ip", "--nat-custom-subnet-ip-ranges=sub-a")
    (nat,) = gcloud_json(localcloud_url, PROJECT, "compute", "routers", "describe", "rt-a",
                         f"--region={REGION}")["nats"]
    assert nat["natIps"] == [address["selfLink"]]
    assert gcloud_json(localcloud_url, PROJECT, "compute", "addresses", "describe", "nat-ip",
                       f"--region={REGION}")["status"] == "IN_USE"
    assert sorted(r["name"] for r in gcloud_json(localcloud_url, PROJECT, "compute", "routers", "list")) == \
        ["rt-a", "rt-b"]
