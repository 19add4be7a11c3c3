"""Serverless VPC Access: connectors, and what Google itself does in the VPC when one is created.

State, Google's rules and side effects; no HTTP (routes/vpcaccess.py converts requests).

A connector is visible at once in state CREATING and becomes READY when its long-running operation
completes (``world.config.connector_ready_delay_s``). At READY, as Google's own service agent (not
the caller), it
- registers the hidden ``aet-`` subnet of an ``ipCidrRange`` connector with the compute backend
  (docs/gcp-facts.md §1.2: "name ... begins with the "aet-" prefix", hidden from firewall/NAT use);
- inserts the ``aet-*`` firewall rules (docs/gcp-facts.md §1.2 table, name encoding, §1.4 tags); with
  ``world.config.connector_broad_rules == "implicit"`` the broad sbntfw/tagfw rules are implicit
  and not created as resources (docs/gcp-facts.md §11).
A connector whose subnet lives in another project (Shared VPC service project) gets no rules:
there the user creates them (docs/gcp-facts.md §1.3).

Requests are parsed once into a ``ConnectorSpec`` (all synchronous checks Google makes), then the
backend acts. Checks Google only makes inside the operation (overlap of ``ipCidrRange`` with
existing subnets, a missing maximum size) end the operation in error and leave the connector in
state ERROR, as the real API does ("Please delete the connector manually").
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from localcloud.errors import ApiError
from localcloud.operations import Operation

CONNECTORS = "vpcaccess.connectors"  # (project, region, name) -> connector JSON (v1beta1 superset)
EFFECTS = "vpcaccess.effects"  # (project, region, name) -> what Google created for it (rules, subnet)
OPERATIONS = "vpcaccess.operations"  # operation name -> api version ("v1" | "v1beta1")

# ---- Google's rules -----------------------------------------------------------------------------
# Real error text (terraform-provider-google #13915): the API enforces this pattern on connectorId.
CONNECTOR_ID_PATTERN = r"^[a-z][-a-z0-9]{0,23}[a-z0-9]$"
_CONNECTOR_ID = re.compile(CONNECTOR_ID_PATTERN)
# [OFFICIAL] "less than 21 characters long, and hyphens (-) count as two characters" (connector
# pages). The rule keeps aet-REGION-NAME(doubled hyphens)-SUFFIX within compute's 63 characters.
MAX_WEIGHTED_NAME_LENGTH = 20
# How Google checks the weighted length is UNCONFIRMED (a [3P] note says only the pattern bites);
# we enforce the documented rule with this text.
_WEIGHTED_LENGTH_MESSAGE = ("Connector ID must be less than 21 characters long, where each hyphen (-) counts as two "
                            "characters: '{name}' counts as {weight}.")

_PROJECT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]")
_REGION = re.compile(r"[a-z]+(?:-[a-z]+)+[0-9]+")
_COMPUTE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")

MACHINE_TYPES = ("e2-micro", "f1-micro", "e2-standard-4")
DEFAULT_MACHINE_TYPE = "e2-micro"
MIN_INSTANCES_RANGE = (2, 9)
MAX_INSTANCES_RANGE = (3, 10)
DEFAULT_MIN_INSTANCES = 2
# Throughput is expressed in e2-micro units: 100 Mbps per instance (the recordings show 300/400 Mbps
# <-> 3/4 instances and 200/300 <-> 2/3). Whether other machine types scale differently: UNCONFIRMED.
MBPS_PER_INSTANCE = 100
MIN_THROUGHPUT_RANGE = (200, 900)
MAX_THROUGHPUT_RANGE = (300, 1000)
CONNECTOR_SUBNET_PREFIX_LENGTH = 28  # docs/gcp-facts.md §9

# Fixed source/destination ranges of the infrastructure rules (docs/gcp-facts.md §1.2 table).
HEALTH_CHECK_RANGES = ("35.191.0.0/16", "35.191.192.0/18", "130.211.0.0/22")
SERVERLESS_INFRA_RANGE = "35.199.224.0/19"
UNIVERSAL_CONNECTOR_TAG = "vpc-connector"

# UNCONFIRMED (docs/gcp-facts.md §1.2 "Target tags ... UNCONFIRMED"): the infrastructure rules target the
# connector's own VMs through its unique tag, and tagfw allows traffic sourced from that same tag.
# The universal tag would make one connector's rules apply to every connector of the network.
def infra_target_tags(unique_tag: str) -> list[str]:
    return [unique_tag]


def broad_rule_source_tags(unique_tag: str) -> list[str]:
    return [unique_tag]


# UNCONFIRMED (docs/gcp-facts.md §8.1): whether the aet-* rules survive connector deletion. Google's
# troubleshooting text ("The resource 'aet-...-egrfw' was not found" while deleting) shows the
# delete removes them, so we remove them; a rule already gone is skipped.
AET_RULES_REMOVED_ON_DELETE = True

# UNCONFIRMED: the hidden subnet's name beyond its documented "aet-" prefix.
HIDDEN_SUBNET_SUFFIX = "sbnt"

# UNCONFIRMED: the identity Google's own firewall writes are made under (a VPC Access service agent).
SERVICE_AGENT = "service-{number}@gcp-sa-vpcaccess.iam.gserviceaccount.com"

# Real operation-failure texts (terraform-provider-google #16690, CloudVLab/terraform-lab-foundation #494).
CIDR_CONFLICT_MESSAGE = ("Operation failed: Invalid IP CIDR range was provided. It conflicts with an existing "
                         "subnetwork. Please delete the connector manually.")
MISSING_MAX_MESSAGE = "Operation failed: A Connector must specify either max_throughput or max_instances."

CONNECTOR_TYPE_URL = "type.googleapis.com/google.cloud.vpcaccess.v1.Connector"
# The recordings show the v1 type URLs even for calls to /v1beta1/ (reference/gcp-http-logs/NOTES.md §3).
METADATA_TYPE_URL = "type.googleapis.com/google.cloud.vpcaccess.v1.OperationMetadata"
EMPTY_TYPE_URL = "type.googleapis.com/google.protobuf.Empty"

API_VERSIONS = ("v1", "v1beta1")
# Fields only v1beta1's Connector has (discovery): the v1 view drops them.
_V1BETA1_ONLY_FIELDS = ("createTime", "lastRestartTime")


def invalid_argument(message: str) -> ApiError:
    return ApiError(400, message, status="INVALID_ARGUMENT", reason="badRequest")


def failed_precondition(message: str) -> ApiError:
    return ApiError(400, message, status="FAILED_PRECONDITION", reason="failedPrecondition")


def connector_not_found() -> ApiError:
    return ApiError(404, "The connector is not found.", status="NOT_FOUND", reason="notFound")  # recorded text


def project_number(project: str) -> str:
    """A stable 12-digit project number for a project id (localcloud has no resource manager)."""
    digest = int(hashlib.sha256(project.encode()).hexdigest(), 16)
    return str(100000000000 + digest % 900000000000)


def method_name(api_version: str, verb: str) -> str:
    """``google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector`` (audit methodName, LRO metadata)."""
    return f"google.cloud.vpcaccess.{api_version}.VpcAccessService.{verb}Connector"


# ---- names Google derives from a connector --------------------------------------------------------
def connector_tag(region: str, name: str) -> str:
    """The connector VMs' unique network tag (docs/gcp-facts.md §1.4)."""
    return f"vpc-connector-{region}-{name}"


