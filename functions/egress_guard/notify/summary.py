"""What a finding says, in words. Pure; shared by the Slack and the terminal renderers.

Everything here turns a Finding into plain strings (titles, before/after lines, console links);
the renderers only decide how those strings look. No markup, no escaping, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from egress_guard.findings import Change, Finding, Mode, Outcome

DEFAULT_CONSOLE_BASE = "https://console.cloud.google.com"

# Cloud Console page paths. The console is not an API and its paths are not documented as stable;
# these are the forms in use in 2025-2026 public docs and samples (firewall rules moved from
# /networking/firewalls/ to the Cloud NGFW "firewall-manager" pages). UNCONFIRMED as stable: one table
# to change when Google moves a page.
CONSOLE_PATHS: Mapping[str, str] = {
    "connector": "/networking/connectors/details/{region}/{name}",
    "router": "/hybrid/routers/details/{region}/{name}",
    "nat": "/net-services/nat/details/{region}/{router}/{name}",
    "firewall": "/net-security/firewall-manager/firewall-policies/details/{name}",
    "network": "/networking/networks/details/{name}",
    "run.service": "/run/detail/{region}/{name}",
    "run.job": "/run/jobs/details/{region}/{name}",
}

# A message with 40 links helps nobody; the finding JSON keeps them all.
MAX_LINKS = 8

DRY_RUN_BADGE = "DRY-RUN"
NONE = "—"


@dataclass(frozen=True)
class OutcomeStyle:
    title: str
    emoji: str  # Slack shortcode
    colour: str  # rich colour name


OUTCOME_STYLES: Mapping[Outcome, OutcomeStyle] = {
    Outcome.REMEDIATED: OutcomeStyle("Remediated", ":white_check_mark:", "green"),
    Outcome.COMPLIANT: OutcomeStyle("Compliant", ":large_green_circle:", "green"),
    Outcome.PLANNED: OutcomeStyle("Planned", ":memo:", "cyan"),
    Outcome.EXEMPT: OutcomeStyle("Exempt", ":large_blue_circle:", "blue"),
    Outcome.BLOCKED: OutcomeStyle("Blocked", ":warning:", "yellow"),
    Outcome.FAILED: OutcomeStyle("Failed", ":x:", "red"),
    Outcome.UNDONE: OutcomeStyle("Undone", ":leftwards_arrow_with_hook:", "magenta"),
}

RESOURCE_KINDS: Mapping[str, str] = {
    "vpcaccess.connector": "connector",
    "run.service": "Cloud Run service",
    "run.job": "Cloud Run job",
    "compute.router": "Cloud Router",
    "compute.firewall": "firewall rule",
    "compute.network": "network",
    "compute.subnetwork": "subnet",
}

# The last word of an API method, as a person would say it.
VERBS: Mapping[str, str] = {
    "insert": "create",
    "create": "create",
    "patch": "update",
    "update": "update",
    "replace": "update",
    "delete": "delete",
}

# What Compute assumes when a firewall body leaves a field out (compute v1 Firewall reference).
FIREWALL_DEFAULT_PRIORITY = 1000
FIREWALL_DEFAULT_DIRECTION = "INGRESS"

NAT_COVERAGE: Mapping[str, str] = {
    "ALL_SUBNETWORKS_ALL_IP_RANGES": "all subnets, all IP ranges",
    "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES": "all subnets, primary IP ranges",
}


@dataclass(frozen=True)
class ChangeSummary:
    verb: str  # create | update | delete | the method's last word; "would ..." when planned
    kind: str  # "firewall rule", "Cloud Router", or the collection named in the action
    name: str  # short name of the changed resource
    action: str  # the API method as recorded, e.g. compute.firewalls.patch
    details: tuple[str, ...]  # before/after lines, e.g. "priority: 1000 → 990"


@dataclass(frozen=True)
class Link:
    label: str
    url: str


# --- names ------------------------------------------------------------------------------------


def short_name(name: str) -> str:
    """`projects/p/locations/r/connectors/c` or a selfLink -> `c`."""
    tail = name.rstrip("/").rsplit("/", 1)[-1]
    return tail or name


def _segment_after(name: str, key: str) -> str:
    parts = name.split("/")
    for index, part in enumerate(parts[:-1]):
        if part == key:
            return parts[index + 1]
    return ""


def resource_kind(resource_type: str) -> str:
    return RESOURCE_KINDS.get(resource_type, resource_type or "resource")


def headline(finding: Finding) -> str:
    """`DRY-RUN · Planned: ensure_nat for connector conn-1` (no markup, no emoji)."""
    style = OUTCOME_STYLES[finding.outcome]
    subject = f"{resource_kind(finding.resource.type)} {short_name(finding.resource.name)}"
    text = f"{style.title}: {finding.guardrail} for {subject}"
    return f"{DRY_RUN_BADGE} · {text}" if finding.mode is Mode.DRY_RUN else text


def dry_run_note(finding: Finding) -> str:
    if finding.outcome is Outcome.PLANNED:
        return "Nothing was changed: these are the exact changes enforce mode would make."
    return "egress-guard changes nothing in dry-run mode."


def region_of(finding: Finding) -> str:
    name = finding.resource.name
    return finding.region or _segment_after(name, "locations") or _segment_after(name, "regions")


def where_fields(finding: Finding) -> tuple[tuple[str, str], ...]:
    """The (label, value) pairs every rendering shows: where it happened and who caused it."""
    trigger = finding.trigger
    return (
        ("Project", finding.project or NONE),
        ("Region", region_of(finding) or NONE),
        ("Network", short_name(finding.network) if finding.network else NONE),
        ("Resource", f"{resource_kind(finding.resource.type)} {short_name(finding.resource.name)}"),
        ("Guardrail", finding.guardrail),
        ("Mode", finding.mode.value),
        ("Triggered by", trigger.principal or "unknown principal"),
        ("Method", trigger.methodName or "unknown method"),
    )


# --- changes ----------------------------------------------------------------------------------


def change_counts(changes: Sequence[Change], *, top: int = 4) -> str:
    """`500 changes: 498 × compute.firewalls.insert, 2 × compute.firewalls.patch`."""
    counts = Counter(change.action or "unknown" for change in changes)
    parts = [f"{count} × {action}" for action, count in counts.most_common(top)]
    if len(counts) > top:
        parts.append(f"{len(counts) - top} other kinds")
    noun = "change" if len(changes) == 1 else "changes"
    return f"{len(changes)} {noun}: " + ", ".join(parts)


def summarise_change(change: Change, *, planned: bool = False) -> ChangeSummary:
    """`planned`: a dry-run change that was not made, said as "would create"."""
    words = change.action.split(".")
    method = words[-1].lower() if words else ""
    verb = VERBS.get(method, method or "change")
    if change.before is None and change.after is not None and verb == "update":
        verb = "create"
    if planned:
        verb = f"would {verb}"
    kind = _change_kind(change)
    name = short_name(change.resource) if change.resource else NONE
    if kind == "firewall rule":
        details = _firewall_details(change)
    elif kind == "Cloud Router":
        details = _router_details(change)
    else:
        details = _generic_details(change)
    return ChangeSummary(verb=verb, kind=kind, name=name, action=change.action, details=details)


def _change_kind(change: Change) -> str:
    action = change.action.lower()
    bodies = [body for body in (change.before, change.after) if body]
    if "firewall" in action or any({"allowed", "denied", "direction"} & body.keys() for body in bodies):
        return "firewall rule"
    if "router" in action or any("nats" in body for body in bodies):
        return "Cloud Router"
    words = change.action.split(".")
    return words[-2] if len(words) >= 2 else "resource"


def _effective_after(change: Change) -> dict[str, Any] | None:
    """The body after the change. A patch body (no `name`) only carries what changed, so it is laid
    over the previous body; a full body (with `name`) stands alone, so removed fields show as removed."""
    if change.after is None:
        return None
    if change.before is None or "name" in change.after:
        return dict(change.after)
    return {**change.before, **change.after}


def _join(values: Any, *, empty: str = NONE) -> str:
    if not values:
        return empty
    if isinstance(values, str):
        return values
    return ", ".join(str(value) for value in values)


def _ports(rules: Any) -> str:
    if not rules:
        return "nothing"
    parts = []
    for rule in rules:
        if not isinstance(rule, Mapping):
            continue
        protocol = str(rule.get("IPProtocol", "all"))
        ports = rule.get("ports") or []
        if protocol == "all":
            parts.append("all")
        elif ports:
            parts.append(f"{protocol}:{','.join(str(port) for port in ports)}")
        else:
            parts.append(f"{protocol} (all ports)")
    return "; ".join(parts) or "nothing"


def firewall_facts(body: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a VPC firewall rule that decide what traffic it lets through."""
    if "allowed" in body:
        action, rules = "allow", body.get("allowed")
    elif "denied" in body:
        action, rules = "deny", body.get("denied")
    else:
        action, rules = NONE, None
    return {
        "direction": str(body.get("direction", FIREWALL_DEFAULT_DIRECTION)),
        "action": action,
        "priority": str(body.get("priority", FIREWALL_DEFAULT_PRIORITY)),
        "ports": _ports(rules),
        "source tags": _join(body.get("sourceTags")),
        "source ranges": _join(body.get("sourceRanges")),
        "destination ranges": _join(body.get("destinationRanges")),
        "target tags": _join(body.get("targetTags"), empty="all instances"),
        "disabled": "yes" if body.get("disabled") else "no",
    }


