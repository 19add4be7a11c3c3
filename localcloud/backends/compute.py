"""Compute Engine v1: networks, subnetworks, firewalls, routers (Cloud NAT), addresses.

State and Google's rules only, no HTTP (``localcloud/routes/compute.py`` turns requests into calls
here). Resources are kept as the JSON Google returns, in ``world`` tables. A write is *planned*
at the call (checked against the current state, refused synchronously with Google's 400/404/409)
and *applied* when its operation completes (checked again there, as the state may have changed
meanwhile; a failure then ends the operation DONE with ``error``, as Google's network delete
does when a firewall still uses the network; reference/gcp-http-logs/NOTES.md §2).

Shapes follow the REAL recordings in reference/gcp-http-logs (its NOTES.md §4): only the
fields Google returns, no empty lists, links in Google's https://www.googleapis.com/compute/v1/
form whatever form the request used. Where Google's behaviour is not documented or recorded the
choice is one constant with a comment saying so (UNCONFIRMED).

Used by other backends (VPC Access):
``network``, ``subnetwork``, ``subnetworks_of_network``, ``register_hidden_subnet``,
``unregister_hidden_subnet``, ``firewall_insert_internal``, ``firewall_delete_internal``.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import hashlib
import ipaddress
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from localcloud.errors import ApiError, already_exists, invalid, not_found, precondition

# ---- Google's name rules ------------------------------------------------------------------------
NAME_REGEX_TEXT = "(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)"  # as Google quotes it in its 400 message
_NAME = re.compile(NAME_REGEX_TEXT)
# Path parameters accept a name or a numeric id (compute.v1.json parameter patterns).
_NAME_OR_ID_TEXT = "[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?|[1-9][0-9]{0,19}"
_NAME_OR_ID = re.compile(_NAME_OR_ID_TEXT)
_REGION_TEXT = "[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
_REGION = re.compile(_REGION_TEXT)
_PROJECT_TEXT = ("(?:(?:[-a-z0-9]{1,63}\\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?"
                 "(?:[0-9]{1,19}|(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?))")
_PROJECT = re.compile(_PROJECT_TEXT)
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")

# Google's public regions (2025). A region outside this list is refused as Google does
# ("Unknown region."); add one here when a test needs it.
KNOWN_REGIONS: frozenset[str] = frozenset({
    "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
    "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2", "australia-southeast1",
    "australia-southeast2", "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
    "europe-west1", "europe-west10", "europe-west12", "europe-west2", "europe-west3", "europe-west4",
    "europe-west6", "europe-west8", "europe-west9", "me-central1", "me-central2", "me-west1",
    "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1", "southamerica-east1",
    "southamerica-west1", "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1",
    "us-west2", "us-west3", "us-west4",
})

# An auto-mode network gets one subnet per region. Google creates one in *every* region; localcloud
# keeps to these (Google's real auto-mode ranges for them) so a listing stays readable. A
# deliberate reduction: add regions here if a scenario needs them.
AUTO_MODE_SUBNET_RANGES: Mapping[str, str] = {
    "us-central1": "10.128.0.0/20",
    "europe-west1": "10.132.0.0/20",
    "us-west1": "10.138.0.0/20",
    "asia-east1": "10.140.0.0/20",
    "us-east1": "10.142.0.0/20",
    "europe-west2": "10.154.0.0/20",
    "europe-west3": "10.156.0.0/20",
    "europe-west4": "10.164.0.0/20",
}

# External addresses are handed out from documentation ranges (RFC 5737), never real public IPs.
EXTERNAL_ADDRESS_POOLS: tuple[ipaddress.IPv4Network, ...] = (
    ipaddress.IPv4Network("203.0.113.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
)

DEFAULT_FIREWALL_PRIORITY = 1000
FIREWALL_PROTOCOLS = frozenset({"tcp", "udp", "icmp", "esp", "ah", "ipip", "sctp", "all"})
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "6", "17", "132"})
SUBNET_PREFIX_RANGE = (8, 29)  # Google: IPv4 subnet ranges from /8 to /29
MAX_RESULTS_LIMIT = 500  # Compute's list maximum (and gcloud's page size)
EMPTY_LABEL_FINGERPRINT = "42WmSpB8rSM="  # the labelFingerprint Google shows for an empty label set
NAT_DEFAULT_TCP_TIME_WAIT_S = 120  # effectiveTcpTimeWaitTimeoutSec when unset (REAL recordings)
# Proxy-only subnets show ``state`` (READY); others have none (its NOTES.md §4). Seen on a
# REGIONAL_MANAGED_PROXY subnet (networksecurity-...-maximal._audit_probe.log, probably REAL); the other
# proxy-only purposes likewise (Subnetwork.state's description names INTERNAL_HTTPS_LOAD_BALANCER): UNCONFIRMED.
PROXY_SUBNET_PURPOSES = frozenset({"REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY", "INTERNAL_HTTPS_LOAD_BALANCER"})
NAT_LOG_DEFAULT_FILTER = "ALL"  # logConfig.filter when logging is enabled without one (Google's default)

# Monitored-resource types and labels of the audit entries for each kind. gce_router,
# gce_firewall_rule, gce_network, gce_subnetwork follow the Cloud Logging resource list;
# UNCONFIRMED: the type Compute writes for regional address writes.
ADDRESS_RESOURCE_TYPE = "gce_reserved_address"

# UNCONFIRMED wordings (no recording or public trace found); each is one sentence that says what to fix.
MSG_ALL_SUBNETWORKS_NEEDS_SOLE_NAT = (
    "Can not create a Nat with option {option} since other Nats exist for network '{network}' in region "
    "'{region}': a Nat covering all subnetworks must be the only Nat of its network and region.")
MSG_BAD_FINGERPRINT = "Supplied fingerprint does not match current fingerprint."
MSG_BAD_PAGE_TOKEN = "Invalid page token."

# Google's own words, from public error traces of real API answers (terraform-provider-google and
# terraform-google-modules issues, google/osv.dev PR 5629, forseti-security issue 203).
MSG_NAT_ALL_EXISTS = "Can not create new Nats since a Nat with option {option} exists."
MSG_NAT_RANGE_TAKEN = ("Can not specify {wanted} for the Subnetwork since it is already configured for Nat "
                       "with the option {existing}.")
MSG_NAT_SUBNET_ALL_TAKEN = ("The subnetwork is already configured with ALL_IP_RANGES for Nat which conflicts "
                            "with the specified IpRangeToNatOption options in this Nat.")
MSG_LABELS_FINGERPRINT = "Labels fingerprint either invalid or resource labels have changed"

# ---- tables -------------------------------------------------------------------------------------
NETWORKS = "compute.networks"  # (project, name)
SUBNETWORKS = "compute.subnetworks"  # (project, region, name)
HIDDEN_SUBNETS = "compute.hidden_subnetworks"  # (project, region, name): connectors' ranges, not listed
AUTO_SUBNETS = "compute.auto_subnetworks"  # (project, region, name) -> True: removed with their network
FIREWALLS = "compute.firewalls"  # (project, name)
ROUTERS = "compute.routers"  # (project, region, name)
ADDRESSES = "compute.addresses"  # (project, region, name)
DELETED_OPERATIONS = "compute.deleted_operations"  # operation path -> True (operations.delete)

_OUTPUT_ONLY_COMMON = frozenset({"kind", "id", "creationTimestamp", "selfLink", "selfLinkWithId"})


# ---- the plan a write hands to the route --------------------------------------------------------
@dataclass(frozen=True)
class Mutation:
    """A checked write: the route starts a compute operation that runs ``apply`` when it completes."""

    project: str
    region: str | None
    operation_type: str  # as Google writes it: insert, delete, patch, update, setLabels, ...
    target_link: str
    target_id: str
    resource_name: str  # for the audit entry, e.g. projects/P/global/firewalls/N
    resource_type: str  # gce_firewall_rule, gce_router, gce_network, gce_subnetwork, ...
    resource_labels: Mapping[str, str]
    apply: Callable[[], None]
    done_at_once: bool = False  # Google answers setLabels with an operation already DONE (REAL)


@dataclass(frozen=True)
class ListQuery:
    """The list parameters, parsed once: ``filter``, ``maxResults``, ``pageToken``, ``orderBy``."""

    filter_text: str = ""
    max_results: int = MAX_RESULTS_LIMIT
    page_token: str = ""
    order_by: str = ""
    matcher: "Callable[[Mapping[str, Any]], bool]" = field(default_factory=lambda: _match_all, compare=False)

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> "ListQuery":
        text = query.get("filter", "") or ""
        raw_max = query.get("maxResults", "")
        max_results = MAX_RESULTS_LIMIT
        if raw_max != "":
            try:
                max_results = int(raw_max)
            except ValueError:
                raise _field_error("maxResults", raw_max, "Must be an integer.") from None
            if max_results < 0:
                raise _field_error("maxResults", raw_max, "Must be greater than or equal to 0")
            if max_results > MAX_RESULTS_LIMIT:
                raise _field_error("maxResults", raw_max, f"Must be less than or equal to {MAX_RESULTS_LIMIT}")
            max_results = max_results or MAX_RESULTS_LIMIT
        order_by = (query.get("orderBy", "") or "").strip()
        if order_by and order_by not in ("name", "name asc", "creationTimestamp desc"):
            raise _field_error("orderBy", order_by,
                               "Only sorting by name or creationTimestamp desc is supported.")
        matcher = compile_filter(text) if text.strip() else _match_all
        return cls(text, max_results, query.get("pageToken", "") or "", order_by, matcher)

    def page(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        """Filter, order and cut one page; returns the page and the next page token (or None)."""
        selected = [item for item in items if self.matcher(item)]
        if self.order_by == "creationTimestamp desc":
            selected.sort(key=lambda r: str(r.get("creationTimestamp", "")), reverse=True)
        else:
            selected.sort(key=lambda r: str(r.get("name", "")))
        start = self._offset()
        end = start + self.max_results
        token = _page_token(end, self._fingerprint()) if end < len(selected) else None
        return selected[start:end], token

    def _fingerprint(self) -> str:
        return hashlib.sha256(f"{self.filter_text}\0{self.order_by}".encode()).hexdigest()[:12]

    def _offset(self) -> int:
        if not self.page_token:
            return 0
        try:
            decoded = json.loads(base64.urlsafe_b64decode(self.page_token.encode() + b"==").decode())
            offset, fingerprint = int(decoded["o"]), str(decoded["q"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            raise _field_error("pageToken", self.page_token, MSG_BAD_PAGE_TOKEN) from None
        if offset < 0 or fingerprint != self._fingerprint():
            raise _field_error("pageToken", self.page_token, MSG_BAD_PAGE_TOKEN)
        return offset


def _match_all(_resource: Mapping[str, Any]) -> bool:
    return True


def _page_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ---- errors in Google's words -------------------------------------------------------------------
def _field_error(name: str, value: Any, why: str) -> ApiError:
    return invalid(f"Invalid value for field '{name}': '{_text(value)}'. {why}")


def _required(name: str) -> ApiError:
    return ApiError(400, f"Required field '{name}' not specified", reason="required")


def _bad_parameter(value: str, pattern: str) -> ApiError:
    return ApiError(400, f"Invalid value '{value}'. Values must match the following regular expression: "
                         f"'{pattern}'", reason="invalidParameter")


def _in_use(kind: str, path: str, user_path: str) -> ApiError:
    return ApiError(400, f"The {kind} resource '{path}' is already being used by '{user_path}'",
                    reason="resourceInUseByAnotherResource")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


# ---- links --------------------------------------------------------------------------------------
_LINK_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://[^/]+)?/*(?:compute/(?:v1|beta|alpha)/)?")


def _relative(link: str) -> str:
    """``https://www.googleapis.com/compute/v1/projects/...``, ``http://127.0.0.1:PORT/compute/v1/...``,
    ``/compute/v1/projects/...`` and ``projects/...`` all become ``projects/...``."""
    return _LINK_HOST.sub("", link.strip(), count=1)


_NETWORK_REF = re.compile(r"(?:projects/(?P<project>[^/]+)/)?(?:global/)?networks/(?P<name>[^/]+)")
_REGIONAL_REF = {
    kind: re.compile(rf"(?:projects/(?P<project>[^/]+)/)?(?:regions/(?P<region>[^/]+)/)?{kind}/(?P<name>[^/]+)")
    for kind in ("subnetworks", "addresses", "routers")
}
_REGION_REF = re.compile(r"(?:projects/[^/]+/)?(?:global/)?regions/(?P<region>[^/]+)")


@dataclass(frozen=True)
class Ref:
    project: str
    region: str | None
    name: str


def parse_network_ref(value: Any, project: str, field_name: str) -> Ref:
    """A network named by full URL, any partial URL, or bare name (as the discovery doc allows)."""
    if not isinstance(value, str) or not value.strip():
        raise _required(field_name)
    rel = _relative(value)
    m = _NETWORK_REF.fullmatch(rel)
    if m:
        ref = Ref(m.group("project") or project, None, m.group("name"))
    elif "/" not in rel:
        ref = Ref(project, None, rel)
    else:
        raise _field_error(field_name, value, "The URL is malformed.")
    _check_ref(ref, value, field_name)
    return ref


def parse_regional_ref(value: Any, kind: str, project: str, region: str, field_name: str) -> Ref:
    """A subnetwork/address/router named by full URL, partial URL, or bare name (in ``region``)."""
    if not isinstance(value, str) or not value.strip():
        raise _required(field_name)
    rel = _relative(value)
    m = _REGIONAL_REF[kind].fullmatch(rel)
    if m:
        ref = Ref(m.group("project") or project, m.group("region") or region, m.group("name"))
    elif "/" not in rel:
        ref = Ref(project, region, rel)
    else:
        raise _field_error(field_name, value, "The URL is malformed.")
    _check_ref(ref, value, field_name)
    return ref


def _check_ref(ref: Ref, value: str, field_name: str) -> None:
    if not _PROJECT.fullmatch(ref.project) or not _NAME.fullmatch(ref.name) or (
            ref.region is not None and not _REGION.fullmatch(ref.region)):
        raise _field_error(field_name, value, "The URL is malformed.")


def _region_of(value: Any, field_name: str) -> str:
    """The region a body names (``regions/R``, a URL, ``projects/P/global/regions/R`` as Terraform
    sends (REAL), or a bare name)."""
    if not isinstance(value, str) or not value.strip():
        raise _field_error(field_name, value, "The URL is malformed.")
    rel = _relative(value)
    m = _REGION_REF.fullmatch(rel)
    name = m.group("region") if m else rel
    if "/" in name or not _REGION.fullmatch(name):
        raise _field_error(field_name, value, "The URL is malformed.")
    return name


# ---- small helpers ------------------------------------------------------------------------------
def _fingerprint() -> str:
    """An opaque fingerprint as Google writes one (8 bytes, base64: 12 characters)."""
    return base64.b64encode(secrets.token_bytes(8)).decode()


def _labels_fingerprint(labels: Mapping[str, str]) -> str:
    if not labels:
        return EMPTY_LABEL_FINGERPRINT
    digest = hashlib.sha256(json.dumps(dict(sorted(labels.items()))).encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch, as Compute's PATCH uses: objects merge, ``null`` removes,
    arrays (and every other value) replace wholesale."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _object(body: Any, name: str = "resource") -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid(f"Invalid JSON payload received. '{name}' must be a JSON object.")
    return body


def _present(body: Mapping[str, Any], key: str) -> bool:
    return body.get(key) is not None


def _str_list(body: Mapping[str, Any], key: str, field_name: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _field_error(field_name, value, "Must be a list of strings.")
    return list(value)


def _bool(body: Mapping[str, Any], key: str, field_name: str, default: bool | None = None) -> bool | None:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _field_error(field_name, value, "Must be a boolean.")
    return value


def _int(body: Mapping[str, Any], key: str, field_name: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _field_error(field_name, value, "Must be an integer.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _field_error(field_name, value, "Must be an integer.") from None


def _check_name(value: Any, field_name: str = "resource.name") -> str:
    if value is None or value == "":
        raise _required(field_name)
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _field_error(field_name, value, f"Must be a match of regex '{NAME_REGEX_TEXT}'")
    return value


def _parse_cidr(value: Any, field_name: str, *, v4_only: bool = False) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str):
        raise _field_error(field_name, value, "Must be a CIDR range.")
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise _field_error(field_name, value, "Must be a valid CIDR range.") from None
    if v4_only and net.version != 4:
        raise _field_error(field_name, value, "Must be an IPv4 CIDR range.")
    return net


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    """Google returns no null and no empty list (proto3 JSON omits them)."""
    return {k: v for k, v in body.items() if v is not None and v != []}


# =================================================================================================
class ComputeBackend:
    """All Compute state of the world. Registered as ``world.backends["compute"]``."""

    def __init__(self, world) -> None:
        self.world = world

    def reset(self) -> None:
        """World.reset clears the tables; nothing else is kept here."""

    # ---- path parameters ----------------------------------------------------------------------
    @staticmethod
    def check_project(project: str) -> None:
        if not _PROJECT.fullmatch(project or ""):
            raise _bad_parameter(project, _PROJECT_TEXT)

    @staticmethod
    def check_region(region: str) -> None:
        if not _REGION.fullmatch(region or ""):
            raise _bad_parameter(region, _REGION_TEXT)
        if region not in KNOWN_REGIONS:
            raise _field_error("region", region, "Unknown region.")

    @staticmethod
    def check_resource_param(value: str) -> None:
        if not _NAME_OR_ID.fullmatch(value or ""):
            raise _bad_parameter(value, _NAME_OR_ID_TEXT)

    def _scope(self, project: str, region: str | None, name: str | None = None) -> None:
        self.check_project(project)
        if region is not None:
            self.check_region(region)
        if name is not None:
            self.check_resource_param(name)

    # ---- generic table access -----------------------------------------------------------------
    def _table(self, kind: str) -> dict[Any, dict[str, Any]]:
        return self.world.table(kind)

    def _find(self, kind: str, prefix: tuple[str, ...], name_or_id: str) -> tuple[tuple, dict[str, Any]] | None:
        """A resource by name, or by numeric id as Google's paths also allow."""
        table = self._table(kind)
        key = (*prefix, name_or_id)
        if key in table:
            return key, table[key]
        if name_or_id.isdigit():
            for k, body in table.items():
                if k[:-1] == prefix and body.get("id") == name_or_id:
                    return k, body
        return None

    def _link(self, path: str) -> str:
        return self.world.self_link(path)

    # =============================================================================================
    # networks
    # =============================================================================================
    def network(self, project: str, name: str) -> dict[str, Any] | None:
        """A copy of the network, or None (for other backends)."""
        with self.world.lock:
            found = self._table(NETWORKS).get((project, name))
            return copy.deepcopy(found) if found else None

    def network_get(self, project: str, network: str) -> dict[str, Any]:
        self._scope(project, None, network)
        with self.world.lock:
            found = self._find(NETWORKS, (project,), network)
            if not found:
                raise not_found(f"projects/{project}/global/networks/{network}")
            return copy.deepcopy(found[1])

    def network_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, None)
        with self.world.lock:
            items = [copy.deepcopy(v) for k, v in self._table(NETWORKS).items() if k[0] == project]
        return self._list_body("compute#networkList", f"projects/{project}/global/networks", items, query)

    def network_insert(self, project: str, body: Any) -> Mutation:
        self._scope(project, None)
        body = _object(body)
        name = _check_name(body.get("name"))
        path = f"projects/{project}/global/networks/{name}"
        network = self._network_fields(body)
        auto = network.get("autoCreateSubnetworks") is True
        network_id = self.world.new_id()
        with self.world.lock:
            if (project, name) in self._table(NETWORKS):
                raise already_exists(path)

        def apply() -> None:
            if (project, name) in self._table(NETWORKS):
                raise already_exists(path)
            stored = {
                "kind": "compute#network", "id": network_id, "creationTimestamp": self.world.compute_timestamp(),
                "name": name, **network, "selfLink": self._link(path),
                "selfLinkWithId": self._link(f"projects/{project}/global/networks/{network_id}"),
            }
            self._table(NETWORKS)[(project, name)] = stored
            if auto:
                for region, cidr in AUTO_MODE_SUBNET_RANGES.items():
                    self._store_subnetwork(project, region, {
                        "name": name, "network": stored["selfLink"], "ipCidrRange": cidr,
                    }, self.world.new_id())
                    self._table(AUTO_SUBNETS)[(project, region, name)] = True
                self._refresh_network_subnets(project, name)

        return self._mutation(project, None, "insert", path, network_id, apply, "gce_network",
                              {"network_id": network_id, "project_id": project})

    def _network_fields(self, body: Mapping[str, Any]) -> dict[str, Any]:
        auto = _bool(body, "autoCreateSubnetworks", "resource.autoCreateSubnetworks")
        if auto is None:
            # Google creates a *legacy* network then, a mode nothing here uses.
            raise _field_error("resource.autoCreateSubnetworks", "",
                               "localcloud emulates VPC networks only: set autoCreateSubnetworks to true (auto "
                               "mode) or false (custom mode); legacy networks are not emulated.")
        if _present(body, "IPv4Range"):
            raise _field_error("resource.IPv4Range", body["IPv4Range"],
                               "IPv4Range is only valid for legacy networks.")
        out: dict[str, Any] = {"autoCreateSubnetworks": auto}
        if _present(body, "description"):
            out["description"] = body["description"]
        mtu = _int(body, "mtu", "resource.mtu")
        if mtu is not None:
            if not 1300 <= mtu <= 8896:
                raise _field_error("resource.mtu", mtu, "Must be between 1300 and 8896.")
            out["mtu"] = mtu
        routing = _object(body.get("routingConfig"), "routingConfig")
        out["routingConfig"] = {"bgpBestPathSelectionMode": "LEGACY", "routingMode": "REGIONAL",
                                **{k: v for k, v in routing.items() if v is not None}}
        out["networkFirewallPolicyEnforcementOrder"] = body.get("networkFirewallPolicyEnforcementOrder") \
            or "AFTER_CLASSIC_FIREWALL"
        for key in ("enableUlaInternalIpv6", "internalIpv6Range", "networkProfile"):
            if _present(body, key):
                out[key] = body[key]
        return out

    # Only these can change (discovery: "Only routingConfig can be modified"; gcloud also patches mtu).
    _NETWORK_PATCHABLE = frozenset({"routingConfig", "mtu", "networkFirewallPolicyEnforcementOrder"})

    def network_patch(self, project: str, network: str, body: Any) -> Mutation:
        self._scope(project, None, network)
        body = _object(body)
        with self.world.lock:
            found = self._find(NETWORKS, (project,), network)
            if not found:
                raise not_found(f"projects/{project}/global/networks/{network}")
            key, current = found[0], copy.deepcopy(found[1])
        name = key[1]
        path = f"projects/{project}/global/networks/{name}"
        for k, v in body.items():
            if k in _OUTPUT_ONLY_COMMON or k in ("subnetworks", "peerings", "gatewayIPv4", "firewallPolicy",
                                                 "params") or v is None:
                continue
            if k not in self._NETWORK_PATCHABLE and v != current.get(k):
                raise _field_error(f"resource.{k}", v,
                                   "Only routingConfig, mtu and networkFirewallPolicyEnforcementOrder can be "
                                   "modified.")
        changes = {k: v for k, v in body.items() if k in self._NETWORK_PATCHABLE}
        if "mtu" in changes and changes["mtu"] is not None:
            mtu = _int(changes, "mtu", "resource.mtu")
            if mtu is None or not 1300 <= mtu <= 8896:
                raise _field_error("resource.mtu", changes["mtu"], "Must be between 1300 and 8896.")
            changes["mtu"] = mtu

        def apply() -> None:
            stored = self._table(NETWORKS).get(key)
            if stored is None:
                raise not_found(path)
            merged = merge_patch(stored, changes)
            merged["routingConfig"] = {"bgpBestPathSelectionMode": "LEGACY", "routingMode": "REGIONAL",
                                       **merged.get("routingConfig", {})}
            self._table(NETWORKS)[key] = merged

        # Real network PATCH operations are typed "compute.networks.patch" (recordings NOTES.md §2).
        return self._mutation(project, None, "compute.networks.patch", path, current["id"], apply, "gce_network",
                              {"network_id": current["id"], "project_id": project})

    def network_delete(self, project: str, network: str) -> Mutation:
        self._scope(project, None, network)
        with self.world.lock:
            found = self._find(NETWORKS, (project,), network)
            if not found:
                raise not_found(f"projects/{project}/global/networks/{network}")
            key, current = found[0], found[1]
        name, network_id = key[1], current["id"]
        path = f"projects/{project}/global/networks/{name}"

        def apply() -> None:
            stored = self._table(NETWORKS).get(key)
            if stored is None:
                raise not_found(path)
            user = self._network_user(project, name, stored["selfLink"])
            if user:
                # REAL: the DELETE answers RUNNING; the operation ends DONE with this error (recordings NOTES.md §2).
                raise _in_use("network", path, user)
            for skey in [k for k in self._table(AUTO_SUBNETS) if k[0] == project and k[2] == name]:
                self._table(AUTO_SUBNETS).pop(skey, None)
                self._table(SUBNETWORKS).pop(skey, None)
            del self._table(NETWORKS)[key]

        return self._mutation(project, None, "delete", path, network_id, apply, "gce_network",
                              {"network_id": network_id, "project_id": project})

    def _network_user(self, project: str, name: str, link: str) -> str | None:
        """The first resource that keeps the network from being deleted, as a relative path."""
        for (p, n), fw in sorted(self._table(FIREWALLS).items()):
            if fw.get("network") == link:
                return f"projects/{p}/global/firewalls/{n}"
        for (p, r, n), router in sorted(self._table(ROUTERS).items()):
            if router.get("network") == link:
                return f"projects/{p}/regions/{r}/routers/{n}"
        auto = self._table(AUTO_SUBNETS)
        for (p, r, n), subnet in sorted(self._table(SUBNETWORKS).items()):
            if subnet.get("network") == link and (p, r, n) not in auto:
                return f"projects/{p}/regions/{r}/subnetworks/{n}"
        for (p, r, n), hidden in sorted(self._table(HIDDEN_SUBNETS).items()):
            if hidden.get("network") == link:
                return f"projects/{p}/regions/{r}/subnetworks/{n}"
        return None

    def _refresh_network_subnets(self, project: str, network_name: str) -> None:
        """Keep ``network.subnetworks[]`` current (full URLs, sorted; absent when empty, as Google)."""
        stored = self._table(NETWORKS).get((project, network_name))
        if stored is None:
            return
        links = sorted(s["selfLink"] for s in self._table(SUBNETWORKS).values()
                       if s.get("network") == stored["selfLink"])
        if links:
            stored["subnetworks"] = links
        else:
            stored.pop("subnetworks", None)

    def _require_network(self, ref: Ref) -> dict[str, Any]:
        stored = self._table(NETWORKS).get((ref.project, ref.name))
        if stored is None:
            raise not_found(f"projects/{ref.project}/global/networks/{ref.name}")
        return stored

    # =============================================================================================
    # subnetworks
    # =============================================================================================
    def subnetwork(self, project: str, region: str, name: str) -> dict[str, Any] | None:
        """A copy of a (visible) subnetwork, or None (for other backends)."""
        with self.world.lock:
            found = self._table(SUBNETWORKS).get((project, region, name))
            return copy.deepcopy(found) if found else None

    def subnetworks_of_network(self, project: str, network: str) -> list[dict[str, Any]]:
        """Every subnetwork of a network in every region, *including* the hidden ones of connectors:
        what a new range must not overlap (for other backends). ``network`` is a name or a link."""
        ref = parse_network_ref(network, project, "network")
        link = self._link(f"projects/{ref.project}/global/networks/{ref.name}")
        with self.world.lock:
            found = [copy.deepcopy(s) for s in self._table(SUBNETWORKS).values() if s.get("network") == link]
            found += [copy.deepcopy(s) for s in self._table(HIDDEN_SUBNETS).values() if s.get("network") == link]
        return found

    def subnetwork_get(self, project: str, region: str, subnetwork: str) -> dict[str, Any]:
        self._scope(project, region, subnetwork)
        with self.world.lock:
            found = self._find(SUBNETWORKS, (project, region), subnetwork)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/subnetworks/{subnetwork}")
            return copy.deepcopy(found[1])

    def subnetwork_list(self, project: str, region: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, region)
        with self.world.lock:
            items = [copy.deepcopy(v) for k, v in self._table(SUBNETWORKS).items() if k[:2] == (project, region)]
        return self._list_body("compute#subnetworkList", f"projects/{project}/regions/{region}/subnetworks",
                               items, query)

    def subnetwork_aggregated_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, None)
        with self.world.lock:
            items = [v for k, v in self._table(SUBNETWORKS).items() if k[0] == project]  # copied once paged
            return copy.deepcopy(self._aggregated_body("compute#subnetworkAggregatedList", "subnetworks",
                                                       f"projects/{project}/aggregated/subnetworks", items, query))

    def subnetwork_insert(self, project: str, region: str, body: Any) -> Mutation:
        self._scope(project, region)
        body = _object(body)
        name = _check_name(body.get("name"))
        path = f"projects/{project}/regions/{region}/subnetworks/{name}"
        if _present(body, "region") and _region_of(body["region"], "resource.region") != region:
            raise _field_error("resource.region", body["region"],
                               f"The region must match the region of the request URL ('{region}').")
        net_ref = parse_network_ref(body.get("network"), project, "resource.network")
        if "ipCidrRange" not in body or body.get("ipCidrRange") in (None, ""):
            raise _required("resource.ipCidrRange")
        cidr = self._subnet_cidr(body["ipCidrRange"], "resource.ipCidrRange")
        subnet_id = self.world.new_id()
        with self.world.lock:
            if (project, region, name) in self._table(SUBNETWORKS):
                raise already_exists(path)
            network = self._require_network(net_ref)
            self._check_ranges_free(network["selfLink"], body, cidr)

        def apply() -> None:
            if (project, region, name) in self._table(SUBNETWORKS):
                raise already_exists(path)
            network = self._require_network(net_ref)
            self._check_ranges_free(network["selfLink"], body, cidr)
            self._store_subnetwork(project, region, {**body, "network": network["selfLink"]}, subnet_id)
            self._refresh_network_subnets(net_ref.project, net_ref.name)

        return self._mutation(project, region, "insert", path, subnet_id, apply, "gce_subnetwork",
                              self._subnet_labels(project, region, name, subnet_id))

    @staticmethod
    def _subnet_labels(project: str, region: str, name: str, subnet_id: str) -> dict[str, str]:
        return {"location": region, "project_id": project, "subnetwork_id": subnet_id, "subnetwork_name": name}

    @staticmethod
    def _subnet_cidr(value: Any, field_name: str) -> ipaddress.IPv4Network:
        net = _parse_cidr(value, field_name, v4_only=True)
        assert isinstance(net, ipaddress.IPv4Network)
        text = str(value).strip()
        if str(net) != text:
            raise _field_error(field_name, value, f"Invalid IPCidrRange: {text} is not a valid CIDR range "
                                                  f"(host bits set; did you mean {net}?).")
        low, high = SUBNET_PREFIX_RANGE
        if not low <= net.prefixlen <= high:
            raise _field_error(field_name, value, f"Invalid IPCidrRange: {text}. The prefix length must be "
                                                  f"between /{low} and /{high}.")
        if net.is_loopback or net.is_multicast or net.is_link_local or net.is_reserved or \
                net.overlaps(ipaddress.IPv4Network("0.0.0.0/8")):
            raise _field_error(field_name, value, f"Invalid IPCidrRange: {text} is a reserved range.")
        return net

    def _check_ranges_free(self, network_link: str, body: Mapping[str, Any], primary: ipaddress.IPv4Network,
                           skip: tuple | None = None) -> None:
        """Ranges must be unique and non-overlapping within a network (every region), hidden
        connector subnets included."""
        wanted = [("resource.ipCidrRange", primary)]
        for i, secondary in enumerate(body.get("secondaryIpRanges") or []):
            if not isinstance(secondary, dict):
                raise _field_error(f"resource.secondaryIpRanges[{i}]", secondary, "Must be an object.")
            field_name = f"resource.secondaryIpRanges[{i}].ipCidrRange"
            _check_name(secondary.get("rangeName"), f"resource.secondaryIpRanges[{i}].rangeName")
            wanted.append((field_name, self._subnet_cidr(secondary.get("ipCidrRange"), field_name)))
        for i, (field_a, net_a) in enumerate(wanted):
            for field_b, net_b in wanted[i + 1:]:
                if net_a.overlaps(net_b):
                    raise _field_error(field_b, str(net_b), f"Invalid IPCidrRange: {net_b} conflicts with {net_a} "
                                                            "in the same subnetwork.")
        for (p, r, n), existing in self._all_subnets(network_link):
            if skip == (p, r, n):
                continue
            for text in _ranges_of(existing):
                try:
                    other = ipaddress.IPv4Network(text, strict=False)
                except ValueError:
                    continue
                for field_name, net in wanted:
                    if net.overlaps(other):
                        raise _field_error(field_name, str(net), f"Invalid IPCidrRange: {net} conflicts with "
                                                                 f"existing subnetwork '{n}' in region '{r}'.")

    def _all_subnets(self, network_link: str) -> Iterator[tuple[tuple, dict[str, Any]]]:
        # Filter, then sort: sorting every subnet of every network on each insert made seeding
        # thousands of subnets quadratic in n log n (make bench seeds 5,000).
        for table in (SUBNETWORKS, HIDDEN_SUBNETS):
            yield from sorted(((key, subnet) for key, subnet in self._table(table).items()
                               if subnet.get("network") == network_link), key=lambda item: item[0])

    def _store_subnetwork(self, project: str, region: str, body: Mapping[str, Any], subnet_id: str) -> None:
        name = body["name"]
        cidr = ipaddress.IPv4Network(str(body["ipCidrRange"]).strip())
        purpose = body.get("purpose") or "PRIVATE"
        stored: dict[str, Any] = {
            "kind": "compute#subnetwork", "id": subnet_id, "creationTimestamp": self.world.compute_timestamp(),
            "name": name,
        }
        if _present(body, "description"):
            stored["description"] = body["description"]
        stored.update({
            "network": body["network"],
            "ipCidrRange": str(cidr),
            "gatewayAddress": str(cidr.network_address + 1),  # the first host of the range
            "region": self._link(f"projects/{project}/regions/{region}"),
            "selfLink": self._link(f"projects/{project}/regions/{region}/subnetworks/{name}"),
            "privateIpGoogleAccess": bool(body.get("privateIpGoogleAccess") or False),
            "privateIpv6GoogleAccess": body.get("privateIpv6GoogleAccess") or "DISABLE_GOOGLE_ACCESS",
            "fingerprint": _fingerprint(),
            "purpose": purpose,
            "allowSubnetCidrRoutesOverlap": bool(body.get("allowSubnetCidrRoutesOverlap") or False),
        })
        if purpose in ("PRIVATE", "PRIVATE_RFC_1918"):  # REAL: PRIVATE_NAT and proxy subnets have no stackType
            stored["stackType"] = body.get("stackType") or "IPV4_ONLY"
        if body.get("secondaryIpRanges"):
            stored["secondaryIpRanges"] = [{"rangeName": s["rangeName"], "ipCidrRange": s["ipCidrRange"]}
                                           for s in body["secondaryIpRanges"]]
        if body.get("role"):
            stored["role"] = body["role"]
        if purpose in PROXY_SUBNET_PURPOSES:
            stored["state"] = "READY"
        # Google shows flow-log fields only when they were set (REAL: logConfig sent -> both returned).
        log_config = body.get("logConfig")
        if log_config is not None or body.get("enableFlowLogs") is not None:
            enabled = bool((log_config or {}).get("enable", body.get("enableFlowLogs") or False))
            stored["enableFlowLogs"] = enabled
            stored["logConfig"] = {**(log_config or {}), "enable": enabled}
        self._table(SUBNETWORKS)[(project, region, name)] = stored

    def subnetwork_delete(self, project: str, region: str, subnetwork: str) -> Mutation:
        self._scope(project, region, subnetwork)
        with self.world.lock:
            found = self._find(SUBNETWORKS, (project, region), subnetwork)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/subnetworks/{subnetwork}")
            key, current = found[0], found[1]
        name, subnet_id = key[2], current["id"]
        path = f"projects/{project}/regions/{region}/subnetworks/{name}"

        def apply() -> None:
            stored = self._table(SUBNETWORKS).get(key)
            if stored is None:
                raise not_found(path)
            if key in self._table(AUTO_SUBNETS):
                raise invalid(f"The subnetwork resource '{path}' is an automatically created subnetwork of an "
                              "auto mode network; delete the network or switch it to custom mode.")
            user = self._subnet_user(stored["selfLink"])
            if user:
                raise _in_use("subnetwork", path, user)
            del self._table(SUBNETWORKS)[key]
            ref = parse_network_ref(stored["network"], project, "network")
            self._refresh_network_subnets(ref.project, ref.name)

        return self._mutation(project, region, "delete", path, subnet_id, apply, "gce_subnetwork",
                              self._subnet_labels(project, region, name, subnet_id))

    def _subnet_user(self, subnet_link: str) -> str | None:
        for (p, r, n), router in sorted(self._table(ROUTERS).items()):
            for nat in router.get("nats") or []:
                if any(s.get("name") == subnet_link for s in nat.get("subnetworks") or []):
                    return f"projects/{p}/regions/{r}/routers/{n}"
        return None

    # Fields a subnetwork PATCH may change (the field descriptions in compute.v1.json).
    _SUBNET_PATCHABLE = frozenset({"logConfig", "enableFlowLogs", "secondaryIpRanges", "privateIpGoogleAccess",
                                   "privateIpv6GoogleAccess", "stackType", "role", "purpose",
                                   "allowSubnetCidrRoutesOverlap", "ipv6AccessType", "description"})
    _SUBNET_OUTPUT = frozenset({"gatewayAddress", "region", "fingerprint", "state", "ipv6CidrRange",
                                "externalIpv6Prefix", "internalIpv6Prefix", "utilizationDetails", "params",
                                "systemReservedExternalIpv6Ranges", "systemReservedInternalIpv6Ranges",
                                "ipv6GceEndpoint"})

    def subnetwork_patch(self, project: str, region: str, subnetwork: str, body: Any) -> Mutation:
        self._scope(project, region, subnetwork)
        body = _object(body)
        with self.world.lock:
            found = self._find(SUBNETWORKS, (project, region), subnetwork)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/subnetworks/{subnetwork}")
            key, current = found[0], copy.deepcopy(found[1])
        name, subnet_id = key[2], current["id"]
        path = f"projects/{project}/regions/{region}/subnetworks/{name}"
        supplied = body.get("fingerprint")
        if not supplied:
            raise _required("resource.fingerprint")
        if supplied != current.get("fingerprint"):
            raise precondition(MSG_BAD_FINGERPRINT)
        for k, v in body.items():
            if k in _OUTPUT_ONLY_COMMON or k in self._SUBNET_OUTPUT or v is None:
                continue
            if k == "network":
                if parse_network_ref(v, project, "resource.network") != parse_network_ref(
                        current["network"], project, "network"):
                    raise _field_error("resource.network", v, "The network of a subnetwork cannot be changed.")
                continue
            if k not in self._SUBNET_PATCHABLE and v != current.get(k):
                raise _field_error(f"resource.{k}", v, "This field cannot be changed with a patch request.")
        changes = {k: v for k, v in body.items() if k in self._SUBNET_PATCHABLE}
        primary = ipaddress.IPv4Network(current["ipCidrRange"])
        if changes.get("secondaryIpRanges") is not None:
            with self.world.lock:
                self._check_ranges_free(current["network"], changes, primary, skip=key)

        def apply() -> None:
            stored = self._table(SUBNETWORKS).get(key)
            if stored is None:
                raise not_found(path)
            if stored.get("fingerprint") != supplied:
                raise precondition(MSG_BAD_FINGERPRINT)
            if changes.get("secondaryIpRanges") is not None:
                self._check_ranges_free(stored["network"], changes, primary, skip=key)
            merged = merge_patch(stored, changes)
            if "logConfig" in changes or "enableFlowLogs" in changes:
                enabled = bool((merged.get("logConfig") or {}).get("enable", merged.get("enableFlowLogs", False)))
                if changes.get("enableFlowLogs") is not None and "logConfig" not in changes:
                    enabled = bool(changes["enableFlowLogs"])
                merged["enableFlowLogs"] = enabled
                merged["logConfig"] = {**(merged.get("logConfig") or {}), "enable": enabled}
            merged["fingerprint"] = _fingerprint()
            self._table(SUBNETWORKS)[key] = _strip(merged)

        return self._mutation(project, region, "patch", path, subnet_id, apply, "gce_subnetwork",
                              self._subnet_labels(project, region, name, subnet_id))

    def subnetwork_set_private_ip_google_access(self, project: str, region: str, subnetwork: str,
                                                body: Any) -> Mutation:
        self._scope(project, region, subnetwork)
        body = _object(body)
        enabled = _bool(body, "privateIpGoogleAccess", "resource.privateIpGoogleAccess")
        if enabled is None:
            raise _required("resource.privateIpGoogleAccess")
        with self.world.lock:
            found = self._find(SUBNETWORKS, (project, region), subnetwork)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/subnetworks/{subnetwork}")
            key, subnet_id = found[0], found[1]["id"]
        path = f"projects/{project}/regions/{region}/subnetworks/{key[2]}"

        def apply() -> None:
            stored = self._table(SUBNETWORKS).get(key)
            if stored is None:
                raise not_found(path)
            stored["privateIpGoogleAccess"] = enabled
            stored["fingerprint"] = _fingerprint()

        return self._mutation(project, region, "setPrivateIpGoogleAccess", path, subnet_id, apply, "gce_subnetwork",
                              self._subnet_labels(project, region, key[2], subnet_id))

    # ---- hidden subnets of ipCidrRange connectors (VPC Access) ----------------------------------
    def register_hidden_subnet(self, project: str, region: str, network: str, name: str, cidr: str) -> None:
        """Reserve a connector's range in ``network``: never listed or readable, but new subnets
        (and other connectors) may not overlap it. Raises ApiError 400/404 when it cannot be."""
        ref = parse_network_ref(network, project, "network")
        net = self._subnet_cidr(cidr, "ipCidrRange")
        with self.world.lock:
            stored_network = self._require_network(ref)
            key = (project, region, name)
            if key in self._table(HIDDEN_SUBNETS):
                raise already_exists(f"projects/{project}/regions/{region}/subnetworks/{name}")
            self._check_ranges_free(stored_network["selfLink"], {}, net)
            self._table(HIDDEN_SUBNETS)[key] = {
                "name": name, "network": stored_network["selfLink"], "ipCidrRange": str(net),
                "region": self._link(f"projects/{project}/regions/{region}"),
            }

    def unregister_hidden_subnet(self, project: str, region: str, network: str, name: str) -> bool:
        """Release a connector's range; True when it was registered. ``network`` is informative."""
        with self.world.lock:
            return self._table(HIDDEN_SUBNETS).pop((project, region, name), None) is not None

    # =============================================================================================
    # firewalls
    # =============================================================================================
    def firewall_get(self, project: str, firewall: str) -> dict[str, Any]:
        self._scope(project, None, firewall)
        with self.world.lock:
            found = self._find(FIREWALLS, (project,), firewall)
            if not found:
                raise not_found(f"projects/{project}/global/firewalls/{firewall}")
            return copy.deepcopy(found[1])

    def firewall_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, None)
        with self.world.lock:
            # Page first, copy the page: a large VPC's rules are listed 500 at a time (make bench: 30,000).
            items = [v for k, v in self._table(FIREWALLS).items() if k[0] == project]
            return copy.deepcopy(self._list_body("compute#firewallList", f"projects/{project}/global/firewalls",
                                                 items, query))

    def firewall_insert(self, project: str, body: Any) -> Mutation:
        self._scope(project, None)
        rule, net_ref = self.normalize_firewall(project, _object(body))
        name = rule["name"]
        path = f"projects/{project}/global/firewalls/{name}"
        firewall_id = self.world.new_id()
        with self.world.lock:
            if (project, name) in self._table(FIREWALLS):
                raise already_exists(path)
            self._require_network(net_ref)

        def apply() -> None:
            self._store_firewall(project, rule, net_ref, firewall_id)

        return self._mutation(project, None, "insert", path, firewall_id, apply, "gce_firewall_rule",
                              {"firewall_rule_id": firewall_id, "project_id": project})

    def _store_firewall(self, project: str, rule: dict[str, Any], net_ref: Ref, firewall_id: str) -> dict[str, Any]:
        name = rule["name"]
        path = f"projects/{project}/global/firewalls/{name}"
        if (project, name) in self._table(FIREWALLS):
            raise already_exists(path)
        network = self._require_network(net_ref)
        stored = {"kind": "compute#firewall", "id": firewall_id,
                  "creationTimestamp": self.world.compute_timestamp(),
                  **rule, "network": network["selfLink"], "selfLink": self._link(path)}
        self._table(FIREWALLS)[(project, name)] = stored
        return stored

    def firewall_patch(self, project: str, firewall: str, body: Any) -> Mutation:
        """JSON merge patch: given fields replace (arrays wholesale), ``null`` clears."""
        return self._firewall_rewrite(project, firewall, _object(body), "patch")

    def firewall_update(self, project: str, firewall: str, body: Any) -> Mutation:
        """PUT: the body is the whole new rule (absent fields fall back to their defaults)."""
        return self._firewall_rewrite(project, firewall, _object(body), "update")

    _FIREWALL_OUTPUT = frozenset({"kind", "id", "creationTimestamp", "selfLink", "params"})

    def _firewall_rewrite(self, project: str, firewall: str, body: dict[str, Any], verb: str) -> Mutation:
        self._scope(project, None, firewall)
        with self.world.lock:
            found = self._find(FIREWALLS, (project,), firewall)
            if not found:
                raise not_found(f"projects/{project}/global/firewalls/{firewall}")
            key, current = found[0], copy.deepcopy(found[1])
        name, firewall_id = key[1], current["id"]
        path = f"projects/{project}/global/firewalls/{name}"
        if _present(body, "name") and body["name"] != name:
            raise _field_error("resource.name", body["name"], "The name of a firewall rule cannot be changed.")
        editable = {k: v for k, v in current.items() if k not in self._FIREWALL_OUTPUT}
        requested = {k: v for k, v in body.items() if k not in self._FIREWALL_OUTPUT}
        if verb == "patch":
            merged = merge_patch(editable, requested)
        else:
            merged = {k: v for k, v in requested.items() if v is not None}
            merged.setdefault("network", current["network"])
        merged["name"] = name
        rule, net_ref = self.normalize_firewall(project, merged)
        if self._link(f"projects/{net_ref.project}/global/networks/{net_ref.name}") != current["network"]:
            raise _field_error("resource.network", body.get("network"),
                               "The network of a firewall rule cannot be changed.")

        def apply() -> None:
            stored = self._table(FIREWALLS).get(key)
            if stored is None:
                raise not_found(path)
            self._table(FIREWALLS)[key] = {
                "kind": "compute#firewall", "id": stored["id"], "creationTimestamp": stored["creationTimestamp"],
                **rule, "network": stored["network"], "selfLink": stored["selfLink"]}

        return self._mutation(project, None, verb, path, firewall_id, apply, "gce_firewall_rule",
                              {"firewall_rule_id": firewall_id, "project_id": project})

    def firewall_delete(self, project: str, firewall: str) -> Mutation:
        self._scope(project, None, firewall)
        with self.world.lock:
            found = self._find(FIREWALLS, (project,), firewall)
            if not found:
                raise not_found(f"projects/{project}/global/firewalls/{firewall}")
            key, firewall_id = found[0], found[1]["id"]
        path = f"projects/{project}/global/firewalls/{key[1]}"

        def apply() -> None:
            if self._table(FIREWALLS).pop(key, None) is None:
                raise not_found(path)

        return self._mutation(project, None, "delete", path, firewall_id, apply, "gce_firewall_rule",
                              {"firewall_rule_id": firewall_id, "project_id": project})

    # ---- Google's own firewall writes (VPC Access creates the aet-* rules) -----------------------
    def firewall_insert_internal(self, project: str, body: Mapping[str, Any], principal: str, *,
                                 audit: bool = True) -> dict[str, Any]:
        """Insert a rule as Google's own service does: checked like a user's insert, stored at once
        (no user call is logged), and, with ``audit``, written to the audit log as
        ``v1.compute.firewalls.insert`` by ``principal`` (a service agent) through a compute
        operation, as Google logs the rules it creates. Raises ApiError 400/404/409. Returns a copy."""
        self.check_project(project)
        rule, net_ref = self.normalize_firewall(project, copy.deepcopy(dict(body)))
        with self.world.lock:
            stored = self._store_firewall(project, rule, net_ref, self.world.new_id())
            result = copy.deepcopy(stored)
        if audit:
            self._audit_internal(project, "compute.firewalls.insert", "POST",
                                 f"/compute/v1/projects/{project}/global/firewalls", dict(body), principal,
                                 "insert", stored)
        return result

    def firewall_delete_internal(self, project: str, name: str, principal: str, *, audit: bool = True) -> bool:
        """Delete a rule as Google's own service does (no user call logged); True when it existed."""
        with self.world.lock:
            stored = self._table(FIREWALLS).pop((project, name), None)
        if stored is not None and audit:
            self._audit_internal(project, "compute.firewalls.delete", "DELETE",
                                 f"/compute/v1/projects/{project}/global/firewalls/{name}", None, principal,
                                 "delete", stored)
        return stored is not None

    def _audit_internal(self, project: str, method_id: str, http_method: str, path: str, body: Any,
                        principal: str, operation_type: str, stored: Mapping[str, Any]) -> None:
        operations = self.world.backends.get("operations")
        if operations is None:  # a bare backend (unit tests): there is no audit log to write to
            return
        from localcloud.routing import AuditInfo, Call, Result, Route

        op = operations.start_compute(project=project, region=None, operation_type=operation_type,
                                      target_link=stored["selfLink"], target_id=stored["id"], user=principal,
                                      delay=0.0, apply=lambda: None)
        audit_info = AuditInfo(service_name="compute.googleapis.com", method_name=f"v1.{method_id}",
                               resource_name=f"projects/{project}/global/firewalls/{stored['name']}",
                               resource_type="gce_firewall_rule",
                               resource_labels={"firewall_rule_id": stored["id"], "project_id": project},
                               operation=op)
        call = Call(api="compute.v1", method_id=method_id, http_method=http_method, path=path,
                    params={"project": project}, query={}, body=body, principal=principal, user_agent="",
                    enums_as_int=False, host="compute.googleapis.com",
                    caller_ip="private")  # what audit entries show for calls from inside Google (UNCONFIRMED here)
        op.audit, op.call = audit_info, call
        route = Route(http_method, path, "compute.v1", method_id, lambda _c: Result(None), mutating=True)
        self.world.audit.on_call(call, route, Result(op.snapshot(), audit=audit_info), None)

    # ---- the rule itself -------------------------------------------------------------------------
    def normalize_firewall(self, project: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], Ref]:
        """Check a Firewall body as Google does and fill Google's defaults; returns the stored
        fields (without id, timestamps and links) and the network it names. Pure."""
        name = _check_name(body.get("name"))
        net_ref = parse_network_ref(body.get("network") or "global/networks/default", project, "resource.network")
        direction = body.get("direction") or "INGRESS"
        if direction not in ("INGRESS", "EGRESS"):
            raise _field_error("resource.direction", direction, "Must be INGRESS or EGRESS.")
        priority = _int(body, "priority", "resource.priority")
        priority = DEFAULT_FIREWALL_PRIORITY if priority is None else priority
        if not 0 <= priority <= 65535:
            raise _field_error("resource.priority", priority, "Must be between 0 and 65535.")
        allowed = _firewall_rules(body, "allowed")
        denied = _firewall_rules(body, "denied")
        if allowed and denied:
            raise _field_error("resource.denied", body.get("denied"),
                               "A firewall rule has either allowed or denied entries, not both.")
        if not allowed and not denied:
            raise _required("resource.allowed")
        source_ranges = [_range(v, f"resource.sourceRanges[{i}]")
                         for i, v in enumerate(_str_list(body, "sourceRanges", "resource.sourceRanges"))]
        destination_ranges = [_range(v, f"resource.destinationRanges[{i}]")
                              for i, v in enumerate(_str_list(body, "destinationRanges", "resource.destinationRanges"))]
        source_tags = _tags(body, "sourceTags")
        target_tags = _tags(body, "targetTags")
        source_sas = _service_accounts(body, "sourceServiceAccounts")
        target_sas = _service_accounts(body, "targetServiceAccounts")
        if direction == "EGRESS" and source_tags:
            raise _field_error("resource.sourceTags", source_tags, "Source tags cannot be specified for EGRESS "
                                                                   "firewall rules.")
        if direction == "EGRESS" and source_sas:
            raise _field_error("resource.sourceServiceAccounts", source_sas,
                               "Source service accounts cannot be specified for EGRESS firewall rules.")
        if source_sas and (source_tags or target_tags):
            raise _field_error("resource.sourceServiceAccounts", source_sas,
                               "sourceServiceAccounts cannot be used at the same time as sourceTags or targetTags.")
        if target_sas and (target_tags or source_tags):
            raise _field_error("resource.targetServiceAccounts", target_sas,
                               "targetServiceAccounts cannot be used at the same time as targetTags or sourceTags.")
        # Google fills the open range when a rule names no source (INGRESS, REAL) / no destination (EGRESS).
        if direction == "INGRESS" and not (source_ranges or source_tags or source_sas):
            source_ranges = ["0.0.0.0/0"]
        if direction == "EGRESS" and not destination_ranges:
            destination_ranges = ["0.0.0.0/0"]
        log_config = _object(body.get("logConfig"), "logConfig")
        log_enabled = _bool(log_config, "enable", "resource.logConfig.enable", False)
        log_out: dict[str, Any] = {"enable": bool(log_enabled)}
        if log_enabled:
            log_out["metadata"] = log_config.get("metadata") or "INCLUDE_ALL_METADATA"
        description = body.get("description")
        rule = {
            "name": name,
            "description": description if isinstance(description, str) else "",
            "priority": priority,
            "sourceRanges": source_ranges,
            "destinationRanges": destination_ranges,
            "sourceTags": source_tags,
            "targetTags": target_tags,
            "sourceServiceAccounts": source_sas,
            "targetServiceAccounts": target_sas,
            "allowed": allowed,
            "denied": denied,
            "direction": direction,
            "logConfig": log_out,
            "disabled": bool(_bool(body, "disabled", "resource.disabled", False)),
        }
        return _strip(rule), net_ref

    # =============================================================================================
    # routers and Cloud NAT
    # =============================================================================================
    def router_get(self, project: str, region: str, router: str) -> dict[str, Any]:
        self._scope(project, region, router)
        with self.world.lock:
            found = self._find(ROUTERS, (project, region), router)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/routers/{router}")
            return copy.deepcopy(found[1])

    def router_list(self, project: str, region: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, region)
        with self.world.lock:
            items = [copy.deepcopy(v) for k, v in self._table(ROUTERS).items() if k[:2] == (project, region)]
        return self._list_body("compute#routerList", f"projects/{project}/regions/{region}/routers", items, query)

    def router_aggregated_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, None)
        with self.world.lock:
            items = [copy.deepcopy(v) for k, v in self._table(ROUTERS).items() if k[0] == project]
        return self._aggregated_body("compute#routerAggregatedList", "routers",
                                     f"projects/{project}/aggregated/routers", items, query)

    def router_status(self, project: str, region: str, router: str) -> dict[str, Any]:
        stored = self.router_get(project, region, router)
        nat_status = []
        for nat in stored.get("nats") or []:
            entry: dict[str, Any] = {"name": nat["name"], "minExtraNatIpsNeeded": 0,
                                     "numVmEndpointsWithNatMappings": 0}
            if nat.get("natIps"):
                with self.world.lock:
                    entry["userAllocatedNatIpResources"] = list(nat["natIps"])
                    entry["userAllocatedNatIps"] = [a["address"] for a in self._addresses_by_link(nat["natIps"])]
            nat_status.append(entry)
        result: dict[str, Any] = {"network": stored["network"]}
        if nat_status:
            result["natStatus"] = nat_status
        return {"kind": "compute#routerStatusResponse", "result": result}

    _ROUTER_OUTPUT = frozenset({"kind", "id", "creationTimestamp", "selfLink", "region", "params"})

    def router_insert(self, project: str, region: str, body: Any) -> Mutation:
        self._scope(project, region)
        body = _object(body)
        name = _check_name(body.get("name"))
        path = f"projects/{project}/regions/{region}/routers/{name}"
        if _present(body, "region") and _region_of(body["region"], "resource.region") != region:
            raise _field_error("resource.region", body["region"],
                               f"The region must match the region of the request URL ('{region}').")
        net_ref = parse_network_ref(body.get("network"), project, "resource.network")
        router_id = self.world.new_id()
        with self.world.lock:
            if (project, region, name) in self._table(ROUTERS):
                raise already_exists(path)
            network = self._require_network(net_ref)
            self._router_fields(project, region, name, network["selfLink"], body)  # refuse at the call

        def apply() -> None:
            if (project, region, name) in self._table(ROUTERS):
                raise already_exists(path)
            network = self._require_network(net_ref)
            checked = self._router_fields(project, region, name, network["selfLink"], body)
            self._table(ROUTERS)[(project, region, name)] = {
                "kind": "compute#router", "id": router_id, "creationTimestamp": self.world.compute_timestamp(),
                "name": name, **checked, "region": self._link(f"projects/{project}/regions/{region}"),
                "selfLink": self._link(path)}
            self._refresh_address_users(project, region)

        return self._mutation(project, region, "insert", path, router_id, apply, "gce_router",
                              {"project_id": project, "region": region, "router_id": router_id})

    def router_patch(self, project: str, region: str, router: str, body: Any) -> Mutation:
        """JSON merge patch (routers.patch): ``{"nats": [...]}`` replaces the whole list,
        ``{"nats": []}`` removes every NAT, ``{}`` changes nothing (REAL recordings)."""
        return self._router_rewrite(project, region, router, _object(body), "patch")

    def router_update(self, project: str, region: str, router: str, body: Any) -> Mutation:
        """PUT (routers.update): the body is the whole router; absent ``nats`` means none."""
        return self._router_rewrite(project, region, router, _object(body), "update")

    def _router_rewrite(self, project: str, region: str, router: str, body: dict[str, Any], verb: str) -> Mutation:
        self._scope(project, region, router)
        with self.world.lock:
            found = self._find(ROUTERS, (project, region), router)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/routers/{router}")
            key, current = found[0], copy.deepcopy(found[1])
        name, router_id = key[2], current["id"]
        path = f"projects/{project}/regions/{region}/routers/{name}"
        if _present(body, "name") and body["name"] != name:
            raise _field_error("resource.name", body["name"], "The name of a router cannot be changed.")
        if _present(body, "region") and _region_of(body["region"], "resource.region") != region:
            raise _field_error("resource.region", body["region"], "The region of a router cannot be changed.")
        if _present(body, "network") and self._link(
                "projects/{0.project}/global/networks/{0.name}".format(
                    parse_network_ref(body["network"], project, "resource.network"))) != current["network"]:
            raise _field_error("resource.network", body["network"], "The network of a router cannot be changed.")
        editable = {k: v for k, v in current.items() if k not in self._ROUTER_OUTPUT}
        requested = {k: v for k, v in body.items() if k not in self._ROUTER_OUTPUT}
        if verb == "patch":
            desired = merge_patch(editable, requested)
        else:
            desired = {k: v for k, v in requested.items() if v is not None}
        desired["network"] = current["network"]
        with self.world.lock:
            self._router_fields(project, region, name, current["network"], desired)

        def apply() -> None:
            stored = self._table(ROUTERS).get(key)
            if stored is None:
                raise not_found(path)
            checked = self._router_fields(project, region, name, stored["network"], desired)
            self._table(ROUTERS)[key] = {
                "kind": "compute#router", "id": stored["id"], "creationTimestamp": stored["creationTimestamp"],
                "name": name, **checked, "region": stored["region"], "selfLink": stored["selfLink"]}
            self._refresh_address_users(project, region)

        return self._mutation(project, region, verb, path, router_id, apply, "gce_router",
                              {"project_id": project, "region": region, "router_id": router_id})

    def router_delete(self, project: str, region: str, router: str) -> Mutation:
        self._scope(project, region, router)
        with self.world.lock:
            found = self._find(ROUTERS, (project, region), router)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/routers/{router}")
            key, router_id = found[0], found[1]["id"]
        path = f"projects/{project}/regions/{region}/routers/{key[2]}"

        def apply() -> None:
            if self._table(ROUTERS).pop(key, None) is None:
                raise not_found(path)
            self._refresh_address_users(project, region)

        return self._mutation(project, region, "delete", path, router_id, apply, "gce_router",
                              {"project_id": project, "region": region, "router_id": router_id})

    def _router_fields(self, project: str, region: str, name: str, network_link: str,
                       body: Mapping[str, Any]) -> dict[str, Any]:
        """The router's stored fields (besides id, name, links), checked against the world. Call
        under the lock."""
        out: dict[str, Any] = {}
        if _present(body, "description"):
            out["description"] = body["description"]
        out["encryptedInterconnectRouter"] = bool(_bool(body, "encryptedInterconnectRouter",
                                                        "resource.encryptedInterconnectRouter", False))
        for key in ("bgp", "bgpPeers", "interfaces", "md5AuthenticationKeys", "nccGateway"):
            if body.get(key) not in (None, [], {}):
                out[key] = copy.deepcopy(body[key])
        out["network"] = network_link
        nats_raw = body.get("nats")
        if nats_raw is not None and not isinstance(nats_raw, list):
            raise _field_error("resource.nats", nats_raw, "Must be a list.")
        nats = [self._nat(project, region, network_link, i, raw) for i, raw in enumerate(nats_raw or [])]
        names = [n["name"] for n in nats]
        for i, nat_name in enumerate(names):
            if nat_name in names[:i]:
                raise _field_error(f"resource.nats[{i}].name", nat_name, "Nat names must be unique in a router.")
        self._check_nat_coverage(project, region, name, network_link, nats)
        if nats:
            out["nats"] = nats
        return out

    _NAT_OUTPUT = frozenset({"effectiveTcpTimeWaitTimeoutSec"})

    def _nat(self, project: str, region: str, network_link: str, index: int, raw: Any) -> dict[str, Any]:
        """One NAT as Google stores it: the fields sent (links made full), plus the defaults Google
        adds (type, endpointTypes, effectiveTcpTimeWaitTimeoutSec; REAL recordings)."""
        where = f"resource.nats[{index}]"
        if not isinstance(raw, dict):
            raise _field_error(where, raw, "Must be an object.")
        nat = {k: copy.deepcopy(v) for k, v in raw.items() if v is not None and k not in self._NAT_OUTPUT}
        _check_name(nat.get("name"), f"{where}.name")
        nat_type = nat.get("type") or "PUBLIC"
        nat["type"] = nat_type
        option = nat.get("sourceSubnetworkIpRangesToNat")
        if not option:
            raise _required(f"{where}.sourceSubnetworkIpRangesToNat")
        subnetworks = nat.get("subnetworks") or []
        if option == "LIST_OF_SUBNETWORKS":
            if not subnetworks:
                raise _field_error(f"{where}.subnetworks", "", "At least one subnetwork must be specified when "
                                                              "sourceSubnetworkIpRangesToNat is LIST_OF_SUBNETWORKS.")
            nat["subnetworks"] = [self._nat_subnet(project, region, network_link, f"{where}.subnetworks[{j}]", s)
                                  for j, s in enumerate(subnetworks)]
            links = [s["name"] for s in nat["subnetworks"]]
            for j, link in enumerate(links):
                if link in links[:j]:
                    raise _field_error(f"{where}.subnetworks[{j}].name", link,
                                       "A subnetwork may appear only once in a Nat.")
        elif subnetworks:
            raise _field_error(f"{where}.subnetworks", subnetworks,
                               f"Subnetworks can only be specified with LIST_OF_SUBNETWORKS, not {option}.")
        allocate = nat.get("natIpAllocateOption")
        nat_ips = nat.get("natIps") or []
        if nat_type == "PRIVATE":
            if allocate or nat_ips:
                raise _field_error(f"{where}.natIpAllocateOption", allocate or nat_ips,
                                   "A private Nat takes no NAT IP addresses.")
            # REAL (computerouternatprivate): Google turns dynamic port allocation on for private NAT.
            nat.setdefault("enableDynamicPortAllocation", True)
        else:
            if not allocate:
                raise _required(f"{where}.natIpAllocateOption")
            if allocate == "MANUAL_ONLY" and not nat_ips:
                raise _field_error(f"{where}.natIps", "", "At least one NAT IP address must be specified when "
                                                          "natIpAllocateOption is MANUAL_ONLY.")
            if allocate == "AUTO_ONLY" and nat_ips:
                raise _field_error(f"{where}.natIps", nat_ips,
                                   "NAT IP addresses can only be specified when natIpAllocateOption is MANUAL_ONLY.")
            if allocate == "AUTO_ONLY":
                # UNCONFIRMED (mock only, recordings NOTES.md §4): Google shows the project default tier for AUTO_ONLY.
                nat.setdefault("autoNetworkTier", "PREMIUM")
        if nat_ips:
            nat["natIps"] = [self._nat_address(project, region, f"{where}.natIps[{j}]", v)
                             for j, v in enumerate(nat_ips)]
        if nat.get("drainNatIps"):
            nat["drainNatIps"] = [self._nat_address(project, region, f"{where}.drainNatIps[{j}]", v)
                                  for j, v in enumerate(nat["drainNatIps"])]
        if nat.get("enableDynamicPortAllocation") and nat.get("enableEndpointIndependentMapping"):
            raise _field_error(f"{where}.enableEndpointIndependentMapping", True,
                               "enableEndpointIndependentMapping cannot be true when Dynamic Port Allocation is "
                               "enabled.")
        for port_field in ("minPortsPerVm", "maxPortsPerVm"):
            ports = _int(nat, port_field, f"{where}.{port_field}")
            if ports is not None and not 2 <= ports <= 65536:
                raise _field_error(f"{where}.{port_field}", ports, "Must be between 2 and 65536.")
        for timeout in ("udpIdleTimeoutSec", "icmpIdleTimeoutSec", "tcpEstablishedIdleTimeoutSec",
                        "tcpTransitoryIdleTimeoutSec", "tcpTimeWaitTimeoutSec"):
            seconds = _int(nat, timeout, f"{where}.{timeout}")
            if seconds is not None and seconds <= 0:
                raise _field_error(f"{where}.{timeout}", seconds, "Must be greater than 0.")
        if nat.get("logConfig"):
            log = _object(nat["logConfig"], "logConfig")
            enabled = bool(_bool(log, "enable", f"{where}.logConfig.enable", False))
            nat["logConfig"] = {"enable": enabled, "filter": log.get("filter") or NAT_LOG_DEFAULT_FILTER}
        if nat.get("rules"):
            nat["rules"] = [self._nat_rule(project, region, f"{where}.rules[{j}]", r)
                            for j, r in enumerate(nat["rules"])]
        nat.setdefault("endpointTypes", ["ENDPOINT_TYPE_VM"])
        wait = _int(nat, "tcpTimeWaitTimeoutSec", f"{where}.tcpTimeWaitTimeoutSec")
        nat["effectiveTcpTimeWaitTimeoutSec"] = wait if wait is not None else NAT_DEFAULT_TCP_TIME_WAIT_S
        return _strip(nat)

    def _nat_subnet(self, project: str, region: str, network_link: str, where: str, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _field_error(where, raw, "Must be an object.")
        ref = parse_regional_ref(raw.get("name"), "subnetworks", project, region, f"{where}.name")
        if ref.region != region:
            raise _field_error(f"{where}.name", raw.get("name"),
                               f"The subnetwork must be in the router's region '{region}'.")
        subnet = self._table(SUBNETWORKS).get((ref.project, ref.region, ref.name))
        if subnet is None:  # hidden connector subnets are not found either: "cannot be used in NAT"
            raise not_found(f"projects/{ref.project}/regions/{ref.region}/subnetworks/{ref.name}")
        if subnet.get("network") != network_link:
            raise _field_error(f"{where}.name", raw.get("name"),
                               "The subnetwork must belong to the router's network.")
        ranges = raw.get("sourceIpRangesToNat") or []
        if not ranges:
            raise _required(f"{where}.sourceIpRangesToNat")
        allowed = {"ALL_IP_RANGES", "PRIMARY_IP_RANGE", "LIST_OF_SECONDARY_IP_RANGES"}
        if not set(ranges) <= allowed or len(set(ranges)) != len(ranges) or (
                "ALL_IP_RANGES" in ranges and len(ranges) > 1):
            raise _field_error(f"{where}.sourceIpRangesToNat", ",".join(map(str, ranges)),
                               "Use ALL_IP_RANGES alone, or PRIMARY_IP_RANGE and/or LIST_OF_SECONDARY_IP_RANGES.")
        names = raw.get("secondaryIpRangeNames") or []
        if names and "LIST_OF_SECONDARY_IP_RANGES" not in ranges:
            raise _field_error(f"{where}.secondaryIpRangeNames", "",
                               "No secondary IP ranges should be provided if the subnetwork is not configured "
                               "with LIST_OF_SECONDARY_IP_RANGES.")
        if "LIST_OF_SECONDARY_IP_RANGES" in ranges:
            known = {s.get("rangeName") for s in subnet.get("secondaryIpRanges") or []}
            if not names:
                raise _required(f"{where}.secondaryIpRangeNames")
            for k, range_name in enumerate(names):
                if range_name not in known:
                    raise _field_error(f"{where}.secondaryIpRangeNames[{k}]", range_name,
                                       "The subnetwork has no secondary IP range of that name.")
        out: dict[str, Any] = {"name": subnet["selfLink"], "sourceIpRangesToNat": list(ranges)}
        if names:
            out["secondaryIpRangeNames"] = list(names)
        return out

    def _nat_address(self, project: str, region: str, where: str, value: Any) -> str:
        ref = parse_regional_ref(value, "addresses", project, region, where)
        address = self._table(ADDRESSES).get((ref.project, ref.region, ref.name))
        if address is None or ref.region != region:
            raise not_found(f"projects/{ref.project}/regions/{ref.region}/addresses/{ref.name}")
        if address.get("addressType") != "EXTERNAL":
            raise _field_error(where, value, "NAT IP addresses must be static external addresses.")
        return address["selfLink"]

    def _nat_rule(self, project: str, region: str, where: str, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _field_error(where, raw, "Must be an object.")
        rule = _strip(copy.deepcopy(raw))
        if _int(rule, "ruleNumber", f"{where}.ruleNumber") is None:
            raise _required(f"{where}.ruleNumber")
        action = _object(rule.get("action"), "action")
        for key, kind in (("sourceNatActiveIps", "addresses"), ("sourceNatDrainIps", "addresses"),
                          ("sourceNatActiveRanges", "subnetworks"), ("sourceNatDrainRanges", "subnetworks")):
            if action.get(key):
                links = []
                for j, value in enumerate(action[key]):
                    ref = parse_regional_ref(value, kind, project, region, f"{where}.action.{key}[{j}]")
                    links.append(self._link(f"projects/{ref.project}/regions/{ref.region}/{kind}/{ref.name}"))
                action[key] = links
        if action:
            rule["action"] = _strip(action)
        return rule

    def _check_nat_coverage(self, project: str, region: str, router_name: str, network_link: str,
                            nats: list[dict[str, Any]]) -> None:
        """Google's rules across every router of the network and region:
        an ALL_SUBNETWORKS_* NAT is the only NAT there; a subnet range is translated by one NAT only."""
        others: list[dict[str, Any]] = []
        for (p, r, n), router in sorted(self._table(ROUTERS).items()):
            if (p, r) == (project, region) and n != router_name and router.get("network") == network_link:
                others.extend(router.get("nats") or [])
        all_options = ("ALL_SUBNETWORKS_ALL_IP_RANGES", "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES")
        other_all = next((o["sourceSubnetworkIpRangesToNat"] for o in others
                          if o.get("sourceSubnetworkIpRangesToNat") in all_options), None)
        network_name = network_link.rpartition("/")[2]
        for i, nat in enumerate(nats):
            option = nat["sourceSubnetworkIpRangesToNat"]
            where = f"resource.nats[{i}].sourceSubnetworkIpRangesToNat"
            if other_all:  # REAL wording (public error trace)
                raise _field_error(where, option, MSG_NAT_ALL_EXISTS.format(option=other_all))
            earlier_all = next((n["sourceSubnetworkIpRangesToNat"] for n in nats[:i]
                                if n["sourceSubnetworkIpRangesToNat"] in all_options), None)
            if earlier_all:
                raise _field_error(where, option, MSG_NAT_ALL_EXISTS.format(option=earlier_all))
            if option in all_options and (others or i > 0):
                raise _field_error(where, option, MSG_ALL_SUBNETWORKS_NEEDS_SOLE_NAT.format(
                    option=option, network=network_name, region=region))
        # Each subnet range in one NAT only (other routers' NATs, then earlier NATs of this router).
        taken: dict[str, set[str]] = {}
        for nat in others:
            for s in nat.get("subnetworks") or []:
                taken.setdefault(s["name"], set()).update(_nat_range_claims(s))
        for i, nat in enumerate(nats):
            for j, s in enumerate(nat.get("subnetworks") or []):
                claims = _nat_range_claims(s)
                held = taken.get(s["name"], set())
                where = f"resource.nats[{i}].subnetworks[{j}].sourceIpRangesToNat"
                if "ALL_IP_RANGES" in held:
                    raise _field_error(where, "", MSG_NAT_SUBNET_ALL_TAKEN)
                clash = held & claims if "ALL_IP_RANGES" not in claims else held
                if clash:
                    wanted = s["sourceIpRangesToNat"][0]
                    existing = "PRIMARY_IP_RANGE" if "PRIMARY_IP_RANGE" in clash else \
                        "LIST_OF_SECONDARY_IP_RANGES"
                    raise _field_error(f"{where}[0]", wanted, MSG_NAT_RANGE_TAKEN.format(wanted=wanted,
                                                                                       existing=existing))
                taken.setdefault(s["name"], set()).update(claims)

    # =============================================================================================
    # addresses
    # =============================================================================================
    def address_get(self, project: str, region: str, address: str) -> dict[str, Any]:
        self._scope(project, region, address)
        with self.world.lock:
            found = self._find(ADDRESSES, (project, region), address)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/addresses/{address}")
            return copy.deepcopy(found[1])

    def address_list(self, project: str, region: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, region)
        with self.world.lock:
            items = [copy.deepcopy(v) for k, v in self._table(ADDRESSES).items() if k[:2] == (project, region)]
        return self._list_body("compute#addressList", f"projects/{project}/regions/{region}/addresses", items, query)

    def address_aggregated_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, None)
        with self.world.lock:
            items = [copy.deepcopy(v) for k, v in self._table(ADDRESSES).items() if k[0] == project]
        return self._aggregated_body("compute#addressAggregatedList", "addresses",
                                     f"projects/{project}/aggregated/addresses", items, query)

    def address_insert(self, project: str, region: str, body: Any) -> Mutation:
        self._scope(project, region)
        body = _object(body)
        name = _check_name(body.get("name"))
        path = f"projects/{project}/regions/{region}/addresses/{name}"
        if _present(body, "region") and _region_of(body["region"], "resource.region") != region:
            raise _field_error("resource.region", body["region"],
                               f"The region must match the region of the request URL ('{region}').")
        address_type = body.get("addressType") or "EXTERNAL"
        if address_type != "EXTERNAL":
            raise _field_error("resource.addressType", address_type,
                               "localcloud emulates EXTERNAL regional addresses only.")
        tier = body.get("networkTier") or "PREMIUM"
        if tier not in ("PREMIUM", "STANDARD"):
            raise _field_error("resource.networkTier", tier, "Must be PREMIUM or STANDARD.")
        requested_ip = body.get("address")
        if requested_ip is not None:
            try:
                ip = ipaddress.IPv4Address(str(requested_ip))
            except ValueError:
                raise _field_error("resource.address", requested_ip, "Must be an IPv4 address.") from None
            if not any(ip in pool for pool in EXTERNAL_ADDRESS_POOLS):
                raise _field_error("resource.address", requested_ip,
                                   "localcloud reserves external addresses from " +
                                   ", ".join(map(str, EXTERNAL_ADDRESS_POOLS)) + " only.")
        address_id = self.world.new_id()
        with self.world.lock:
            if (project, region, name) in self._table(ADDRESSES):
                raise already_exists(path)
            self._pick_address(requested_ip)

        def apply() -> None:
            if (project, region, name) in self._table(ADDRESSES):
                raise already_exists(path)
            stored: dict[str, Any] = {
                "kind": "compute#address", "id": address_id, "creationTimestamp": self.world.compute_timestamp(),
                "name": name, "description": body.get("description") or "",
                "address": self._pick_address(requested_ip), "addressType": "EXTERNAL",
                "networkTier": tier, "status": "RESERVED",
                "region": self._link(f"projects/{project}/regions/{region}"), "selfLink": self._link(path),
                # REAL (computerouternat): labels sent with the insert are not applied; Google shows an
                # empty label set and Terraform follows with setLabels.
                "labelFingerprint": EMPTY_LABEL_FINGERPRINT,
            }
            self._table(ADDRESSES)[(project, region, name)] = stored

        return self._mutation(project, region, "insert", path, address_id, apply, ADDRESS_RESOURCE_TYPE,
                              {"address_id": address_id, "location": region, "project_id": project})

    def _pick_address(self, requested: str | None) -> str:
        used = {a.get("address") for a in self._table(ADDRESSES).values()}
        if requested is not None:
            if str(requested) in used:
                raise _field_error("resource.address", requested, "The IP address is already reserved.")
            return str(requested)
        for pool in EXTERNAL_ADDRESS_POOLS:
            for host in pool.hosts():
                if str(host) not in used:
                    return str(host)
        raise ApiError(403, "Quota 'STATIC_ADDRESSES' exceeded (localcloud's documentation address pools are "
                            "exhausted).", reason="quotaExceeded")

    def address_delete(self, project: str, region: str, address: str) -> Mutation:
        self._scope(project, region, address)
        with self.world.lock:
            found = self._find(ADDRESSES, (project, region), address)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/addresses/{address}")
            key, address_id = found[0], found[1]["id"]
        path = f"projects/{project}/regions/{region}/addresses/{key[2]}"

        def apply() -> None:
            stored = self._table(ADDRESSES).get(key)
            if stored is None:
                raise not_found(path)
            if stored.get("users"):
                raise _in_use("address", path, _relative(stored["users"][0]))
            del self._table(ADDRESSES)[key]

        return self._mutation(project, region, "delete", path, address_id, apply, ADDRESS_RESOURCE_TYPE,
                              {"address_id": address_id, "location": region, "project_id": project})

    def address_set_labels(self, project: str, region: str, address: str, body: Any) -> Mutation:
        self._scope(project, region, address)
        body = _object(body)
        labels = _object(body.get("labels"), "labels")
        for key, value in labels.items():
            if not _LABEL_KEY.fullmatch(str(key)):
                raise _field_error(f"labels.{key}", key, "Label keys must start with a lowercase letter and "
                                                         "contain only lowercase letters, digits, '_' and '-'.")
            if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
                raise _field_error(f"labels.{key}", value, "Label values may contain only lowercase letters, "
                                                            "digits, '_' and '-'.")
        supplied = body.get("labelFingerprint")
        with self.world.lock:
            found = self._find(ADDRESSES, (project, region), address)
            if not found:
                raise not_found(f"projects/{project}/regions/{region}/addresses/{address}")
            key, current = found[0], found[1]
            if supplied != current.get("labelFingerprint"):
                raise precondition(MSG_LABELS_FINGERPRINT)
        address_id = current["id"]
        path = f"projects/{project}/regions/{region}/addresses/{key[2]}"

        def apply() -> None:
            stored = self._table(ADDRESSES).get(key)
            if stored is None:
                raise not_found(path)
            if stored.get("labelFingerprint") != supplied:
                raise precondition(MSG_LABELS_FINGERPRINT)
            if labels:
                stored["labels"] = dict(labels)
            else:
                stored.pop("labels", None)
            stored["labelFingerprint"] = _labels_fingerprint(labels)

        return Mutation(project, region, "setLabels", self._link(path), address_id, path, ADDRESS_RESOURCE_TYPE,
                        {"address_id": address_id, "location": region, "project_id": project}, apply,
                        done_at_once=True)

    def _addresses_by_link(self, links: Iterable[str]) -> list[dict[str, Any]]:
        wanted = set(links)
        return [a for a in self._table(ADDRESSES).values() if a.get("selfLink") in wanted]

    def _refresh_address_users(self, project: str, region: str) -> None:
        """A NAT's static addresses read IN_USE with the router among their ``users``."""
        users: dict[str, list[str]] = {}
        for (p, r, _n), router in self._table(ROUTERS).items():
            if (p, r) != (project, region):
                continue
            for nat in router.get("nats") or []:
                for link in nat.get("natIps") or []:
                    users.setdefault(link, [])
                    if router["selfLink"] not in users[link]:
                        users[link].append(router["selfLink"])
        for (p, r, _n), address in self._table(ADDRESSES).items():
            if (p, r) != (project, region):
                continue
            if address["selfLink"] in users:
                address["status"] = "IN_USE"
                address["users"] = sorted(users[address["selfLink"]])
            else:
                address["status"] = "RESERVED"
                address.pop("users", None)

    # =============================================================================================
    # operations (the Operations registry holds them; this filters what Compute shows)
    # =============================================================================================
    def operation_scope(self, project: str, region: str | None) -> str:
        self._scope(project, region)
        return f"projects/{project}/regions/{region}" if region else f"projects/{project}/global"

    def operation_path(self, project: str, region: str | None, operation: str) -> str:
        self.check_resource_param(operation)
        return f"{self.operation_scope(project, region)}/operations/{operation}"

    def operation_visible(self, path: str) -> bool:
        return path not in self._table(DELETED_OPERATIONS)

    def forget_operation(self, path: str) -> None:
        self._table(DELETED_OPERATIONS)[path] = True

    def operation_list_body(self, project: str, region: str | None, bodies: list[dict[str, Any]],
                            query: ListQuery) -> dict[str, Any]:
        scope = f"projects/{project}/regions/{region}" if region else f"projects/{project}/global"
        return self._list_body("compute#operationList", f"{scope}/operations", bodies, query)

    # =============================================================================================
    # shared shapes
    # =============================================================================================
    def _mutation(self, project: str, region: str | None, operation_type: str, path: str, target_id: str,
                  apply: Callable[[], None], resource_type: str, labels: Mapping[str, str]) -> Mutation:
        return Mutation(project, region, operation_type, self._link(path), target_id, path, resource_type,
                        dict(labels), apply)

    def _list_body(self, kind: str, path: str, items: list[dict[str, Any]], query: ListQuery) -> dict[str, Any]:
        page, token = query.page(items)
        body: dict[str, Any] = {"kind": kind, "id": path}
        if page:
            body["items"] = page
        if token:
            body["nextPageToken"] = token
        body["selfLink"] = self._link(path)
        return body

    def _aggregated_body(self, kind: str, collection: str, path: str, items: list[dict[str, Any]],
                         query: ListQuery) -> dict[str, Any]:
        """Items keyed ``regions/R``; every region without results carries Google's
        NO_RESULTS_ON_PAGE warning, as Compute's aggregatedList answers."""
        page, token = query.page(items)
        scoped: dict[str, dict[str, Any]] = {}
        for item in page:
            region = str(item.get("region", "")).rpartition("/")[2]
            scoped.setdefault(f"regions/{region}", {collection: []})[collection].append(item)
        for region in sorted(KNOWN_REGIONS):
            scope = f"regions/{region}"
            if scope not in scoped:
                scoped[scope] = {"warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": f"There are no results for scope '{scope}' on this page.",
                    "data": [{"key": "scope", "value": scope}]}}
        body: dict[str, Any] = {"kind": kind, "id": path, "items": dict(sorted(scoped.items()))}
        if token:
            body["nextPageToken"] = token
        body["selfLink"] = self._link(path)
        return body