def aet_name(region: str, name: str, suffix: str) -> str:
    """``aet-`` + region without hyphens + ``-`` + name with each ``-`` doubled + ``-`` + suffix."""
    return f"aet-{region.replace('-', '')}-{name.replace('-', '--')}-{suffix}"


def hidden_subnet_name(region: str, name: str) -> str:
    return aet_name(region, name, HIDDEN_SUBNET_SUFFIX)


# ---- parsed requests ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scaling:
    min_instances: int
    max_instances: int | None  # None: the request named no maximum (the operation will fail)

    def fields(self) -> dict[str, int]:
        out = {"minInstances": self.min_instances, "minThroughput": self.min_instances * MBPS_PER_INSTANCE}
        if self.max_instances is not None:
            out.update(maxInstances=self.max_instances, maxThroughput=self.max_instances * MBPS_PER_INSTANCE)
        return out


@dataclass(frozen=True)
class ConnectorSpec:
    """A create request that passed every synchronous check."""

    project: str
    region: str
    name: str
    machine_type: str
    scaling: Scaling
    network: str  # network name (from the subnet for subnet connectors)
    network_project: str
    subnet: str | None = None  # user subnet name
    ip_cidr_range: str | None = None  # for range connectors (hidden subnet)
    source_cidr: str = ""  # the range connector traffic comes from (subnet's or ipCidrRange)

    @property
    def resource_name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/connectors/{self.name}"