def _firewall_line(facts: Mapping[str, str]) -> str:
    text = f"{facts['direction']} {facts['action']} {facts['ports']}, priority {facts['priority']}"
    for key in ("source tags", "source ranges", "destination ranges"):
        if facts[key] != NONE:
            text += f", {key} {facts[key]}"
    text += f", target tags {facts['target tags']}"
    if facts["disabled"] == "yes":
        text += ", DISABLED"
    return text


def _firewall_details(change: Change) -> tuple[str, ...]:
    after = _effective_after(change)
    if change.before is None and after is not None:
        return (_firewall_line(firewall_facts(after)),)
    if after is None and change.before is not None:
        return ("was: " + _firewall_line(firewall_facts(change.before)),)
    if change.before is None or after is None:
        return ()
    old, new = firewall_facts(change.before), firewall_facts(after)
    lines = tuple(f"{key}: {old[key]} → {new[key]}" for key in old if old[key] != new[key])
    return lines or _generic_details(change)


def nat_coverage(nat: Mapping[str, Any]) -> str:
    mode = str(nat.get("sourceSubnetworkIpRangesToNat", ""))
    if mode in NAT_COVERAGE:
        return NAT_COVERAGE[mode]
    if mode == "LIST_OF_SUBNETWORKS":
        subnets = [short_name(str(s.get("name", ""))) for s in nat.get("subnetworks") or [] if isinstance(s, Mapping)]
        return "subnets " + (", ".join(subnets) if subnets else "(none listed)")
    return mode or "coverage not set"