# ---- firewall field helpers ---------------------------------------------------------------------
def _firewall_rules(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _field_error(f"resource.{key}", value, "Must be a list.")
    out = []
    for i, entry in enumerate(value):
        where = f"resource.{key}[{i}]"
        if not isinstance(entry, dict):
            raise _field_error(where, entry, "Must be an object.")
        protocol = entry.get("IPProtocol")
        if protocol is None or protocol == "":
            raise _required(f"{where}.IPProtocol")
        protocol = str(protocol).lower()
        if protocol not in FIREWALL_PROTOCOLS and not (protocol.isdigit() and 0 <= int(protocol) <= 255):
            raise _field_error(f"{where}.IPProtocol", entry.get("IPProtocol"),
                               "Must be one of tcp, udp, icmp, esp, ah, ipip, sctp, all, or an IP protocol number.")
        ports = _str_list(entry, "ports", f"{where}.ports")
        if ports and protocol not in PORT_PROTOCOLS:
            raise _field_error(f"{where}.ports[0]", ports[0], "Ports can only be specified for tcp, udp and sctp.")
        for j, port in enumerate(ports):
            if not _valid_port(port):
                raise _field_error(f"{where}.ports[{j}]", port,
                                   "Must be a port number or a range of port numbers (0-65535), e.g. 80 or 1000-2000.")
        rule: dict[str, Any] = {"IPProtocol": protocol}
        if ports:
            rule["ports"] = ports
        out.append(rule)
    return out


_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")


def _valid_port(text: str) -> bool:
    m = _PORT.fullmatch(text.strip())
    if not m:
        return False
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) else low
    return 0 <= low <= high <= 65535


