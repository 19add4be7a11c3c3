"""Regional addresses: insert (external ones from documentation ranges, never a real public IP),
delete, setLabels (answered DONE at once, as Google does), get, list and aggregatedList; the
``users`` of an address follow the NATs that use it.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from localcloud.backends.compute.base import ComputeBase, Mutation
from localcloud.backends.compute.common import (
    ADDRESSES,
    EMPTY_LABEL_FINGERPRINT,
    MSG_LABELS_FINGERPRINT,
    ROUTERS,
    _LABEL_KEY,
    _LABEL_VALUE,
    _check_name,
    _field_error,
    _in_use,
    _labels_fingerprint,
    _object,
)
from localcloud.backends.compute.listing import ListQuery
from localcloud.backends.compute.refs import _relative, check_body_region
from localcloud.errors import ApiError, already_exists, precondition


# External addresses are handed out from documentation ranges (RFC 5737), never real public IPs.
EXTERNAL_ADDRESS_POOLS: tuple[ipaddress.IPv4Network, ...] = (
    ipaddress.IPv4Network("203.0.113.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
)

# Monitored-resource types and labels of the audit entries for each kind. gce_router,
# gce_firewall_rule, gce_network, gce_subnetwork follow the Cloud Logging resource list;
# UNCONFIRMED: the type Compute writes for regional address writes.
ADDRESS_RESOURCE_TYPE = "gce_reserved_address"


class Addresses(ComputeBase):
    def address_get(self, project: str, region: str, address: str) -> dict[str, Any]:
        return self._get(ADDRESSES, (project, region), address)

    def address_list(self, project: str, region: str, query: ListQuery) -> dict[str, Any]:
        return self._list(ADDRESSES, (project, region), query)

    def address_aggregated_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        return self._aggregated_list(ADDRESSES, project, query)

    def address_insert(self, project: str, region: str, body: Any) -> Mutation:
        self._scope(project, region)
        body = _object(body)
        name = _check_name(body.get("name"))
        path = f"projects/{project}/regions/{region}/addresses/{name}"
        check_body_region(body, region)
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
            found = self._existing(ADDRESSES, (project, region), address)
            key, address_id = found[0], found[1]["id"]
        path = f"projects/{project}/regions/{region}/addresses/{key[2]}"

        def apply() -> None:
            stored = self._stored(ADDRESSES, key, path)
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
            key, current = self._existing(ADDRESSES, (project, region), address)
            if supplied != current.get("labelFingerprint"):
                raise precondition(MSG_LABELS_FINGERPRINT)
        address_id = current["id"]
        path = f"projects/{project}/regions/{region}/addresses/{key[2]}"

        def apply() -> None:
            stored = self._stored(ADDRESSES, key, path)
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
