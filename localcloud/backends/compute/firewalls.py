"""Firewall rules: insert, patch, update (PUT), delete, get and list, each rule checked as Google
checks it; and the writes Google's own services make (VPC Access's ``aet-`` rules), logged in
the audit log as the service agent's.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

from localcloud.auditlog.methods import method_spec
from localcloud.auditlog.record import (
    AuditInfo,
    AuditRecord,
    Target,
    compute_operation_response,
    compute_request,
    operation_mark,
)
from localcloud.backends.compute.base import ComputeBase, Mutation
from localcloud.backends.compute.common import (
    FIREWALLS,
    NAME_REGEX_TEXT,
    _NAME,
    _bool,
    _check_name,
    _field_error,
    _int,
    _object,
    _parse_cidr,
    _present,
    _required,
    _str_list,
    _strip,
    merge_patch,
)
from localcloud.backends.compute.listing import ListQuery
from localcloud.backends.compute.refs import Ref, parse_network_ref
from localcloud.errors import already_exists, not_found


DEFAULT_FIREWALL_PRIORITY = 1000
FIREWALL_PROTOCOLS = frozenset({"tcp", "udp", "icmp", "esp", "ah", "ipip", "sctp", "all"})
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "6", "17", "132"})


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


class Firewalls(ComputeBase):
    def firewall_get(self, project: str, firewall: str) -> dict[str, Any]:
        return self._get(FIREWALLS, (project,), firewall)

    def firewall_list(self, project: str, query: ListQuery) -> dict[str, Any]:
        return self._list(FIREWALLS, (project,), query)

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
            found = self._existing(FIREWALLS, (project,), firewall)
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
            stored = self._stored(FIREWALLS, key, path)
            self._table(FIREWALLS)[key] = {
                "kind": "compute#firewall", "id": stored["id"], "creationTimestamp": stored["creationTimestamp"],
                **rule, "network": stored["network"], "selfLink": stored["selfLink"]}

        return self._mutation(project, None, verb, path, firewall_id, apply, "gce_firewall_rule",
                              {"firewall_rule_id": firewall_id, "project_id": project})

    def firewall_delete(self, project: str, firewall: str) -> Mutation:
        self._scope(project, None, firewall)
        with self.world.lock:
            found = self._existing(FIREWALLS, (project,), firewall)
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
            self._audit_internal(project, "compute.firewalls.insert", dict(body), principal, "insert", stored)
        return result

    def firewall_delete_internal(self, project: str, name: str, principal: str, *, audit: bool = True) -> bool:
        """Delete a rule as Google's own service does (no user call logged); True when it existed."""
        with self.world.lock:
            stored = self._table(FIREWALLS).pop((project, name), None)
        if stored is not None and audit:
            self._audit_internal(project, "compute.firewalls.delete", None, principal, "delete", stored)
        return stored is not None

    def _audit_internal(self, project: str, method_id: str, body: Any, principal: str, operation_type: str,
                        stored: Mapping[str, Any]) -> None:
        """Log the write as Google logs its own: a DONE compute operation and its entries, by the agent."""
        operations = self.world.backends.get("operations")
        if operations is None:  # a bare backend (unit tests): there is no audit log to write to
            return
        op = operations.start_compute(project=project, region=None, operation_type=operation_type,
                                      target_link=stored["selfLink"], target_id=stored["id"], user=principal,
                                      delay=0.0, apply=lambda: None)
        spec = method_spec("compute.v1", method_id)
        info = AuditInfo(service_name=spec.service, method_name=spec.method_name,
                         resource_name=f"projects/{project}/global/firewalls/{stored['name']}",
                         resource_type="gce_firewall_rule",
                         resource_labels={"firewall_rule_id": stored["id"], "project_id": project}, operation=op)
        record = AuditRecord(
            method=spec, resource=Target(info.service_name, info.method_name, info.resource_name, info.resource_type,
                                         info.resource_labels, project, "global"),
            principal=principal, request=compute_request(spec, body),
            response=compute_operation_response(op.snapshot()), operation=operation_mark(op),
            caller_ip="private",  # what audit entries show for calls from inside Google (UNCONFIRMED here)
            user_agent="")
        op.audit, op.origin = info, record.origin()
        self.world.audit.on_call(record)

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