def _range(value: str, field_name: str) -> str:
    _parse_cidr(value, field_name)
    return value.strip()


def _tags(body: Mapping[str, Any], key: str) -> list[str]:
    tags = _str_list(body, key, f"resource.{key}")
    for i, tag in enumerate(tags):
        if not _NAME.fullmatch(tag):
            raise _field_error(f"resource.{key}[{i}]", tag, f"Must be a match of regex '{NAME_REGEX_TEXT}'")
    return tags


def _service_accounts(body: Mapping[str, Any], key: str) -> list[str]:
    accounts = _str_list(body, key, f"resource.{key}")
    for i, email in enumerate(accounts):
        if "@" not in email or " " in email:
            raise _field_error(f"resource.{key}[{i}]", email, "Must be a service account e-mail address.")
    return accounts


def _ranges_of(subnet: Mapping[str, Any]) -> Iterator[str]:
    if subnet.get("ipCidrRange"):
        yield str(subnet["ipCidrRange"])
    for secondary in subnet.get("secondaryIpRanges") or []:
        if isinstance(secondary, dict) and secondary.get("ipCidrRange"):
            yield str(secondary["ipCidrRange"])


def _nat_range_claims(subnet_entry: Mapping[str, Any]) -> set[str]:
    """What part of a subnet a NAT translates: ALL_IP_RANGES, PRIMARY_IP_RANGE, secondary:<name>."""
    ranges = subnet_entry.get("sourceIpRangesToNat") or []
    claims: set[str] = set()
    if "ALL_IP_RANGES" in ranges:
        return {"ALL_IP_RANGES"}
    if "PRIMARY_IP_RANGE" in ranges:
        claims.add("PRIMARY_IP_RANGE")
    if "LIST_OF_SECONDARY_IP_RANGES" in ranges:
        claims.update(f"LIST_OF_SECONDARY_IP_RANGES:{n}" for n in subnet_entry.get("secondaryIpRangeNames") or [])
        if not subnet_entry.get("secondaryIpRangeNames"):
            claims.add("LIST_OF_SECONDARY_IP_RANGES")
    return claims