def check_parent(project: str, region: str) -> None:
    if not _PROJECT.fullmatch(project) and not project.isdigit():
        raise invalid_argument(f"Invalid project id '{project}'.")
    if not _REGION.fullmatch(region):
        raise invalid_argument(f"Invalid location '{region}'.")


def check_connector_id(connector_id: str | None) -> str:
    if not connector_id or not _CONNECTOR_ID.fullmatch(connector_id):
        raise invalid_argument(f"Connector ID must follow the pattern {CONNECTOR_ID_PATTERN}.")
    weight = len(connector_id) + connector_id.count("-")
    if weight > MAX_WEIGHTED_NAME_LENGTH:
        raise invalid_argument(_WEIGHTED_LENGTH_MESSAGE.format(name=connector_id, weight=weight))
    return connector_id


def parse_scaling(body: dict[str, Any]) -> Scaling:
    """Instances take precedence over throughput (vpcaccess v1 docs); throughput alone is converted."""
    min_i, max_i = _int(body, "minInstances"), _int(body, "maxInstances")
    min_t, max_t = _int(body, "minThroughput"), _int(body, "maxThroughput")
    if min_t and not (MIN_THROUGHPUT_RANGE[0] <= min_t <= MAX_THROUGHPUT_RANGE[1] and min_t % MBPS_PER_INSTANCE == 0):
        raise invalid_argument("Connector minimum throughput must be a multiple of 100 between 200 and 1000 in Mbps.")
    if max_t and not (MAX_THROUGHPUT_RANGE[0] <= max_t <= MAX_THROUGHPUT_RANGE[1] and max_t % MBPS_PER_INSTANCE == 0):
        raise invalid_argument("Connector maximum throughput must be a multiple of 100 between 300 and 1000 in Mbps.")
    if min_i and not MIN_INSTANCES_RANGE[0] <= min_i <= MIN_INSTANCES_RANGE[1]:
        raise invalid_argument(f"Connector minimum instances must be between {MIN_INSTANCES_RANGE[0]} and "
                               f"{MIN_INSTANCES_RANGE[1]}, got {min_i}.")
    if max_i and not MAX_INSTANCES_RANGE[0] <= max_i <= MAX_INSTANCES_RANGE[1]:
        raise invalid_argument(f"Connector maximum instances must be between {MAX_INSTANCES_RANGE[0]} and "
                               f"{MAX_INSTANCES_RANGE[1]}, got {max_i}.")
    minimum = min_i or (min_t // MBPS_PER_INSTANCE if min_t else DEFAULT_MIN_INSTANCES)
    maximum = max_i or (max_t // MBPS_PER_INSTANCE if max_t else None)
    if maximum is not None and minimum >= maximum:
        if min_i or max_i:
            raise invalid_argument("Connector minimum instances must be lower than maximum instances.")
        raise invalid_argument("Connector minimum throughput must be lower than maximum throughput.")
    return Scaling(minimum, maximum)


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    try:
        return int(value) if value is not None else 0  # discovery already refused non-integers
    except (TypeError, ValueError):
        raise invalid_argument(f"Invalid value for {key}: {value!r}.") from None


def parse_cidr_28(text: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        raise invalid_argument(f"Invalid IP CIDR range '{text}': expected an IPv4 network address with a /28 "
                               "netmask, e.g. 10.8.0.0/28.") from None
    if network.prefixlen != CONNECTOR_SUBNET_PREFIX_LENGTH:
        raise invalid_argument(f"Invalid IP CIDR range '{text}': a connector's IP CIDR range must be a /28 "
                               f"(got /{network.prefixlen}).")
    return network


# ---- the firewall rules Google creates -----------------------------------------------------------
@dataclass(frozen=True)
class RuleShape:
    suffix: str
    direction: str
    priority: int
    action: str  # "allowed" | "denied"
    protocols: tuple[tuple[str, tuple[str, ...]], ...]
    broad: bool = False  # the connector -> whole VPC allow rules (docs/gcp-facts.md §11)


_INFRA_PROTOCOLS = (("tcp", ("667",)), ("udp", ("665-666",)), ("icmp", ()))
_ALL_PROTOCOLS = (("tcp", ()), ("udp", ()), ("icmp", ()))

# docs/gcp-facts.md §1.2 table, in Google's order.
RULE_SHAPES: tuple[RuleShape, ...] = (
    RuleShape("hcfw", "INGRESS", 100, "allowed", (("tcp", ("667",)),)),
    RuleShape("rsgfw", "INGRESS", 100, "allowed", _INFRA_PROTOCOLS),
    RuleShape("earfw", "EGRESS", 100, "allowed", _INFRA_PROTOCOLS),
    RuleShape("egrfw", "EGRESS", 100, "denied", (("tcp", ("1-666", "668-65535")), ("udp", ("1-664", "667-65535")))),
    RuleShape("sbntfw", "INGRESS", 1000, "allowed", _ALL_PROTOCOLS, broad=True),
    RuleShape("tagfw", "INGRESS", 1000, "allowed", _ALL_PROTOCOLS, broad=True),
)


def plan_firewall_rules(spec: ConnectorSpec, network_link: str, *, broad_visible: bool) -> list[dict[str, Any]]:
    """The compute Firewall bodies Google inserts for a READY connector (pure)."""
    tag = connector_tag(spec.region, spec.name)
    rules = []
    for shape in RULE_SHAPES:
        if shape.broad and not broad_visible:
            continue
        body: dict[str, Any] = {
            "name": aet_name(spec.region, spec.name, shape.suffix),
            "network": network_link,
            "direction": shape.direction,
            "priority": shape.priority,
            shape.action: [{"IPProtocol": p, **({"ports": list(ports)} if ports else {})} for p, ports in shape.protocols],
        }
        if shape.suffix == "hcfw":
            body.update(sourceRanges=list(HEALTH_CHECK_RANGES), targetTags=infra_target_tags(tag))
        elif shape.suffix == "rsgfw":
            body.update(sourceRanges=[SERVERLESS_INFRA_RANGE], targetTags=infra_target_tags(tag))
        elif shape.direction == "EGRESS":
            body.update(destinationRanges=[SERVERLESS_INFRA_RANGE], targetTags=infra_target_tags(tag))
        elif shape.suffix == "sbntfw":
            body.update(sourceRanges=[spec.source_cidr])  # no target: every VM of the VPC
        else:  # tagfw
            body.update(sourceTags=broad_rule_source_tags(tag))
        rules.append(body)
    return rules


# ---- the backend ------------------------------------------------------------------------------------
FailWith = Callable[[], ApiError | None]


class VpcAccessBackend:
    """Connectors of every project and region. Registered as ``world.backends["vpcaccess"]``."""

    def __init__(self, world, operations) -> None:
        self.world = world
        self.operations = operations

    # -- lookups other backends use --
    def connector(self, project: str, region: str, name: str) -> dict[str, Any] | None:
        """The connector (a copy, v1 view) or None. Cloud Run checks references with it."""
        with self.world.lock:
            found = self.world.table(CONNECTORS).get((project, region, name))
            return view(found, "v1") if found else None

    def mark_connected(self, project: str, region: str, name: str, user_project: str) -> None:
        """Record a project whose workloads use the connector (output-only ``connectedProjects``)."""
        with self.world.lock:
            found = self.world.table(CONNECTORS).get((project, region, name))
            if found is not None and user_project not in found.setdefault("connectedProjects", []):
                found["connectedProjects"].append(user_project)

    def project_with_number(self, number: str) -> str | None:
        """The project id behind a project number, among the projects that hold connectors (a Shared VPC
        host named by number in a workload's connector reference)."""
        with self.world.lock:
            projects = {p for (p, _, _) in self.world.table(CONNECTORS)}
        return next((p for p in sorted(projects) if project_number(p) == number), None)

    # -- reads --
    def get(self, project: str, region: str, name: str, api_version: str) -> dict[str, Any]:
        check_parent(project, region)
        with self.world.lock:
            found = self.world.table(CONNECTORS).get((project, region, name))
            if found is None:
                raise connector_not_found()
            return view(found, api_version)

    def list(self, project: str, region: str, api_version: str) -> list[dict[str, Any]]:
        check_parent(project, region)
        with self.world.lock:
            items = [view(c, api_version) for (p, r, _), c in self.world.table(CONNECTORS).items()
                     if p == project and r == region]
        return sorted(items, key=lambda c: c["name"])

    def operation(self, name: str) -> Operation:
        return self.operations.owned(OPERATIONS, name)

    def operations_in(self, project: str, region: str) -> list[Operation]:
        check_parent(project, region)
        return self.operations.owned_in(OPERATIONS, project, region)

    # -- create --
    def parse_create(self, project: str, region: str, connector_id: str | None, body: dict[str, Any]) -> ConnectorSpec:
        """Every check Google makes before it accepts a create (raises ApiError 400)."""
        check_parent(project, region)
        name = check_connector_id(connector_id)
        machine_type = body.get("machineType") or DEFAULT_MACHINE_TYPE
        if machine_type not in MACHINE_TYPES:
            raise invalid_argument(f"Invalid machine type '{machine_type}'. Supported machine types are: "
                                   f"{', '.join(MACHINE_TYPES)}.")
        scaling = parse_scaling(body)
        subnet = body.get("subnet") or {}
        subnet_name, cidr = subnet.get("name"), body.get("ipCidrRange")
        if subnet_name and cidr:
            raise invalid_argument("Only one of 'subnet' or 'ip_cidr_range' may be specified for a connector.")
        if not subnet_name and not cidr:
            raise invalid_argument("Either 'subnet' or 'ip_cidr_range' together with 'network' must be specified "
                                   "for a connector.")
        common = dict(project=project, region=region, name=name, machine_type=machine_type, scaling=scaling)
        if subnet_name:
            return self._subnet_spec(common, subnet_name, subnet.get("projectId") or project)
        return self._range_spec(common, cidr, body.get("network"))

    def _subnet_spec(self, common: dict[str, Any], subnet_name: str, subnet_project: str) -> ConnectorSpec:
        region = common["region"]
        if not _COMPUTE_NAME.fullmatch(subnet_name):
            raise invalid_argument(f"Invalid subnet name '{subnet_name}'.")
        if not _PROJECT.fullmatch(subnet_project):
            raise invalid_argument(f"Invalid subnet project id '{subnet_project}'.")
        found = compute_port(self.world).subnetwork(subnet_project, region, subnet_name)
        if found is None:
            raise invalid_argument(f"Subnet '{subnet_name}' was not found in project '{subnet_project}', "
                                   f"region '{region}'.")
        cidr = found.get("ipCidrRange", "")
        prefix = cidr.rpartition("/")[2]
        if prefix != str(CONNECTOR_SUBNET_PREFIX_LENGTH):
            raise invalid_argument(
                f"Subnet '{subnet_name}' has IP CIDR range {cidr} (/{prefix}); a Serverless VPC Access connector "
                f"requires its own /28 subnet, used by no other resource.")
        user = self._subnet_user(subnet_project, region, subnet_name)
        if user is not None:
            raise invalid_argument(f"Subnet '{subnet_name}' is already used by connector '{user}'; each connector "
                                   "requires its own /28 subnet.")
        # gcloud sends network "default" with --subnet (docs/gcp-facts.md §10): the subnet names the network.
        network = _last_segment(found.get("network", ""))
        return ConnectorSpec(**common, network=network, network_project=subnet_project, subnet=subnet_name,
                             source_cidr=cidr)

    def _range_spec(self, common: dict[str, Any], cidr: str, network: str | None) -> ConnectorSpec:
        project = common["project"]
        block = parse_cidr_28(cidr)
        if not network:
            raise invalid_argument("'network' must be specified together with 'ip_cidr_range'.")
        network_name = _last_segment(network)
        if not _COMPUTE_NAME.fullmatch(network_name):
            raise invalid_argument(f"Invalid network name '{network}'.")
        if compute_port(self.world).network(project, network_name) is None:
            raise invalid_argument(f"Network '{network_name}' was not found in project '{project}'.")
        return ConnectorSpec(**common, network=network_name, network_project=project, ip_cidr_range=str(block),
                             source_cidr=str(block))

    def _subnet_user(self, project: str, region: str, subnet: str) -> str | None:
        for (p, r, n), c in self.world.table(CONNECTORS).items():
            if r != region:  # the cheap test first: this scan runs twice per create (make bench seeds 5,000)
                continue
            sub = c.get("subnet") or {}
            if sub.get("name") == subnet and (sub.get("projectId") or p) == project:
                return f"projects/{p}/locations/{r}/connectors/{n}"
        return None

    def create(self, spec: ConnectorSpec, *, api_version: str, fail_with: ApiError | None) -> Operation:
        key = (spec.project, spec.region, spec.name)
        w = self.world
        with w.lock:
            if key in w.table(CONNECTORS):
                raise ApiError(409, "Requested entity already exists", status="ALREADY_EXISTS", reason="alreadyExists")
            if spec.subnet and self._subnet_user(spec.network_project, spec.region, spec.subnet) is not None:
                raise invalid_argument(f"Subnet '{spec.subnet}' is already used by another connector.")
            connector: dict[str, Any] = {
                "name": spec.resource_name,
                "network": spec.network,
                **({"ipCidrRange": spec.ip_cidr_range} if spec.ip_cidr_range else {}),
                **({"subnet": {"name": spec.subnet, "projectId": spec.network_project}} if spec.subnet else {}),
                "state": "CREATING",
                "machineType": spec.machine_type,
                **spec.scaling.fields(),
                "createTime": w.rfc3339(),
            }
            w.table(CONNECTORS)[key] = connector
            w.table(EFFECTS)[key] = {"rules": [], "hiddenSubnet": None}
            op = self._start(spec.project, spec.region, spec.resource_name, api_version, "Create",
                             apply=lambda: self._finish_create(spec, api_version), fail_with=fail_with)
            if fail_with is not None:  # an injected failure leaves the connector as Google would: ERROR
                op.on_done.append(lambda _op: self._set_state(key, "ERROR"))
        return op

    def _finish_create(self, spec: ConnectorSpec, api_version: str) -> dict[str, Any]:
        """Runs under the world lock when the create operation completes."""
        key = (spec.project, spec.region, spec.name)
        connector = self.world.table(CONNECTORS).get(key)
        if connector is None or connector.get("state") != "CREATING":
            raise ApiError(409, "Operation failed: the connector was deleted while it was being created.",
                           status="ABORTED", reason="aborted")
        compute = compute_port(self.world)
        if spec.scaling.max_instances is None:
            connector["state"] = "ERROR"
            raise invalid_argument(MISSING_MAX_MESSAGE)
        if spec.ip_cidr_range and compute.range_conflicts(spec.project, spec.network, spec.ip_cidr_range):
            connector["state"] = "ERROR"
            raise invalid_argument(CIDR_CONFLICT_MESSAGE)
        effects = self.world.table(EFFECTS).setdefault(key, {"rules": [], "hiddenSubnet": None})
        try:
            self._apply_side_effects(spec, compute, effects)
        except ApiError as exc:  # e.g. a user rule already holds an aet-* name: the connector fails
            connector["state"] = "ERROR"
            raise ApiError(exc.code if exc.code < 500 else 500, f"Operation failed: {exc.message}",
                           status=exc.status, reason=exc.reason) from None
        connector["state"] = "READY"
        return {"@type": CONNECTOR_TYPE_URL, **view(connector, api_version)}

    def _apply_side_effects(self, spec: ConnectorSpec, compute: "ComputePort", effects: dict[str, Any]) -> None:
        """What Google does in the VPC as a connector becomes READY (recorded in ``effects`` as it goes,
        so a delete removes exactly what was made)."""
        if spec.ip_cidr_range:
            hidden = hidden_subnet_name(spec.region, spec.name)
            compute.register_hidden_subnet(spec.project, spec.region, spec.network, hidden, spec.ip_cidr_range)
            effects["hiddenSubnet"] = hidden
        if spec.network_project != spec.project:  # Shared VPC service projects get no rules (docs/gcp-facts.md §1.3)
            return
        link = self.world.self_link(f"projects/{spec.network_project}/global/networks/{spec.network}")
        broad_visible = self.world.config.connector_broad_rules == "visible"
        agent = SERVICE_AGENT.format(number=project_number(spec.project))
        for rule in plan_firewall_rules(spec, link, broad_visible=broad_visible):
            compute.insert_firewall(spec.network_project, rule, agent)
            effects["rules"].append(rule["name"])

    def _set_state(self, key: tuple[str, str, str], state: str) -> None:
        with self.world.lock:
            found = self.world.table(CONNECTORS).get(key)
            if found is not None:
                found["state"] = state

    # -- delete --
    def delete(self, project: str, region: str, name: str, *, api_version: str,
               fail_with: ApiError | None) -> Operation:
        check_parent(project, region)
        key = (project, region, name)
        w = self.world
        with w.lock:
            connector = w.table(CONNECTORS).get(key)
            if connector is None:
                raise connector_not_found()
            # UNCONFIRMED: Google's answer to deleting a connector still being created or deleted.
            if connector.get("state") in ("CREATING", "DELETING"):
                raise failed_precondition(f"Connector '{name}' is {connector['state'].lower()}; retry when the "
                                          "operation in progress has completed.")
            previous = connector["state"]
            connector["state"] = "DELETING"
            op = self._start(project, region, connector["name"], api_version, "Delete",
                             apply=lambda: self._finish_delete(key), fail_with=fail_with)
            if fail_with is not None:
                op.on_done.append(lambda _op: self._set_state(key, previous))
        return op

    def _finish_delete(self, key: tuple[str, str, str]) -> dict[str, Any]:
        project, region, _ = key
        connector = self.world.table(CONNECTORS).pop(key, None)
        effects = self.world.table(EFFECTS).pop(key, None) or {}
        if connector is not None:
            compute = compute_port(self.world)
            if effects.get("hiddenSubnet"):
                compute.unregister_hidden_subnet(project, region, connector.get("network", ""), effects["hiddenSubnet"])
            if AET_RULES_REMOVED_ON_DELETE:
                agent = SERVICE_AGENT.format(number=project_number(project))
                for rule in effects.get("rules", []):
                    compute.delete_firewall(project, rule, agent)
        return {"@type": EMPTY_TYPE_URL}

    # -- operations --
    def _start(self, project: str, region: str, target: str, api_version: str, verb: str, *,
               apply: Callable[[], dict[str, Any]], fail_with: ApiError | None) -> Operation:
        name = f"projects/{project}/locations/{region}/operations/{uuid.uuid4()}"
        metadata = {"@type": METADATA_TYPE_URL, "method": method_name(api_version, verb),
                    "createTime": self.world.rfc3339(), "target": target}
        self.world.table(OPERATIONS)[name] = api_version
        return self.operations.start_lro(name=name, metadata=metadata, delay=self.world.config.connector_ready_delay_s,
                                         apply=apply, fail_with=fail_with)

    def reset(self) -> None:
        """World.reset clears the tables; nothing else is kept here."""


def view(connector: dict[str, Any], api_version: str) -> dict[str, Any]:
    """The connector as the ``api_version`` returns it (a copy)."""
    out = copy.deepcopy(connector)
    if api_version == "v1":
        for key in _V1BETA1_ONLY_FIELDS:
            out.pop(key, None)
    if not out.get("connectedProjects"):
        out.pop("connectedProjects", None)  # proto3 JSON omits an empty repeated field
    return out


def operation_view(op: Operation) -> dict[str, Any]:
    return op.snapshot()


def _last_segment(link: str) -> str:
    return link.rstrip("/").rpartition("/")[2]


# ---- the compute backend, as this service uses it ---------------------------------------------------
class ComputePort:
    """The few compute operations VPC Access needs, over the compute backend's own functions.

    Kept in one place so a change of the compute backend's names touches only this class.
    """

    def __init__(self, compute: Any) -> None:
        self.compute = compute

    def subnetwork(self, project: str, region: str, name: str) -> dict[str, Any] | None:
        return self.compute.subnetwork(project, region, name)

    def network(self, project: str, name: str) -> dict[str, Any] | None:
        return self.compute.network(project, name)

    def range_conflicts(self, project: str, network: str, cidr: str) -> bool:
        block = ipaddress.IPv4Network(cidr)
        for subnet in self.compute.subnetworks_of_network(project, network):
            for text in _subnet_ranges(subnet):
                try:
                    if block.overlaps(ipaddress.IPv4Network(text, strict=False)):
                        return True
                except ValueError:
                    continue
        return False

    def register_hidden_subnet(self, project: str, region: str, network: str, name: str, cidr: str) -> None:
        self.compute.register_hidden_subnet(project, region, network, name, cidr)

    def unregister_hidden_subnet(self, project: str, region: str, network: str, name: str) -> None:
        self.compute.unregister_hidden_subnet(project, region, network, name)

    def insert_firewall(self, project: str, body: dict[str, Any], principal: str) -> None:
        self.compute.firewall_insert_internal(project, body, principal)

    def delete_firewall(self, project: str, name: str, principal: str) -> None:
        self.compute.firewall_delete_internal(project, name, principal)


def _subnet_ranges(subnet: dict[str, Any]) -> Iterable[str]:
    if subnet.get("ipCidrRange"):
        yield subnet["ipCidrRange"]
    for secondary in subnet.get("secondaryIpRanges") or []:
        if secondary.get("ipCidrRange"):
            yield secondary["ipCidrRange"]


def compute_port(world) -> ComputePort:
    compute = world.backends.get("compute")
    if compute is None:
        raise ApiError(503, "localcloud: the compute backend is not loaded; VPC Access needs it.",
                       status="UNAVAILABLE", reason="backendError")
    return ComputePort(compute)
