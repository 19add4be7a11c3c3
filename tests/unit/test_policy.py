"""Policy: defaults, the example files, and errors that name the key."""

from __future__ import annotations

import logging
import pathlib
import textwrap

import pytest

from egress_guard.findings import Mode, Outcome
from egress_guard.names import AddressName, ConnectorName, NetworkName
from egress_guard.policy import (
    AllowRule,
    EgressAllowRule,
    Policy,
    PolicyError,
    PortSpec,
    group_ports,
    load_policy,
    parse_policy_text,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policy"


def errors_of(text: str) -> tuple[str, ...]:
    with pytest.raises(PolicyError) as caught:
        parse_policy_text(textwrap.dedent(text), source="test.yaml")
    return caught.value.errors


def test_policy_defaults_match_the_issue() -> None:
    policy = Policy()
    assert policy.nat.mode is Mode.ENFORCE
    assert policy.nat.name_prefix == "egress-guard" and policy.nat.router_name("europe-west2") == "egress-guard-europe-west2"
    assert policy.nat.ip_allocation == "AUTO_ONLY" and policy.nat.addresses == ()
    assert policy.nat.min_ports_per_vm == 64 and policy.nat.log_filter == "ERRORS_ONLY"
    assert policy.nat.on_connector_create is True
    assert policy.firewall.mode is Mode.DRY_RUN
    assert policy.firewall.name_prefix == "egress-guard-"
    assert (policy.firewall.deny_priority, policy.firewall.allow_priority) == (990, 980)
    assert policy.firewall.allow == () and policy.firewall.egress_allow == ()
    assert policy.firewall.auto_rules == "keep" and not policy.firewall.disable_auto_rules
    assert policy.exemptions.label_key == "egress-guard" and policy.exemptions.label_value == "skip"
    assert policy.event_max_age_seconds == 600
    assert Outcome.COMPLIANT not in policy.notify.outcomes
    assert set(policy.notify.outcomes) == set(Outcome) - {Outcome.COMPLIANT}
    assert policy.mode_for("ensure_nat") is Mode.ENFORCE
    assert policy.mode_for("replace_connector_firewalls") is Mode.DRY_RUN


def test_load_policy_without_a_file_gives_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EGRESS_GUARD_POLICY", raising=False)
    assert load_policy() == Policy()
    assert parse_policy_text("") == Policy()


def test_example_default_yaml_is_the_defaults() -> None:
    assert load_policy(str(EXAMPLES / "default.yaml")) == Policy()


def test_example_enforce_db_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGRESS_GUARD_POLICY", str(EXAMPLES / "enforce-db.yaml"))
    policy = load_policy()
    assert policy.source.endswith("enforce-db.yaml")
    assert policy.firewall.mode is Mode.ENFORCE and policy.nat.mode is Mode.ENFORCE
    assert policy.firewall.allow == (AllowRule(("db",), (PortSpec("tcp", "5432"),)),)
    assert policy.warnings == ()


def test_policy_round_trips_through_to_dict() -> None:
    policy = parse_policy_text(textwrap.dedent("""
        nat: {ip_allocation: [nat-ip-1, projects/p-123456/regions/europe-west2/addresses/nat-ip-2], log_filter: null}
        firewall:
          allow: [{target_tags: [db, cache], ports: [tcp:5432, tcp:6379-6380, icmp]}]
          egress_allow: [{destination_ranges: [10.20.0.0/16], ports: [tcp:443]}]
          auto_rules: disable
        exemptions: {projects: [sandbox-1], networks: [lab, projects/p-123456/global/networks/n1], connectors: [c1],
                     label: null}
        notify: {outcomes: [blocked, failed]}
    """))
    assert Policy.from_dict(policy.to_dict()) == policy
    assert policy.nat.ip_allocation == "MANUAL_ONLY" and policy.nat.log_filter is None
    assert policy.firewall.egress_allow == (EgressAllowRule(("10.20.0.0/16",), (PortSpec("tcp", "443"),)),)
    assert policy.firewall.disable_auto_rules
    assert policy.notify.outcomes == (Outcome.BLOCKED, Outcome.FAILED)
    assert policy.notify.should_notify(Outcome.FAILED) and not policy.notify.should_notify(Outcome.REMEDIATED)
    assert policy.exemptions.label_key is None and not policy.exemptions.labels_exempt({"egress-guard": "skip"})


def test_policy_error_names_the_port_key() -> None:
    errors = errors_of("""
        firewall:
          allow:
            - target_tags: [db]
              ports: [tcp:5432, "tcp:99999"]
    """)
    assert errors == ('firewall.allow[0].ports[1]: "tcp:99999" is not a valid port (ports are 1-65535)',)


@pytest.mark.parametrize("ports,message", [
    ('["tcp:80-20"]', 'firewall.allow[0].ports[0]: "tcp:80-20" is not a valid port range'),
    ('["icmp:8"]', 'firewall.allow[0].ports[0]: "icmp:8": ports are only allowed with tcp, udp, sctp'),
    ('["gre"]', "firewall.allow[0].ports[0]: \"gre\" has an unknown protocol 'gre'"),
    ("[5432]", 'firewall.allow[0].ports[0]: 5432 should be a string like "tcp:5432"'),
    ('["tcp:"]', 'firewall.allow[0].ports[0]: "tcp:" is not a valid port'),
    ("[]", "firewall.allow[0].ports: should be a non-empty list"),
])
def test_policy_port_errors(ports: str, message: str) -> None:
    errors = errors_of(f"firewall: {{allow: [{{target_tags: [db], ports: {ports}}}]}}")
    assert any(error.startswith(message) for error in errors), errors


def test_policy_rejects_unknown_keys_with_a_suggestion() -> None:
    errors = errors_of("""
        nat:
          min_port_per_vm: 64
        firewal: {}
    """)
    assert any(e.startswith("nat.min_port_per_vm: unknown key (did you mean 'min_ports_per_vm'?)") for e in errors)
    assert any(e.startswith("firewal: unknown key (did you mean 'firewall'?)") for e in errors)


def test_policy_reports_every_error_at_once() -> None:
    errors = errors_of("""
        nat: {mode: sometimes, min_ports_per_vm: 1, log_filter: VERBOSE, on_connector_create: "yes",
              name_prefix: Egress, ip_allocation: AUTOMATIC}
        firewall: {deny_priority: 1000, allow_priority: 995, auto_rules: delete,
                   allow: [{target_tags: [], ports: [tcp]}, {target_tags: [Bad_Tag], ports: [tcp], extra: 1}, 7],
                   egress_allow: [{destination_ranges: [10.0.0.1/8], ports: [udp]}]}
        exemptions: {projects: [X], networks: ["a b"], connectors: [way-too-long-connector-name], label: skip}
        event_max_age_seconds: 0
        notify: {outcomes: [remediated, ignored]}
    """)
    expected_prefixes = [
        'nat.mode: "sometimes" is not one of: enforce, dry-run',
        "nat.min_ports_per_vm: 1 is out of range (2-65536)",
        'nat.log_filter: "VERBOSE" is not one of',
        'nat.on_connector_create: "yes" is not true or false',
        'nat.name_prefix: "Egress" is not a valid name prefix',
        'nat.ip_allocation: "AUTOMATIC" should be AUTO_ONLY or a list',
        "firewall.deny_priority: 1000 is out of range (0-999)",
        "firewall.allow_priority: 995 must be a smaller number (higher priority) than firewall.deny_priority (990)",
        'firewall.auto_rules: "delete" is not one of: keep, disable',
        "firewall.allow[0].target_tags: should be a non-empty list",
        "firewall.allow[1].extra: unknown key",
        "firewall.allow[1].target_tags[0]: 'Bad_Tag' is not a network tag",
        "firewall.allow[2]: should be a mapping, got a number",
        "firewall.egress_allow[0].destination_ranges[0]: \"10.0.0.1/8\" is not a valid CIDR range",
        "exemptions.projects[0]: 'X' is not a project id",
        "exemptions.networks[0]: 'a b' contains whitespace",
        "exemptions.connectors[0]: 'way-too-long-connector-name' is too long for a connector",
        'exemptions.label: "skip" should be "key=value"',
        "event_max_age_seconds: 0 is out of range",
        'notify.outcomes[1]: "ignored" is not one of',
    ]
    for prefix in expected_prefixes:
        assert any(error.startswith(prefix) for error in errors), (prefix, errors)
    assert len(errors) == len(expected_prefixes), errors


def test_policy_error_message_names_the_file() -> None:
    with pytest.raises(PolicyError, match=r"^test.yaml is invalid:\n  nat.mode: "):
        parse_policy_text("nat: {mode: on}", source="test.yaml")


def test_policy_rejects_bad_yaml_and_duplicate_keys() -> None:
    assert errors_of("nat: [unclosed")[0].startswith("not valid YAML (line 1")
    assert "duplicate key 'mode'" in errors_of("nat:\n  mode: enforce\n  mode: dry-run\n")[0]
    assert errors_of("- just a list") == ("the policy should be a mapping at the top level, got a list",)


def test_load_policy_missing_file() -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy("/nonexistent/policy.yaml")


def test_policy_enforce_with_empty_allow_list_warns(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("firewall: {mode: enforce}\n")
    with caplog.at_level(logging.WARNING, logger="egress_guard.policy"):
        policy = load_policy(str(path))
    assert policy.firewall.mode is Mode.ENFORCE
    assert len(policy.warnings) == 1 and "empty firewall.allow list" in policy.warnings[0]
    assert "empty firewall.allow list" in caplog.text


def test_group_ports_merges_by_protocol() -> None:
    specs = (PortSpec("tcp", "5432"), PortSpec("udp"), PortSpec("tcp", "8000-8100"), PortSpec("tcp", "5432"),
             PortSpec("udp", "53"), PortSpec("icmp"))
    assert group_ports(specs) == (("tcp", ("5432", "8000-8100")), ("udp", ()), ("icmp", ()))


def test_exemptions_reason_for() -> None:
    policy = parse_policy_text(textwrap.dedent("""
        exemptions:
          projects: [sandbox-project]
          networks: [lab-net, projects/shared-host/global/networks/core]
          connectors: [legacy, projects/p-123456/locations/us-east1/connectors/c2]
    """))
    ex = policy.exemptions
    assert ex.reason_for(project="sandbox-project") == "project sandbox-project is listed in the policy's exemptions.projects"
    assert ex.reason_for(network=NetworkName("any-project", "lab-net")) is not None
    assert ex.reason_for(network=NetworkName("shared-host", "core")) is not None
    assert ex.reason_for(network=NetworkName("other-host", "core")) is None
    assert ex.reason_for(connector=ConnectorName("a-project", "europe-west2", "legacy")) is not None
    assert ex.reason_for(connector=ConnectorName("p-123456", "us-east1", "c2")) is not None
    assert ex.reason_for(connector=ConnectorName("p-123456", "us-east4", "c2")) is None
    assert ex.reason_for(labels={"egress-guard": "skip"}) == \
        "it is labelled egress-guard=skip (the policy's exemptions.label)"
    assert ex.reason_for(project="other-project", labels={"egress-guard": "no"}) is None


def test_nat_addresses_for_region() -> None:
    policy = parse_policy_text("nat: {ip_allocation: [ip-a, projects/p-123456/regions/us-east1/addresses/ip-b]}")
    assert policy.nat.addresses_for("p-123456", "europe-west2") == (AddressName("p-123456", "europe-west2", "ip-a"),)
    assert policy.nat.addresses_for("p-123456", "us-east1") == (
        AddressName("p-123456", "us-east1", "ip-a"), AddressName("p-123456", "us-east1", "ip-b"))
    errors = errors_of("nat: {ip_allocation: []}")
    assert errors[0].startswith("nat.ip_allocation: an empty list names no addresses")