# =================================================================================================
# Compute's list filter: the regular-expression form (``name eq ".*x.*"``, gcloud's ``~``) and the
# AIP-160 form (``name = x``, ``!=``, ``<``, ``>``, ``:``), parenthesised terms joined by AND
# (implicit) and OR. The two forms cannot be mixed in one filter (discovery doc).
# =================================================================================================
class _FilterSyntax(Exception):
    pass


Node = Callable[[Mapping[str, Any]], bool]


def compile_filter(text: str) -> Node:
    """The predicate of a Compute ``filter`` parameter; 400 for a filter Google would refuse."""
    try:
        parser = _FilterParser(text)
        node = parser.parse()
    except _FilterSyntax as exc:
        raise _field_error("filter", text, f"Invalid list filter expression ({exc}).") from None
    if parser.regex_ops and parser.aip_ops:
        raise _field_error("filter", text, "Regular expression (eq, ne) and AIP-160 (=, !=, <, >, :) expressions "
                                           "cannot be mixed in one filter.")
    return node


class _FilterParser:
    _OPS = ("!=", "<=", ">=", "=", "<", ">", ":")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.regex_ops = 0
        self.aip_ops = 0

    def parse(self) -> Node:
        node = self._sequence()
        self._ws()
        if self.i < len(self.s):
            raise _FilterSyntax(f"unexpected {self.s[self.i:]!r}")
        return node

    # sequence := factor ((AND)? factor)*   ;   factor := term (OR term)*   (AIP-160: OR binds tighter)
    def _sequence(self) -> Node:
        nodes = [self._factor()]
        while True:
            self._ws()
            if self.i >= len(self.s) or self.s[self.i] == ")":
                break
            self._keyword("AND")
            nodes.append(self._factor())
        return (lambda r: all(n(r) for n in nodes)) if len(nodes) > 1 else nodes[0]

    def _factor(self) -> Node:
        nodes = [self._term()]
        while self._keyword("OR"):
            nodes.append(self._term())
        return (lambda r: any(n(r) for n in nodes)) if len(nodes) > 1 else nodes[0]

    def _term(self) -> Node:
        self._ws()
        if self._keyword("NOT"):
            inner = self._term()
            return lambda r: not inner(r)
        if self.s.startswith("-", self.i) and self.i + 1 < len(self.s) and not self.s[self.i + 1].isspace():
            self.i += 1
            inner = self._term()
            return lambda r: not inner(r)
        if self.s.startswith("(", self.i):
            self.i += 1
            node = self._sequence()
            self._ws()
            if not self.s.startswith(")", self.i):
                raise _FilterSyntax("missing ')'")
            self.i += 1
            return node
        return self._comparison()

    def _comparison(self) -> Node:
        self._ws()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*").match(self.s, self.i)
        if not m:
            raise _FilterSyntax(f"expected a field name at {self.s[self.i:]!r}")
        path = m.group(0).split(".")
        self.i = m.end()
        self._ws()
        op = None
        for candidate in self._OPS:
            if self.s.startswith(candidate, self.i):
                op = candidate
                self.i += len(candidate)
                break
        if op is None:
            word = re.compile(r"(eq|ne)\s").match(self.s, self.i)
            if not word:
                raise _FilterSyntax(f"expected an operator after {'.'.join(path)!r}")
            op = word.group(1)
            self.i = word.end() - 1
        self._ws()
        value = self._value()
        if op in ("eq", "ne"):
            self.regex_ops += 1
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise _FilterSyntax(f"bad regular expression {value!r}: {exc}") from None
            matches = (lambda r: any(regex.fullmatch(v) for v in _field_values(r, path)))
            return matches if op == "eq" else (lambda r: not matches(r))
        self.aip_ops += 1
        return _aip_comparison(path, op, value)

    def _value(self) -> str:
        if self.i >= len(self.s):
            raise _FilterSyntax("missing value")
        quote = self.s[self.i]
        if quote in "\"'":
            out = []
            self.i += 1
            while self.i < len(self.s):
                ch = self.s[self.i]
                if ch == "\\" and self.i + 1 < len(self.s):
                    out.append(self.s[self.i + 1])
                    self.i += 2
                    continue
                if ch == quote:
                    self.i += 1
                    return "".join(out)
                out.append(ch)
                self.i += 1
            raise _FilterSyntax("unterminated quoted value")
        start, depth = self.i, 0
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch.isspace():
                break
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            self.i += 1
        if self.i == start:
            raise _FilterSyntax("missing value")
        if depth:
            raise _FilterSyntax(f"unbalanced '(' in {self.s[start:self.i]!r}")
        return self.s[start:self.i]

    def _keyword(self, word: str) -> bool:
        self._ws()
        m = re.compile(rf"{word}(?=[\s(]|$)").match(self.s, self.i)
        if m:
            self.i = m.end()
            return True
        return False

    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1


