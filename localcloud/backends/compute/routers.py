"""Cloud Routers and their Cloud NAT gateways: insert, patch, update (PUT), delete, get, list,
aggregatedList and getRouterStatus, with Google's rules on which subnet ranges one NAT may
translate and which another router already claims.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from localcloud.backends.compute.base import ComputeBase, Mutation
from localcloud.backends.compute.common import (
    ADDRESSES,
    MSG_ALL_SUBNETWORKS_NEEDS_SOLE_NAT,
    MSG_NAT_ALL_EXISTS,
    MSG_NAT_RANGE_TAKEN,
    MSG_NAT_SUBNET_ALL_TAKEN,
    ROUTERS,
    SUBNETWORKS,
    _bool,
    _check_name,
    _field_error,
    _int,
    _object,
    _present,
    _required,
    _strip,
    merge_patch,
)
from localcloud.backends.compute.listing import ListQuery
from localcloud.backends.compute.refs import _region_of, parse_network_ref, parse_regional_ref
from localcloud.errors import already_exists, not_found


NAT_DEFAULT_TCP_TIME_WAIT_S = 120  # effectiveTcpTimeWaitTimeoutSec when unset (REAL recordings)
NAT_LOG_DEFAULT_FILTER = "ALL"  # logConfig.filter when logging is enabled without one (Google's default)


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


class Routers(ComputeBase):
    def router_get(self, project: str, region: str, router: str) -> dict[str, Any]:
        return self._get(ROUTERS, (project, region), router)

    def router_list(self, project: str, region: str, query: ListQuery) -> dict[str, Any]:
        return self._list(ROUTERS, (project, region), query)

    def router_aggregated_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        return self._aggregated_list(ROUTERS, project, query)

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
            found = self._existing(ROUTERS, (project, region), router)
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
            stored = self._stored(ROUTERS, key, path)
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
            found = self._existing(ROUTERS, (project, region), router)
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
