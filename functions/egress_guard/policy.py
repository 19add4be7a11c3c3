"""The policy: one YAML file, parsed once at cold start into frozen values (design §3).

``load_policy(path)`` reads the file named by ``path``, else by ``EGRESS_GUARD_POLICY``, else
uses the built-in defaults (``Policy()``). Every error names its key path, e.g.
``firewall.allow[0].ports[1]: "tcp:99999" is not a valid port``; unknown keys are rejected, and
all errors of a file are reported at once in one ``PolicyError``.

The full file, with the defaults (``examples/policy/default.yaml`` is this file)::

    nat:                          # ensure_nat
      mode: enforce               # enforce | dry-run
      name_prefix: egress-guard   # router "{prefix}-{region}", NAT "{prefix}-nat-{region}"
      ip_allocation: AUTO_ONLY    # AUTO_ONLY, or a list of static addresses (-> MANUAL_ONLY): names
                                  # (looked up in the NAT's region) or projects/P/regions/R/addresses/A
      min_ports_per_vm: 64
      log_filter: ERRORS_ONLY     # ERRORS_ONLY | TRANSLATIONS_ONLY | ALL | null (NAT logging off)
      on_connector_create: true   # a new connector counts as all-traffic egress
    firewall:                     # replace_connector_firewalls
      mode: dry-run               # dry-run until an allow list is configured (see below)
      name_prefix: egress-guard-
      deny_priority: 990          # must be < 1000 (the automatic rules' priority)
      allow_priority: 980         # must be < deny_priority (allow wins)
      allow: []                   # [{target_tags: [db], ports: [tcp:5432, tcp:8000-8100, udp, icmp]}]
      egress_allow: []            # [{destination_ranges: [10.0.0.0/8], ports: [tcp:443]}]; non-empty
                                  # adds managed EGRESS rules: allow these, deny the rest
      auto_rules: keep            # keep | disable (disable the aet-*-sbntfw/tagfw rules once covered)
    exemptions:
      projects: []                # project ids
      networks: []                # network names (any project) or projects/P/global/networks/N
      connectors: []              # connector names (any project/region) or projects/P/locations/R/connectors/C
      label: egress-guard=skip    # Cloud Run services/jobs with this label are exempt; null turns it off
    event_max_age_seconds: 600    # older events are acknowledged without action
    notify:
      outcomes: [remediated, planned, exempt, blocked, failed, undone]   # what notify_slack posts
      routes: []                  # per-team routing, see below
      default: default            # where a finding no route matches goes; null: nowhere

``notify.routes`` sends each finding to the Slack destinations of the teams that own it. A route
names a ``destination`` and what it ``match``es; every key of ``match`` is optional, a list matches
when any item does, and a route matches when all its keys do::

    notify:
      routes:
        - destination: payments            # webhook: SLACK_WEBHOOK_URL_PAYMENTS
          match:
            labels: {team: payments}       # the workload's labels (Cloud Run service or job)
        - destination: platform
          match:
            projects: [shared-vpc-host]
            folders: [folders/1234]        # the project's folder, when the finding carries it
            networks: [prod]               # a name (any project) or projects/P/global/networks/N
            outcomes: [blocked, failed]
      default: default                     # webhook: SLACK_WEBHOOK_URL

A finding goes to every destination whose route matches, once each, and to ``default`` when no
route matches (``notify_routing``: the one place this is decided). Each destination's webhook is
its own secret, read from ``SLACK_WEBHOOK_URL_<DESTINATION>`` (upper case, ``-`` as ``_``); the
destination ``default`` reads ``SLACK_WEBHOOK_URL``, so a policy without routes works as before.

``firewall.mode`` defaults to dry-run because with an empty allow list the managed deny rule
cuts the connector off from every VM. A file may still set ``mode: enforce`` with an empty allow
list (a connector used only for internet egress needs no VM access): that is accepted, and the
loader logs a warning and records it in ``Policy.warnings``.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from .errors import ConfigError, InvalidName
from .findings import Finding, Mode, Outcome
from .names import (
    AddressName,
    ConnectorName,
    NetworkName,
    parse_address,
    parse_connector,
    parse_network,
    validate_compute_name,
    validate_connector_name,
    validate_label_key,
    validate_label_value,
    validate_network_tag,
    validate_project,
)

POLICY_ENV = "EGRESS_GUARD_POLICY"
_log = logging.getLogger(__name__)

NAT_LOG_FILTERS = ("ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL")
AUTO_ONLY = "AUTO_ONLY"
MANUAL_ONLY = "MANUAL_ONLY"
# Protocols a Compute firewall rule accepts by name; ports only with tcp, udp and sctp.
FIREWALL_PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all")
_PORTED_PROTOCOLS = ("tcp", "udp", "sctp")
# The broad rules Serverless VPC Access creates have priority 1000 (docs/gcp-facts.md §1.1).
AUTO_RULE_PRIORITY = 1000
# Long enough for "{prefix}-{region}" router names and "{prefix}{kind}-{region}-{connector}" rules.
_MAX_NAT_PREFIX = 30
_MAX_FIREWALL_PREFIX = 20


class PolicyError(ConfigError):
    """The policy file is invalid; ``errors`` lists every problem as "key.path: message"."""

    def __init__(self, errors: list[str], source: str = "policy") -> None:
        self.errors = tuple(errors)
        super().__init__(f"{source} is invalid:\n  " + "\n  ".join(self.errors))


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class PortSpec:
    """One ``ports`` entry: ``tcp:5432``, ``tcp:8000-8100``, ``udp`` (all ports), ``icmp``."""

    protocol: str
    ports: str | None = None  # "5432" or "8000-8100"; None = all ports of the protocol

    def __str__(self) -> str:
        return f"{self.protocol}:{self.ports}" if self.ports else self.protocol


@functools.lru_cache(maxsize=256)  # pure, immutable in and out; a sweep groups the same few policies' ports per connector
def group_ports(specs: tuple[PortSpec, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Group port specs by protocol, as a Compute ``allowed``/``denied`` list wants them.

    ``(tcp:5432, tcp:8000-8100, udp)`` -> ``(("tcp", ("5432", "8000-8100")), ("udp", ()))``;
    an empty port tuple means every port. Order follows first appearance.
    """
    grouped: dict[str, list[str] | None] = {}
    for spec in specs:
        if spec.protocol in grouped and grouped[spec.protocol] is None:
            continue  # already all ports
        if spec.ports is None:
            grouped[spec.protocol] = None
        else:
            grouped.setdefault(spec.protocol, [])
            current = grouped[spec.protocol]
            assert current is not None
            if spec.ports not in current:
                current.append(spec.ports)
    return tuple((protocol, tuple(ports or ())) for protocol, ports in grouped.items())


