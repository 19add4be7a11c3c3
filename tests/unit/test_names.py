"""Name validation and parsing: every accepted form, and every path trick rejected with its field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress_guard.errors import InvalidName, PermanentError
from egress_guard.names import (
    AddressName,
    ConnectorName,
    FirewallName,
    NetworkName,
    RouterName,
    RunJobName,
    RunServiceName,
    SubnetworkName,
    parse_compute_name,
    parse_connector,
    parse_firewall,
    parse_network,
    parse_router,
    parse_run_job,
    parse_run_service,
    parse_subnetwork,
    validate_compute_name,
    validate_connector_name,
    validate_label_key,
    validate_project,
    validate_region,
)

P, R = "eg-demo-project", "europe-west2"


@pytest.mark.parametrize("value", ["my-project", "eg-demo-project", "a12345", "a" * 30, "example.com:my-project",
                                   "google.com:x-logs-1"])
def test_validate_project_accepts_ids(value: str) -> None:
    assert validate_project(value) == value


@pytest.mark.parametrize("value", ["abc", "a" * 31, "1project", "my-project-", "My-Project", "my_project", "123456789",
                                   ":my-project", "example.com:", "my project"])
def test_validate_project_rejects_non_ids(value: str) -> None:
    with pytest.raises(InvalidName, match="^proj: "):
        validate_project(value, "proj")


def test_validate_project_numbers_only_when_allowed() -> None:
    assert validate_project("123456789012", allow_number=True) == "123456789012"
    with pytest.raises(InvalidName, match="not a project id$|not a project id \\("):
        validate_project("123456789012")


@pytest.mark.parametrize("value", ["us-central1", "europe-west2", "europe-west10", "northamerica-northeast1",
                                   "me-central2"])
def test_validate_region_accepts_regions(value: str) -> None:
    assert validate_region(value) == value


@pytest.mark.parametrize("value", ["us-central1-a", "global", "uscentral1", "US-CENTRAL1", "us-central", "-us1"])
def test_validate_region_rejects_others(value: str) -> None:
    with pytest.raises(InvalidName, match="region"):
        validate_region(value)


@pytest.mark.parametrize("value", ["a", "net-a", "a" * 63, "aet-europewest2-conn--a-sbntfw"])
def test_validate_compute_name_accepts(value: str) -> None:
    assert validate_compute_name(value) == value


@pytest.mark.parametrize("value", ["", "a" * 64, "1net", "net-", "Net", "net_a", "net.a"])
def test_validate_compute_name_rejects(value: str) -> None:
    with pytest.raises(InvalidName):
        validate_compute_name(value, "network")


def test_validate_connector_name_counts_hyphens_twice() -> None:
    assert validate_connector_name("a" * 20) == "a" * 20
    assert validate_connector_name("aaaaaaaa-bbbb-cccc") == "aaaaaaaa-bbbb-cccc"  # 18 + 2 = 20
    with pytest.raises(InvalidName, match="counts 21 characters \\(hyphens count twice\\)"):
        validate_connector_name("aaaaaaaa-bbbbb-cccc")
    with pytest.raises(InvalidName, match="counts 21"):
        validate_connector_name("a" * 21)


def test_validate_label_key() -> None:
    assert validate_label_key("egress-guard") == "egress-guard"
    with pytest.raises(InvalidName):
        validate_label_key("Egress")


# --------------------------------------------------------------------------- compute links

ROUTER = RouterName(P, R, "router-a")


@pytest.mark.parametrize("value", [
    f"https://www.googleapis.com/compute/v1/projects/{P}/regions/{R}/routers/router-a",
    f"https://compute.googleapis.com/compute/v1/projects/{P}/regions/{R}/routers/router-a",
    f"https://www.googleapis.com/compute/beta/projects/{P}/regions/{R}/routers/router-a",
    f"http://127.0.0.1:8790/compute/v1/projects/{P}/regions/{R}/routers/router-a",
    f"http://localhost:8790/compute/v1/projects/{P}/regions/{R}/routers/router-a",
    f"//compute.googleapis.com/projects/{P}/regions/{R}/routers/router-a",
    f"projects/{P}/regions/{R}/routers/router-a",
    f"regions/{R}/routers/router-a",
    "router-a",
])
def test_parse_router_accepts_every_link_form(value: str) -> None:
    assert parse_router(value, field="router", default_project=P, default_region=R) == ROUTER


def test_parse_compute_name_types_by_collection() -> None:
    assert parse_compute_name(f"projects/{P}/global/networks/net-a", field="f") == NetworkName(P, "net-a")
    assert parse_compute_name(f"projects/{P}/global/firewalls/fw", field="f") == FirewallName(P, "fw")
    assert parse_compute_name(f"projects/{P}/regions/{R}/subnetworks/s", field="f") == SubnetworkName(P, R, "s")
    assert parse_compute_name(f"projects/{P}/regions/{R}/addresses/ip1", field="f") == AddressName(P, R, "ip1")
    assert parse_network("net-a", field="f", default_project=P).self_link == \
        f"https://www.googleapis.com/compute/v1/projects/{P}/global/networks/net-a"
    assert parse_subnetwork("s", field="f", default_project=P, default_region=R).relative == \
        f"projects/{P}/regions/{R}/subnetworks/s"
    assert parse_firewall(f"global/firewalls/fw", field="f", default_project=P).ref.type == "compute.firewall"


@pytest.mark.parametrize("value,reason", [
    (f"projects/{P}/regions/{R}/routers/../routers/x", "contains '..'"),
    (f"projects/{P}/regions/{R}/routers/a%2Fb", "percent-encoding"),
    (f"projects/{P}/regions/{R}/routers/a%2fb", "percent-encoding"),
    (f"projects/{P}/regions/{R}/routers/ router", "whitespace"),
    (f"projects/{P}/regions/{R}/routers/router\n", "whitespace"),
    (f"projects/{P}/regions/{R}/routers/rоuter", "non-ASCII character U\\+043E"),  # Cyrillic o
    (f"projects/{P}/regions/{R}/routers/router?x=1", "query"),
    (f"projects/{P}/regions/{R}/routers/router#x", "fragment"),
    (f"projects/{P}/regions/{R}/routers\\router", "backslash"),
    (f"projects/{P}//regions/{R}/routers/router", "empty path segment"),
    (f"/projects/{P}/regions/{R}/routers/router", "empty path segment"),
    (f"projects/{P}/regions/{R}/routers/router/", "empty path segment"),
    (f"projects/{P}/regions/{R}/routers/router/extra", "not a Compute resource name"),
    (f"projects/{P}/regions/{R}/firewalls/router", "is a firewalls name, expected routers"),
    (f"projects/{P}/global/routers/router", "regional, not global"),
    (f"projects/{P}/regions/{R}/subnetworks/s", "is a subnetworks name, expected routers"),
    (f"projects/{P}/regions/{R}/instances/vm", "collection 'instances'"),
    (f"ftp://host/compute/v1/projects/{P}/regions/{R}/routers/r", "not a Compute Engine link"),
    (f"https://host/storage/v1/b/x", "not a Compute Engine link"),
    ("router-a", "does not say which project"),
    (f"projects/{P}/regions/{R.upper()}/routers/r", "region"),
    (f"projects/Bad/regions/{R}/routers/r", "project"),
    ("", "is empty"),
    (12, "expected a string, got int"),
])
def test_parse_router_rejects_tricks_naming_the_field(value: object, reason: str) -> None:
    with pytest.raises(InvalidName, match=reason) as caught:
        parse_router(value, field="protoPayload.resourceName")
    assert caught.value.reason.startswith("protoPayload.resourceName")
    assert caught.value.field and caught.value.field.startswith("protoPayload.resourceName")


def test_parse_compute_name_checks_scope() -> None:
    with pytest.raises(InvalidName, match="firewalls are global, not regional"):
        parse_compute_name(f"projects/{P}/regions/{R}/firewalls/fw", field="f")
    with pytest.raises(InvalidName, match="bare name but the collection is unknown"):
        parse_compute_name("fw", field="f", default_project=P)


def test_parse_router_bare_name_needs_region() -> None:
    with pytest.raises(InvalidName, match="which region"):
        parse_router("router-a", field="r", default_project=P)


# --------------------------------------------------------------------------- connectors and Cloud Run


def test_parse_connector_forms_and_derived_names() -> None:
    full = parse_connector(f"projects/{P}/locations/{R}/connectors/my-conn", field="c")
    assert full == ConnectorName(P, R, "my-conn")
    assert parse_connector("my-conn", field="c", default_project=P, default_region=R) == full
    assert parse_connector(f"//vpcaccess.googleapis.com/projects/{P}/locations/{R}/connectors/my-conn", field="c") == full
    assert parse_connector(f"projects/123456789012/locations/{R}/connectors/my-conn", field="c").project == "123456789012"
    assert full.network_tag == "vpc-connector-europe-west2-my-conn"
    assert full.aet_prefix == "aet-europewest2-my--conn"
    assert str(full) == full.relative == f"projects/{P}/locations/{R}/connectors/my-conn"


@pytest.mark.parametrize("value,reason", [
    ("my-conn", "project or region is unknown"),
    (f"projects/{P}/locations/{R}/connectors/my-conn/x", "not a connector name"),
    (f"projects/{P}/locations/{R}/services/my-conn", "not a connector name"),
    (f"projects/{P}/locations/{R}/connectors/%2e%2e", "percent-encoding"),
    (f"projects/{P}/locations/{R}/connectors/this-name-is-too-long", "too long for a connector"),
])
def test_parse_connector_rejects(value: str, reason: str) -> None:
    with pytest.raises(InvalidName, match=reason):
        parse_connector(value, field="template.vpcAccess.connector")


def test_parse_run_names() -> None:
    service = RunServiceName(P, R, "web")
    assert parse_run_service(f"projects/{P}/locations/{R}/services/web", field="s") == service
    assert parse_run_service(f"namespaces/{P}/services/web", field="s", default_region=R) == service
    assert parse_run_service("web", field="s", default_project=P, default_region=R) == service
    assert parse_run_job(f"namespaces/{P}/jobs/nightly", field="j", default_region=R) == RunJobName(P, R, "nightly")
    assert service.ref.type == "run.service" and RunJobName(P, R, "x").ref.type == "run.job"
    with pytest.raises(InvalidName, match="project and region"):
        parse_run_service(f"namespaces/{P}/services/web", field="s")
    with pytest.raises(InvalidName, match="not a Cloud Run service name"):
        parse_run_service(f"namespaces/{P}/jobs/web", field="s", default_region=R)
    with pytest.raises(InvalidName, match="Cloud Run name"):
        parse_run_job(f"projects/{P}/locations/{R}/jobs/Nightly", field="j")


def test_typed_names_validate_on_construction() -> None:
    with pytest.raises(InvalidName):
        RouterName(P, R, "../x")
    with pytest.raises(InvalidName):
        ConnectorName(P, "nowhere", "c")
    with pytest.raises(InvalidName):
        FirewallName("p/../q", "fw")


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=120))
def test_parse_compute_name_on_arbitrary_text_is_safe(value: str) -> None:
    try:
        name = parse_compute_name(value, field="f", collection="routers", default_project=P, default_region=R)
    except PermanentError:
        return
    for part in name.relative.split("/"):
        assert part and part not in (".", "..") and all(c.isalnum() or c in "-.:" for c in part)
