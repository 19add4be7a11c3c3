"""Networks: insert (auto or custom mode, with an auto-mode network's subnets), patch, delete
(refused while a subnetwork, firewall or router uses the network), get and list.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from localcloud.backends.compute.base import ComputeBase, Mutation
from localcloud.backends.compute.common import (
    AUTO_SUBNETS,
    FIREWALLS,
    HIDDEN_SUBNETS,
    NETWORKS,
    ROUTERS,
    SUBNETWORKS,
    _OUTPUT_ONLY_COMMON,
    _bool,
    _check_name,
    _field_error,
    _in_use,
    _int,
    _object,
    _present,
    merge_patch,
)
from localcloud.backends.compute.listing import ListQuery
from localcloud.backends.compute.refs import Ref
from localcloud.errors import already_exists, not_found


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


class Networks(ComputeBase):
    def network(self, project: str, name: str) -> dict[str, Any] | None:
        """A copy of the network, or None (for other backends)."""
        with self.world.lock:
            found = self._table(NETWORKS).get((project, name))
            return copy.deepcopy(found) if found else None

    def network_get(self, project: str, network: str) -> dict[str, Any]:
        return self._get(NETWORKS, (project,), network)

    def network_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        return self._list(NETWORKS, (project,), query)

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
            found = self._existing(NETWORKS, (project,), network)
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
            stored = self._stored(NETWORKS, key, path)
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
            key, current = self._existing(NETWORKS, (project,), network)
        name, network_id = key[1], current["id"]
        path = f"projects/{project}/global/networks/{name}"

        def apply() -> None:
            stored = self._stored(NETWORKS, key, path)
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