def router_nats(body: Mapping[str, Any]) -> dict[str, str]:
    """NAT name -> what it covers."""
    return {
        str(nat.get("name", "?")): nat_coverage(nat) for nat in body.get("nats") or [] if isinstance(nat, Mapping)
    }


def _nat_list(nats: Mapping[str, str]) -> str:
    return "; ".join(f"{name} ({coverage})" for name, coverage in nats.items()) if nats else "no NAT"


def _router_details(change: Change) -> tuple[str, ...]:
    after = _effective_after(change)
    if change.before is None and after is not None:
        return ("NATs: " + _nat_list(router_nats(after)),)
    if after is None and change.before is not None:
        return ("was: NATs " + _nat_list(router_nats(change.before)),)
    if change.before is None or after is None:
        return ()
    old, new = router_nats(change.before), router_nats(after)
    lines = [f"added NAT {name} ({new[name]})" for name in new if name not in old]
    lines += [f"removed NAT {name} ({old[name]})" for name in old if name not in new]
    lines += [f"NAT {name}: {old[name]} → {new[name]}" for name in new if name in old and old[name] != new[name]]
    return tuple(lines) or _generic_details(change)


# Fields that change on every write and say nothing to a person.
_NOISE_FIELDS = frozenset({"fingerprint", "creationTimestamp", "id", "selfLink", "kind", "etag"})