@dataclass(frozen=True)
class AllowRule:
    """Connector -> VMs with these tags, on these ports (a managed INGRESS allow rule)."""

    target_tags: tuple[str, ...]
    ports: tuple[PortSpec, ...]


@dataclass(frozen=True)
class EgressAllowRule:
    """Connector -> these destinations, on these ports (a managed EGRESS allow rule)."""

    destination_ranges: tuple[str, ...]
    ports: tuple[PortSpec, ...]


@dataclass(frozen=True)
class NatPolicy:
    mode: Mode = Mode.ENFORCE
    name_prefix: str = "egress-guard"
    ip_allocation: str = AUTO_ONLY  # AUTO_ONLY | MANUAL_ONLY
    addresses: tuple[str, ...] = ()  # MANUAL_ONLY: address names, or projects/P/regions/R/addresses/A
    min_ports_per_vm: int = 64
    log_filter: str | None = "ERRORS_ONLY"  # None: NAT logging off
    on_connector_create: bool = True

    def router_name(self, region: str) -> str:
        return f"{self.name_prefix}-{region}"

    def nat_name(self, region: str) -> str:
        return f"{self.name_prefix}-nat-{region}"

    def addresses_for(self, project: str, region: str) -> tuple[AddressName, ...]:
        """The static addresses to use for a NAT in ``project``/``region`` (MANUAL_ONLY).

        Bare names are looked up in the NAT's own project and region; full names
        (``projects/P/regions/R/addresses/A``) apply only to their region.
        """
        result = []
        for index, ref in enumerate(self.addresses):
            address = parse_address(ref, field=f"nat.ip_allocation[{index}]", default_project=project,
                                    default_region=region)
            if address.region == region:
                result.append(address)
        return tuple(result)


