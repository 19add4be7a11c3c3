"""Subnetworks: insert with range checks against every other range of the network (including the
hidden ranges VPC Access connectors reserve), patch, setPrivateIpGoogleAccess, delete, get, list
and aggregatedList.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import field
from typing import Any, Iterator, Mapping

from localcloud.backends.compute.base import ComputeBase, Mutation
from localcloud.backends.compute.common import (
    AUTO_SUBNETS,
    HIDDEN_SUBNETS,
    MSG_BAD_FINGERPRINT,
    ROUTERS,
    SUBNETWORKS,
    _OUTPUT_ONLY_COMMON,
    _bool,
    _check_name,
    _field_error,
    _fingerprint,
    _in_use,
    _object,
    _parse_cidr,
    _present,
    _required,
    _strip,
    merge_patch,
)
from localcloud.backends.compute.listing import ListQuery
from localcloud.backends.compute.refs import check_body_region, parse_network_ref
from localcloud.errors import already_exists, invalid, precondition


SUBNET_PREFIX_RANGE = (8, 29)  # Google: IPv4 subnet ranges from /8 to /29
# Proxy-only subnets show ``state`` (READY); others have none (its NOTES.md §4). Seen on a
# REGIONAL_MANAGED_PROXY subnet (networksecurity-...-maximal._audit_probe.log, probably REAL); the other
# proxy-only purposes likewise (Subnetwork.state's description names INTERNAL_HTTPS_LOAD_BALANCER): UNCONFIRMED.
PROXY_SUBNET_PURPOSES = frozenset({"REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY", "INTERNAL_HTTPS_LOAD_BALANCER"})


def _ranges_of(subnet: Mapping[str, Any]) -> Iterator[str]:
    if subnet.get("ipCidrRange"):
        yield str(subnet["ipCidrRange"])
    for secondary in subnet.get("secondaryIpRanges") or []:
        if isinstance(secondary, dict) and secondary.get("ipCidrRange"):
            yield str(secondary["ipCidrRange"])


class Subnetworks(ComputeBase):
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
        return self._get(SUBNETWORKS, (project, region), subnetwork)

    def subnetwork_list(self, project: str, region: str, query: ListQuery) -> dict[str, Any]:
        return self._list(SUBNETWORKS, (project, region), query)

    def subnetwork_aggregated_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        return self._aggregated_list(SUBNETWORKS, project, query)

    def subnetwork_insert(self, project: str, region: str, body: Any) -> Mutation:
        self._scope(project, region)
        body = _object(body)
        name = _check_name(body.get("name"))
        path = f"projects/{project}/regions/{region}/subnetworks/{name}"
        check_body_region(body, region)
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
            key, current = self._existing(SUBNETWORKS, (project, region), subnetwork)
        name, subnet_id = key[2], current["id"]
        path = f"projects/{project}/regions/{region}/subnetworks/{name}"

        def apply() -> None:
            stored = self._stored(SUBNETWORKS, key, path)
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
            found = self._existing(SUBNETWORKS, (project, region), subnetwork)
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
            stored = self._stored(SUBNETWORKS, key, path)
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
            found = self._existing(SUBNETWORKS, (project, region), subnetwork)
            key, subnet_id = found[0], found[1]["id"]
        path = f"projects/{project}/regions/{region}/subnetworks/{key[2]}"

        def apply() -> None:
            stored = self._stored(SUBNETWORKS, key, path)
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