def _generic_details(change: Change) -> tuple[str, ...]:
    after = _effective_after(change)
    if change.before is None or after is None:
        return ()
    keys = sorted(
        key
        for key in change.before.keys() | after.keys()
        if key not in _NOISE_FIELDS and change.before.get(key) != after.get(key)
    )
    if not keys:
        return ("no field changed",)
    shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
    return (f"changed: {shown}",)


# --- console links ----------------------------------------------------------------------------


def _console_url(base: str, page: str, project: str, **parts: str) -> str:
    path = CONSOLE_PATHS[page].format(**{key: quote(value, safe="") for key, value in parts.items()})
    return f"{base.rstrip('/')}{path}?project={quote(project, safe='')}"


def console_links(finding: Finding, *, console_base: str = DEFAULT_CONSOLE_BASE) -> tuple[Link, ...]:
    """Console pages for the resource, the routers/NATs and firewall rules it touched, the network,
    then the finding's own links; at most MAX_LINKS, no duplicates."""
    links: list[Link] = []
    region = region_of(finding)
    resource = finding.resource
    name = short_name(resource.name)
    project = _segment_after(resource.name, "projects") or finding.project

    page = {"vpcaccess.connector": "connector", "run.service": "run.service", "run.job": "run.job"}.get(resource.type)
    if page and region and project:
        links.append(Link(f"{resource_kind(resource.type)} {name}", _console_url(console_base, page, project, region=region, name=name)))
    elif resource.type == "compute.router" and region and project:
        links.append(Link(f"Cloud Router {name}", _console_url(console_base, "router", project, region=region, name=name)))
    elif resource.type == "compute.firewall" and project:
        links.append(Link(f"firewall rule {name}", _console_url(console_base, "firewall", project, name=name)))

    for change in finding.changes:
        links.extend(_change_links(change, finding, console_base))

    if finding.network and finding.project:
        network = short_name(finding.network)
        network_project = _segment_after(finding.network, "projects") or finding.project
        links.append(Link(f"network {network}", _console_url(console_base, "network", network_project, name=network)))

    links.extend(Link("details", url) for url in finding.links if _is_plain_https(url))

    unique: dict[str, Link] = {}
    for link in links:
        unique.setdefault(link.url, link)
    return tuple(unique.values())[:MAX_LINKS]


def _change_links(change: Change, finding: Finding, console_base: str) -> list[Link]:
    kind = _change_kind(change)
    name = short_name(change.resource) if change.resource else ""
    project = _segment_after(change.resource, "projects") or finding.project
    if not name or not project:
        return []
    if kind == "firewall rule":
        return [Link(f"firewall rule {name}", _console_url(console_base, "firewall", project, name=name))]
    if kind == "Cloud Router":
        region = _segment_after(change.resource, "regions") or finding.region
        if not region:
            return []
        links = [Link(f"Cloud Router {name}", _console_url(console_base, "router", project, region=region, name=name))]
        for nat in router_nats(_effective_after(change) or {}):
            links.append(Link(f"Cloud NAT {nat}", _console_url(console_base, "nat", project, region=region, router=name, name=nat)))
        return links
    return []


def _is_plain_https(url: str) -> bool:
    # Slack link syntax breaks on these characters; a link that needs them is left to the finding JSON.
    return url.startswith("https://") and not any(char in url for char in " <>|\n")
