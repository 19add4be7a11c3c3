"""Least privilege, checked: each function's custom role in Terraform is derived from the methods it calls.

One table maps Google API methods to IAM permissions (infra/permissions.yaml); one file declares
the methods each function calls (infra/function-methods.yaml). The Terraform grants (the custom
role's permission list, plus roles/pubsub.publisher on the findings topic) must equal
permissions_for(those methods): nothing missing, nothing extra.

The end-to-end suite reuses this: it passes the methods that localcloud's call log recorded for
a function's principal to ``check_function_grants`` instead of the declared list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.hcl import INFRA, example_functions, locals_of

pytestmark = pytest.mark.infra

PERMISSIONS_FILE = INFRA / "permissions.yaml"
FUNCTION_METHODS_FILE = INFRA / "function-methods.yaml"

# What a topic-scoped grant gives: roles/pubsub.publisher holds exactly this one permission.
PUBLISHER_ROLE_PERMISSIONS = frozenset({"pubsub.topics.publish"})
_GRANTS = ("role", "topic")


@dataclass(frozen=True)
class MethodPermissions:
    method: str
    permissions: frozenset[str]
    grant: str  # "role" (the function's custom role) or "topic" (publisher on one topic)
    source: str
    note: str


@lru_cache(maxsize=1)
def permission_table(path: Path = PERMISSIONS_FILE) -> dict[str, MethodPermissions]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["methods"]
    return {
        method: MethodPermissions(
            method=method,
            permissions=frozenset(entry["permissions"]),
            grant=entry.get("grant", "role"),
            source=str(entry["source"]),
            note=str(entry["note"]),
        )
        for method, entry in raw.items()
    }


def declared_methods(path: Path = FUNCTION_METHODS_FILE) -> dict[str, set[str]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["functions"]
    return {name: set(methods or []) for name, methods in raw.items()}


def _lookup(methods: Iterable[str]) -> list[MethodPermissions]:
    table = permission_table()
    unknown = sorted(set(methods) - set(table))
    if unknown:
        raise KeyError(f"methods missing from {PERMISSIONS_FILE.name}: {unknown}")
    return [table[m] for m in sorted(set(methods))]


def permissions_for(methods: set[str]) -> set[str]:
    """Every IAM permission needed to call these API methods (discovery method ids)."""
    return {p for entry in _lookup(methods) for p in entry.permissions}


def role_permissions_for(methods: set[str]) -> set[str]:
    """The part of permissions_for() that belongs in the function's custom role."""
    return {p for entry in _lookup(methods) if entry.grant == "role" for p in entry.permissions}


@dataclass(frozen=True)
class FunctionGrants:
    """What the Terraform gives one function's service account."""

    role: frozenset[str]  # the custom role's permissions
    topic: frozenset[str]  # from roles/pubsub.publisher on the topics it publishes to

    @property
    def all(self) -> frozenset[str]:
        return self.role | self.topic


def terraform_grants(function: str) -> FunctionGrants:
    functions = example_functions()
    if function not in functions:
        raise KeyError(f"{function} is not in local.functions of infra/examples/single-project/functions.tf")
    entry: dict[str, Any] = functions[function]
    return FunctionGrants(
        role=frozenset(entry["permissions"]),
        topic=PUBLISHER_ROLE_PERMISSIONS if entry["publishes_findings"] else frozenset(),
    )


def check_function_grants(function: str, methods: set[str]) -> None:
    """Assert the Terraform grants ``function`` exactly what calling ``methods`` needs.

    ``methods`` are discovery method ids: the declared list, or localcloud's call log.
    """
    granted = terraform_grants(function)
    needed = permissions_for(methods)
    missing, extra = sorted(needed - granted.all), sorted(granted.all - needed)
    assert not missing and not extra, (
        f"{function}: Terraform grants differ from permissions_for(its methods)\n"
        f"  missing (add to local.functions.{function}.permissions or publish_topics): {missing}\n"
        f"  extra (remove, least privilege): {extra}"
    )
    misplaced = sorted(granted.role & PUBLISHER_ROLE_PERMISSIONS)
    assert not misplaced, f"{function}: {misplaced} must be granted on the topic only, never in the role"
    assert granted.role == role_permissions_for(methods), (
        f"{function}: custom role {sorted(granted.role)} != {sorted(role_permissions_for(methods))}"
    )


# --- The table itself ----------------------------------------------------------------------------


def test_permission_table_entries_are_complete():
    for method, entry in permission_table().items():
        assert entry.permissions, f"{method} lists no permission"
        assert entry.grant in _GRANTS, f"{method}: grant must be one of {_GRANTS}"
        assert entry.source.strip() and entry.note.strip(), f"{method} needs a source and a note"
        assert all(p.count(".") == 2 for p in entry.permissions), f"{method}: permissions look like svc.res.verb"