@dataclass(frozen=True)
class FirewallPolicy:
    mode: Mode = Mode.DRY_RUN
    name_prefix: str = "egress-guard-"
    deny_priority: int = 990
    allow_priority: int = 980
    allow: tuple[AllowRule, ...] = ()
    egress_allow: tuple[EgressAllowRule, ...] = ()
    auto_rules: str = "keep"  # keep | disable

    @property
    def disable_auto_rules(self) -> bool:
        return self.auto_rules == "disable"


@dataclass(frozen=True)
class Exemptions:
    projects: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()  # bare names or projects/P/global/networks/N
    connectors: tuple[str, ...] = ()  # bare names or projects/P/locations/R/connectors/C
    label_key: str | None = "egress-guard"
    label_value: str = "skip"

    def project_exempt(self, project: str) -> bool:
        return project in self.projects

    def network_exempt(self, network: NetworkName) -> bool:
        return network.name in self.networks or network.relative in self.networks

    def connector_exempt(self, connector: ConnectorName) -> bool:
        return connector.name in self.connectors or connector.relative in self.connectors

    def labels_exempt(self, labels: Mapping[str, str]) -> bool:
        return self.label_key is not None and labels.get(self.label_key) == self.label_value

    def reason_for(
        self,
        *,
        project: str | None = None,
        network: NetworkName | None = None,
        connector: ConnectorName | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str | None:
        """A sentence saying why this is exempt, or None. Checks project, network, connector, labels."""
        if project is not None and self.project_exempt(project):
            return f"project {project} is listed in the policy's exemptions.projects"
        if network is not None and self.network_exempt(network):
            return f"network {network.relative} is listed in the policy's exemptions.networks"
        if connector is not None and self.connector_exempt(connector):
            return f"connector {connector.relative} is listed in the policy's exemptions.connectors"
        if labels is not None and self.labels_exempt(labels):
            return f"it is labelled {self.label_key}={self.label_value} (the policy's exemptions.label)"
        return None


# The one place the default is written (design §2 notify_slack): every outcome but compliant is posted.
DEFAULT_NOTIFIED_OUTCOMES = tuple(o for o in Outcome if o is not Outcome.COMPLIANT)


# The destination that reads the single webhook every deployment has (SLACK_WEBHOOK_URL).
DEFAULT_DESTINATION = "default"
_DESTINATION_RE = re.compile(r"[a-z][a-z0-9-]{0,29}")


@dataclass(frozen=True)
class RouteMatch:
    """What a route matches; an empty tuple (or mapping) matches anything."""

    projects: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()  # folders/N
    networks: tuple[str, ...] = ()  # bare names (any project) or projects/P/global/networks/N
    labels: Mapping[str, str] = field(default_factory=dict)
    outcomes: tuple[Outcome, ...] = ()

    def matches(self, finding: Finding) -> bool:
        if self.projects and finding.project not in self.projects:
            return False
        if self.folders and finding.folder not in self.folders:
            return False
        if self.networks:
            network = finding.network
            if not network or (network not in self.networks and network.rsplit("/", 1)[-1] not in self.networks):
                return False
        if any(finding.labels.get(key) != value for key, value in self.labels.items()):
            return False
        return not self.outcomes or finding.outcome in self.outcomes


@dataclass(frozen=True)
class Route:
    destination: str
    match: RouteMatch = field(default_factory=RouteMatch)


@dataclass(frozen=True)
class NotifyPolicy:
    outcomes: tuple[Outcome, ...] = DEFAULT_NOTIFIED_OUTCOMES
    routes: tuple[Route, ...] = ()
    default: str | None = DEFAULT_DESTINATION  # None: findings no route matches are not posted

    def should_notify(self, outcome: Outcome) -> bool:
        return outcome in self.outcomes

    def destinations_for(self, finding: Finding) -> tuple[str, ...]:
        """Every destination a finding goes to, each once, in the order of the routes; the default
        when no route matches. Empty when its outcome is not posted."""
        if not self.should_notify(finding.outcome):
            return ()
        chosen: dict[str, None] = {}
        for route in self.routes:
            if route.match.matches(finding):
                chosen.setdefault(route.destination, None)
        if not chosen and self.default is not None:
            chosen[self.default] = None
        return tuple(chosen)

    @property
    def destinations(self) -> tuple[str, ...]:
        """Every destination the policy can send to (each needs its webhook at cold start)."""
        names = dict.fromkeys(route.destination for route in self.routes)
        if self.default is not None:
            names.setdefault(self.default, None)
        return tuple(names)


def webhook_variable(destination: str) -> str:
    """The environment variable holding a destination's webhook (a secret environment variable)."""
    if destination == DEFAULT_DESTINATION:
        return "SLACK_WEBHOOK_URL"
    return "SLACK_WEBHOOK_URL_" + destination.upper().replace("-", "_")


@dataclass(frozen=True)
class Policy:
    nat: NatPolicy = field(default_factory=NatPolicy)
    firewall: FirewallPolicy = field(default_factory=FirewallPolicy)
    exemptions: Exemptions = field(default_factory=Exemptions)
    event_max_age_seconds: int = 600
    notify: NotifyPolicy = field(default_factory=NotifyPolicy)
    source: str = field(default="built-in defaults", compare=False)  # the file it came from
    # Accepted but worth a person's attention (logged by load_policy).
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_dict(cls, data: object, *, source: str = "policy") -> "Policy":
        """Validate a parsed YAML document; raise ``PolicyError`` listing every problem."""
        return _Parser(source).policy(data)

    def to_dict(self) -> dict[str, Any]:
        """The effective policy in the file's own shape (``Policy.from_dict(p.to_dict()) == p``)."""
        nat = self.nat
        fw = self.firewall
        ex = self.exemptions
        return {
            "nat": {
                "mode": nat.mode.value,
                "name_prefix": nat.name_prefix,
                "ip_allocation": list(nat.addresses) if nat.ip_allocation == MANUAL_ONLY else AUTO_ONLY,
                "min_ports_per_vm": nat.min_ports_per_vm,
                "log_filter": nat.log_filter,
                "on_connector_create": nat.on_connector_create,
            },
            "firewall": {
                "mode": fw.mode.value,
                "name_prefix": fw.name_prefix,
                "deny_priority": fw.deny_priority,
                "allow_priority": fw.allow_priority,
                "allow": [{"target_tags": list(r.target_tags), "ports": [str(p) for p in r.ports]} for r in fw.allow],
                "egress_allow": [{"destination_ranges": list(r.destination_ranges), "ports": [str(p) for p in r.ports]}
                                 for r in fw.egress_allow],
                "auto_rules": fw.auto_rules,
            },
            "exemptions": {
                "projects": list(ex.projects),
                "networks": list(ex.networks),
                "connectors": list(ex.connectors),
                "label": f"{ex.label_key}={ex.label_value}" if ex.label_key is not None else None,
            },
            "event_max_age_seconds": self.event_max_age_seconds,
            "notify": {
                "outcomes": [o.value for o in self.notify.outcomes],
                "routes": [_route_dict(route) for route in self.notify.routes],
                "default": self.notify.default,
            },
        }

    def mode_for(self, guardrail: str) -> Mode:
        """The mode of a guardrail by its function name (``ensure_nat``, ``replace_connector_firewalls``)."""
        if guardrail == "ensure_nat":
            return self.nat.mode
        if guardrail == "replace_connector_firewalls":
            return self.firewall.mode
        raise KeyError(f"no guardrail named {guardrail!r}")


def load_policy(path: str | None = None) -> Policy:
    """Load and validate the policy from ``path``, else ``$EGRESS_GUARD_POLICY``, else the defaults."""
    chosen = path if path is not None else os.environ.get(POLICY_ENV) or None
    if chosen is None:
        return Policy()
    try:
        with open(chosen, "r", encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise PolicyError([f"cannot read the policy file: {exc.strerror or exc}"], source=chosen) from None
    policy = parse_policy_text(text, source=chosen)
    for warning in policy.warnings:
        _log.warning("policy %s: %s", chosen, warning)
    return policy


def parse_policy_text(text: str, *, source: str = "policy") -> Policy:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError([f"not valid YAML{where}: {problem}"], source=source) from None
    return Policy.from_dict({} if data is None else data, source=source)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --------------------------------------------------------------------------- validation

_PORT_RE = re.compile(r"([a-z]+)(?::([0-9]{1,5})(?:-([0-9]{1,5}))?)?")
_PREFIX_RE = re.compile(r"[a-z][-a-z0-9]*")


class _Missing:
    pass


_MISSING = _Missing()


class _Parser:
    """Walks the document once, collecting every error with its key path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    # -- shapes

    def section(self, data: object, path: str, known: tuple[str, ...]) -> Mapping[str, Any]:
        if data is _MISSING or data is None:
            return {}
        if not isinstance(data, Mapping):
            self.error(path, f"should be a mapping, got {_kind(data)}")
            return {}
        for key in data:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.error(_join(path, str(key)), f"unknown key{suggestion}; known keys: {', '.join(known)}")
        return data

    def items(self, data: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            self.error(_join(path, key), f"should be a list, got {_kind(value)}")
            return []
        return value

    def choice(self, data: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...], default: str) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or value not in choices:
            self.error(_join(path, key), f"{_show(value)} is not one of: {', '.join(choices)}")
            return default
        return value

    def integer(self, data: Mapping[str, Any], key: str, path: str, default: int, low: int, high: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(_join(path, key), f"{_show(value)} is not a whole number")
            return default
        if not low <= value <= high:
            self.error(_join(path, key), f"{value} is out of range ({low}-{high})")
            return default
        return value

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.error(_join(path, key), f"{_show(value)} is not true or false")
            return default
        return value

    def mode(self, data: Mapping[str, Any], path: str, default: Mode) -> Mode:
        return Mode(self.choice(data, "mode", path, tuple(m.value for m in Mode), default.value))

    def prefix(self, data: Mapping[str, Any], path: str, default: str, max_len: int) -> str:
        value = data.get("name_prefix", default)
        key = _join(path, "name_prefix")
        if not isinstance(value, str) or not _PREFIX_RE.fullmatch(value):
            self.error(key, f"{_show(value)} is not a valid name prefix (lowercase letters, digits and hyphens, "
                       "starting with a letter)")
            return default
        if len(value) > max_len:
            self.error(key, f"{_show(value)} is longer than {max_len} characters; resource names would not fit")
            return default
        return value

    def projects(self, data: Mapping[str, Any], path: str) -> list[str]:
        return [checked for index, item in enumerate(self.items(data, "projects", path))
                if (checked := self.checked(validate_project, item, f"{path}.projects[{index}]"))]

    def names(self, data: Mapping[str, Any], key: str, path: str, parse: Any, validate: Any) -> list[str]:
        """A list of resources named either by full path (parsed, kept relative) or by short name."""
        names = []
        for index, item in enumerate(self.items(data, key, path)):
            item_path = f"{path}.{key}[{index}]"
            if isinstance(item, str) and "/" in item:
                try:
                    names.append(parse(item, field=item_path).relative)
                except InvalidName as exc:
                    self.errors.append(str(exc))
            elif self.checked(validate, item, item_path):
                names.append(item)
        return names

    def checked(self, check: Any, value: object, path: str) -> Any:
        """Run a names.validate_* function; record its message under ``path``."""
        try:
            return check(value, path)
        except InvalidName as exc:
            self.errors.append(str(exc))
            return None

    # -- sections

    def policy(self, data: object) -> Policy:
        if not isinstance(data, Mapping):
            raise PolicyError([f"the policy should be a mapping at the top level, got {_kind(data)}"], self.source)
        top = self.section(data, "", ("nat", "firewall", "exemptions", "event_max_age_seconds", "notify"))
        nat = self.nat(top.get("nat", _MISSING))
        firewall = self.firewall(top.get("firewall", _MISSING))
        exemptions = self.exemptions(top.get("exemptions", _MISSING))
        max_age = self.integer(top, "event_max_age_seconds", "", 600, 1, 7 * 24 * 3600)
        notify = self.notify(top.get("notify", _MISSING))
        if self.errors:
            raise PolicyError(self.errors, self.source)
        return Policy(nat=nat, firewall=firewall, exemptions=exemptions, event_max_age_seconds=max_age,
                      notify=notify, source=self.source, warnings=tuple(self.warnings))

    def nat(self, raw: object) -> NatPolicy:
        path = "nat"
        data = self.section(raw, path, tuple(f.name for f in fields(NatPolicy) if f.name != "addresses"))
        defaults = NatPolicy()
        ip_allocation, addresses = AUTO_ONLY, ()
        value = data.get("ip_allocation", AUTO_ONLY)
        if isinstance(value, list):
            if not value:
                self.error(_join(path, "ip_allocation"), "an empty list names no addresses; use AUTO_ONLY")
            checked = []
            for index, ref in enumerate(value):
                item_path = f"{path}.ip_allocation[{index}]"
                if isinstance(ref, str) and "/" in ref:
                    try:
                        checked.append(parse_address(ref, field=item_path).relative)
                    except InvalidName as exc:
                        self.errors.append(str(exc))
                elif self.checked(validate_compute_name, ref, item_path):
                    checked.append(ref)
            ip_allocation, addresses = MANUAL_ONLY, tuple(checked)
        elif value != AUTO_ONLY:
            self.error(_join(path, "ip_allocation"),
                       f"{_show(value)} should be AUTO_ONLY or a list of static address names")
        log_filter = data.get("log_filter", defaults.log_filter)
        if log_filter is not None and log_filter not in NAT_LOG_FILTERS:
            self.error(_join(path, "log_filter"),
                       f"{_show(log_filter)} is not one of: {', '.join(NAT_LOG_FILTERS)}, null (logging off)")
            log_filter = defaults.log_filter
        return NatPolicy(
            mode=self.mode(data, path, defaults.mode),
            name_prefix=self.prefix(data, path, defaults.name_prefix, _MAX_NAT_PREFIX),
            ip_allocation=ip_allocation,
            addresses=addresses,
            # Cloud NAT accepts 2..65536 ports per VM (rounded up to a power of two).
            min_ports_per_vm=self.integer(data, "min_ports_per_vm", path, defaults.min_ports_per_vm, 2, 65536),
            log_filter=log_filter,
            on_connector_create=self.boolean(data, "on_connector_create", path, defaults.on_connector_create),
        )

    def ports(self, value: object, path: str) -> tuple[PortSpec, ...]:
        if not isinstance(value, list) or not value:
            self.error(path, "should be a non-empty list like [tcp:5432, tcp:8000-8100, udp, icmp]")
            return ()
        specs = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            spec = self.port(item, item_path)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def port(self, item: object, path: str) -> PortSpec | None:
        if not isinstance(item, str):
            self.error(path, f"{_show(item)} should be a string like \"tcp:5432\" (protocol, then optional ports)")
            return None
        match = _PORT_RE.fullmatch(item.strip())
        if not match:
            self.error(path, f"{_show(item)} is not a valid port (expected tcp:5432, tcp:8000-8100, udp, icmp)")
            return None
        protocol, low, high = match.groups()
        if protocol not in FIREWALL_PROTOCOLS:
            self.error(path, f"{_show(item)} has an unknown protocol {protocol!r} "
                       f"(one of: {', '.join(FIREWALL_PROTOCOLS)})")
            return None
        if low is None:
            return PortSpec(protocol)
        if protocol not in _PORTED_PROTOCOLS:
            self.error(path, f"{_show(item)}: ports are only allowed with {', '.join(_PORTED_PROTOCOLS)}")
            return None
        first, last = int(low), int(high) if high is not None else int(low)
        if not (1 <= first <= 65535 and 1 <= last <= 65535):
            self.error(path, f"{_show(item)} is not a valid port (ports are 1-65535)")
            return None
        if first > last:
            self.error(path, f"{_show(item)} is not a valid port range (the first port is larger than the last)")
            return None
        return PortSpec(protocol, str(first) if first == last else f"{first}-{last}")

    def firewall(self, raw: object) -> FirewallPolicy:
        path = "firewall"
        data = self.section(raw, path, tuple(f.name for f in fields(FirewallPolicy)))
        defaults = FirewallPolicy()
        deny = self.integer(data, "deny_priority", path, defaults.deny_priority, 0, AUTO_RULE_PRIORITY - 1)
        allow_priority = self.integer(data, "allow_priority", path, defaults.allow_priority, 0, 65535)
        if allow_priority >= deny:
            self.error(_join(path, "allow_priority"),
                       f"{allow_priority} must be a smaller number (higher priority) than firewall.deny_priority "
                       f"({deny}), or the deny rule would win")
        rules = []
        for index, item in enumerate(self.items(data, "allow", path)):
            item_path = f"{path}.allow[{index}]"
            entry = self.section(item, item_path, ("target_tags", "ports"))
            if not isinstance(item, Mapping):
                continue
            tags_value = entry.get("target_tags")
            tags: list[str] = []
            if not isinstance(tags_value, list) or not tags_value:
                self.error(f"{item_path}.target_tags",
                           "should be a non-empty list of network tags (a rule for every VM would undo the narrowing)")
            else:
                for tag_index, tag in enumerate(tags_value):
                    checked = self.checked(validate_network_tag, tag, f"{item_path}.target_tags[{tag_index}]")
                    if checked:
                        tags.append(checked)
            rules.append(AllowRule(tuple(tags), self.ports(entry.get("ports"), f"{item_path}.ports")))
        egress_rules = []
        for index, item in enumerate(self.items(data, "egress_allow", path)):
            item_path = f"{path}.egress_allow[{index}]"
            entry = self.section(item, item_path, ("destination_ranges", "ports"))
            if not isinstance(item, Mapping):
                continue
            ranges_value = entry.get("destination_ranges")
            ranges: list[str] = []
            if not isinstance(ranges_value, list) or not ranges_value:
                self.error(f"{item_path}.destination_ranges", "should be a non-empty list of CIDR ranges like 10.0.0.0/8")
            else:
                for range_index, cidr in enumerate(ranges_value):
                    checked = self.cidr(cidr, f"{item_path}.destination_ranges[{range_index}]")
                    if checked:
                        ranges.append(checked)
            egress_rules.append(EgressAllowRule(tuple(ranges), self.ports(entry.get("ports"), f"{item_path}.ports")))
        mode = self.mode(data, path, defaults.mode)
        if mode is Mode.ENFORCE and not rules:
            self.warnings.append(
                "firewall.mode is enforce with an empty firewall.allow list: each connector will be denied "
                "access to every VM of its network (internet egress is unaffected)")
        return FirewallPolicy(
            mode=mode,
            name_prefix=self.prefix(data, path, defaults.name_prefix, _MAX_FIREWALL_PREFIX),
            deny_priority=deny,
            allow_priority=allow_priority,
            allow=tuple(rules),
            egress_allow=tuple(egress_rules),
            auto_rules=self.choice(data, "auto_rules", path, ("keep", "disable"), defaults.auto_rules),
        )

    def cidr(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"{_show(value)} should be a CIDR range string like 10.0.0.0/8")
            return None
        try:
            network = ipaddress.ip_network(value.strip(), strict=True)
        except ValueError as exc:
            self.error(path, f"{_show(value)} is not a valid CIDR range ({exc})")
            return None
        return str(network)

    def exemptions(self, raw: object) -> Exemptions:
        path = "exemptions"
        data = self.section(raw, path, ("projects", "networks", "connectors", "label"))
        defaults = Exemptions()
        projects = self.projects(data, path)
        networks = self.names(data, "networks", path, parse_network, validate_compute_name)
        connectors = self.names(data, "connectors", path, parse_connector, validate_connector_name)
        label_key, label_value = defaults.label_key, defaults.label_value
        if "label" in data:
            label = data["label"]
            label_path = f"{path}.label"
            if label is None or label == "":
                label_key, label_value = None, ""
            elif not isinstance(label, str) or "=" not in label:
                self.error(label_path, f"{_show(label)} should be \"key=value\" (e.g. egress-guard=skip) or null")
            else:
                key, value = label.split("=", 1)
                label_key = self.checked(validate_label_key, key, f"{label_path} (key)")
                label_value = self.checked(validate_label_value, value, f"{label_path} (value)") or ""
        return Exemptions(tuple(projects), tuple(networks), tuple(connectors), label_key, label_value)

    def notify(self, raw: object) -> NotifyPolicy:
        path = "notify"
        data = self.section(raw, path, ("outcomes", "routes", "default"))
        defaults = NotifyPolicy()
        outcomes = self.outcomes(data, path) if "outcomes" in data else defaults.outcomes
        routes = tuple(route for index, item in enumerate(self.items(data, "routes", path))
                       if (route := self.route(item, f"{path}.routes[{index}]")) is not None)
        default: str | None = defaults.default
        if "default" in data:
            default = None if data["default"] is None else self.destination(data["default"], f"{path}.default")
        return NotifyPolicy(outcomes, routes, default)

    def outcomes(self, data: Mapping[str, Any], path: str) -> tuple[Outcome, ...]:
        outcomes: list[Outcome] = []
        known = tuple(o.value for o in Outcome)
        for index, item in enumerate(self.items(data, "outcomes", path)):
            if isinstance(item, str) and item in known:
                if Outcome(item) not in outcomes:
                    outcomes.append(Outcome(item))
            else:
                self.error(f"{path}.outcomes[{index}]", f"{_show(item)} is not one of: {', '.join(known)}")
        return tuple(outcomes)

    def destination(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not _DESTINATION_RE.fullmatch(value):
            self.error(path, f"{_show(value)} is not a destination name (1-30 lowercase letters, digits and "
                             "hyphens, starting with a letter; its webhook is SLACK_WEBHOOK_URL_<NAME>)")
            return None
        return value

    def route(self, raw: object, path: str) -> Route | None:
        data = self.section(raw, path, ("destination", "match"))
        if not isinstance(raw, Mapping):
            return None
        if "destination" not in data:
            self.error(f"{path}.destination", "is required: the name of the Slack destination")
        destination = self.destination(data.get("destination"), f"{path}.destination") \
            if "destination" in data else None
        match_path = f"{path}.match"
        match = self.section(data.get("match", _MISSING), match_path,
                             ("projects", "folders", "networks", "labels", "outcomes"))
        projects = self.projects(match, match_path)
        folders = []
        for index, item in enumerate(self.items(match, "folders", match_path)):
            if isinstance(item, str) and re.fullmatch(r"folders/[0-9]{1,20}", item):
                folders.append(item)
            else:
                self.error(f"{match_path}.folders[{index}]", f"{_show(item)} is not a folder: folders/NUMBER")
        networks = self.names(match, "networks", match_path, parse_network, validate_compute_name)
        labels: dict[str, str] = {}
        raw_labels = match.get("labels")
        if raw_labels is not None and not isinstance(raw_labels, Mapping):
            self.error(f"{match_path}.labels", f"should be a mapping like {{team: payments}}, got {_kind(raw_labels)}")
        for key, value in (raw_labels or {}).items() if isinstance(raw_labels, Mapping) else ():
            label_path = f"{match_path}.labels.{key}"
            checked_key = self.checked(validate_label_key, key, f"{label_path} (key)")
            checked_value = self.checked(validate_label_value, value, label_path)
            if checked_key and checked_value is not None:
                labels[checked_key] = checked_value
        outcomes = self.outcomes(match, match_path) if "outcomes" in match else ()
        if destination is None:
            return None
        return Route(destination, RouteMatch(tuple(projects), tuple(folders), tuple(networks), labels, outcomes))


def _route_dict(route: Route) -> dict[str, Any]:
    match = route.match
    written: dict[str, Any] = {"projects": list(match.projects), "folders": list(match.folders),
                               "networks": list(match.networks), "labels": dict(match.labels),
                               "outcomes": [o.value for o in match.outcomes]}
    return {"destination": route.destination, "match": {k: v for k, v in written.items() if v}}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "true/false", type(None): "nothing"}.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    if isinstance(value, str):
        text = '"' + value + '"'
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