def _field_values(resource: Any, path: list[str]) -> list[str]:
    """Every value at a dotted path (lists fan out), as Compute compares them: text."""
    current: list[Any] = [resource]
    for part in path:
        nxt: list[Any] = []
        for value in current:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        current = nxt
    out: list[str] = []
    for value in current:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (dict, list)):
                out.append(json.dumps(item))
            else:
                out.append(_text(item))
    return out


def _aip_comparison(path: list[str], op: str, literal: str) -> Node:
    def as_number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    def equal(value: str) -> bool:
        if "*" in literal:
            return fnmatch.fnmatchcase(value, literal)
        if value.lower() in ("true", "false") and literal.lower() in ("true", "false"):
            return value.lower() == literal.lower()
        a, b = as_number(value), as_number(literal)
        if a is not None and b is not None:
            return a == b
        return value == literal

    def ordered(value: str) -> bool:
        a, b = as_number(value), as_number(literal)
        left, right = (a, b) if a is not None and b is not None else (value, literal)
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]  # type: ignore[operator]

    def node(resource: Mapping[str, Any]) -> bool:
        values = _field_values(resource, path)
        if op == ":":
            return bool(values) if literal == "*" else any(literal in v or equal(v) for v in values)
        if op == "=":
            return any(equal(v) for v in values)
        if op == "!=":
            return not any(equal(v) for v in values)
        return any(ordered(v) for v in values)

    return node