def test_permission_table_covers_the_methods_the_brief_names():
    required = {
        "compute.routers.get", "compute.routers.list", "compute.routers.aggregatedList", "compute.routers.insert",
        "compute.routers.patch", "compute.firewalls.get", "compute.firewalls.list", "compute.firewalls.insert",
        "compute.firewalls.patch", "compute.firewalls.update", "compute.subnetworks.get", "compute.subnetworks.list",
        "compute.networks.get", "compute.addresses.get", "compute.addresses.list", "compute.regionOperations.get",
        "compute.regionOperations.wait", "compute.globalOperations.get", "compute.globalOperations.wait",
        "vpcaccess.projects.locations.connectors.get", "vpcaccess.projects.locations.connectors.list",
        "run.namespaces.services.get", "run.namespaces.services.list", "run.namespaces.jobs.get",
        "run.namespaces.jobs.list", "run.projects.locations.services.get", "run.projects.locations.services.list",
        "run.projects.locations.jobs.get", "run.projects.locations.jobs.list", "pubsub.projects.topics.publish",
        "logging.entries.list",
    }
    assert required <= set(permission_table())


def test_permission_table_keys_are_discovery_method_ids():
    # The same ids localcloud's call log uses: the e2e suite can swap the declared lists for it.
    discovery = pytest.importorskip("googleapiclient.discovery_cache")
    documents = Path(discovery.__file__).parent / "documents"

    def method_ids(resource: dict[str, Any]) -> Iterable[str]:
        for child in resource.get("resources", {}).values():
            yield from (m["id"] for m in child.get("methods", {}).values())
            yield from method_ids(child)

    known: set[str] = set()
    for doc in ("compute.v1", "vpcaccess.v1", "run.v1", "run.v2", "pubsub.v1", "logging.v2", "cloudfunctions.v2", "appengine.v1",
                "cloudasset.v1"):
        known |= set(method_ids(json.loads((documents / f"{doc}.json").read_text(encoding="utf-8"))))
    assert set(permission_table()) <= known, sorted(set(permission_table()) - known)


def test_permissions_for_unions_and_dedupes():
    assert permissions_for({"compute.regionOperations.get", "compute.regionOperations.wait"}) == {
        "compute.regionOperations.get"
    }
    assert permissions_for({"compute.firewalls.insert", "compute.firewalls.patch"}) == {
        "compute.firewalls.create", "compute.firewalls.get", "compute.firewalls.update", "compute.networks.updatePolicy",
    }
    assert permissions_for(set()) == set()


def test_permissions_for_rejects_unknown_methods():
    with pytest.raises(KeyError, match="compute.instances.delete"):
        permissions_for({"compute.instances.delete"})


# --- The functions -----------------------------------------------------------------------------


def test_every_function_is_declared_and_deployed():
    assert set(declared_methods()) == set(example_functions()) == {
        "ensure_nat", "replace_connector_firewalls", "notify_slack",
    }


@pytest.mark.parametrize("function", sorted(declared_methods()))
def test_function_role_equals_permissions_for_its_methods(function):
    check_function_grants(function, declared_methods()[function])


def test_check_function_grants_reports_missing_and_extra():
    methods = declared_methods()["replace_connector_firewalls"] | {"compute.routers.insert"}
    with pytest.raises(AssertionError, match="compute.routers.create"):
        check_function_grants("replace_connector_firewalls", methods)
    with pytest.raises(AssertionError, match="extra .*compute.firewalls.create"):
        check_function_grants("replace_connector_firewalls", {"pubsub.projects.topics.publish"})


def test_no_function_holds_a_permission_project_wide_that_a_topic_grant_covers():
    for function in example_functions():
        assert not terraform_grants(function).role & PUBLISHER_ROLE_PERMISSIONS, function


# --- The scheduled organization sweep ------------------------------------------------------------


def declared_runner_methods(runner: str = "sweep_organization", path: Path = FUNCTION_METHODS_FILE) -> set[str]:
    return set(yaml.safe_load(path.read_text(encoding="utf-8"))["runners"][runner] or [])


def sweep_runner_role() -> frozenset[str]:
    """The custom role infra/modules/scheduled-sweep grants the sweep's service account."""
    return frozenset(locals_of(INFRA / "modules" / "scheduled-sweep")["permissions"])


def check_runner_grants(methods: set[str]) -> None:
    """The scheduled sweep's role is exactly what calling ``methods`` needs (its publish is a topic
    grant of the module, never in the role). ``methods``: the declared list or localcloud's call log."""
    needed, granted = role_permissions_for(methods), sweep_runner_role()
    missing, extra = sorted(needed - granted), sorted(granted - needed)
    assert not missing and not extra, (
        f"scheduled-sweep role differs from permissions_for(its methods)\n  missing: {missing}\n  extra: {extra}")


def test_sweep_runner_role_equals_permissions_for_its_methods():
    check_runner_grants(declared_runner_methods())


def test_sweep_runner_role_check_reports_missing_and_extra():
    with pytest.raises(AssertionError, match="extra: .*cloudasset.assets.searchAllResources"):
        check_runner_grants(declared_runner_methods() - {"cloudasset.searchAllResources"})
