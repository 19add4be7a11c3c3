"""Slack and terminal rendering of findings: goldens for every outcome, Slack's limits, escaping.

Regenerate the goldens after an intended change of the message:
    EGRESS_GUARD_UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/unit/test_slack_render.py
and review the diff of tests/fixtures/slack/golden/ like code.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os

import pytest
from rich.console import Console

from egress_guard.findings import Change, Mode, Outcome
from egress_guard.notify.render import (
    MAX_BLOCKS,
    MAX_FIELDS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    render_finding,
    render_text_only,
)
from egress_guard.notify.summary import console_links, firewall_facts, nat_coverage, summarise_change
from egress_guard.notify.terminal import render_finding_rich
from localcloud.slack_receiver import explain_payload
from tests.slack_helpers import GOLDEN_DIR, finding_names, load_finding, with_firewall_changes

UPDATE_GOLDENS = os.environ.get("EGRESS_GUARD_UPDATE_GOLDENS") == "1"


def _texts(payload: dict) -> list[tuple[str, str]]:
    """(block type, text) of every text in the blocks."""
    found = []
    for block in payload["blocks"]:
        if "text" in block:
            found.append((block["type"], block["text"]["text"]))
        for item in block.get("fields", []) + block.get("elements", []):
            found.append((block["type"], item["text"]))
    return found


def assert_within_slack_limits(payload: dict) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER_TEXT
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= MAX_SECTION_TEXT
            assert len(block.get("fields", [])) <= MAX_FIELDS
    assert explain_payload(payload) == (None, "ok")


@pytest.mark.parametrize("name", finding_names())
def test_render_finding_matches_golden(name: str) -> None:
    finding = load_finding(name)
    rendered = {"webhook": render_finding(finding), "text_only": render_text_only(finding)}
    golden = GOLDEN_DIR / f"{name}.json"
    if UPDATE_GOLDENS or not golden.exists():
        if not UPDATE_GOLDENS:
            pytest.fail(f"no golden for {name}: run with EGRESS_GUARD_UPDATE_GOLDENS=1 and review it")
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(rendered, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert rendered == json.loads(golden.read_text())


def test_render_fixtures_cover_every_outcome_and_both_modes() -> None:
    findings = [load_finding(name) for name in finding_names()]
    assert {finding.outcome for finding in findings} == set(Outcome)
    assert {finding.mode for finding in findings} == set(Mode)


@pytest.mark.parametrize("name", finding_names())
def test_render_finding_passes_slack_validation(name: str) -> None:
    finding = load_finding(name)
    assert_within_slack_limits(render_finding(finding))
    assert explain_payload(render_text_only(finding)) == (None, "ok")


@pytest.mark.parametrize("name", finding_names())
def test_render_finding_header_says_outcome_and_dry_run(name: str) -> None:
    finding = load_finding(name)
    payload = render_finding(finding)
    header = payload["blocks"][0]
    assert header["type"] == "header"
    title = {"planned": "Planned", "remediated": "Remediated", "compliant": "Compliant", "exempt": "Exempt",
             "blocked": "Blocked", "failed": "Failed", "undone": "Undone"}[finding.outcome.value]
    assert title in header["text"]["text"]
    badge_blocks = [text for kind, text in _texts(payload) if kind == "context" and "DRY-RUN" in text]
    if finding.mode is Mode.DRY_RUN:
        assert "DRY-RUN" in header["text"]["text"]
        assert badge_blocks, "a dry-run message carries a DRY-RUN badge under the header"
        assert "DRY-RUN" in payload["text"] and "DRY-RUN" in render_text_only(finding)["text"]
    else:
        assert "DRY-RUN" not in json.dumps(payload)


def test_render_finding_fields_say_where_and_who() -> None:
    finding = load_finding("remediated-firewalls")
    fields = next(block["fields"] for block in render_finding(finding)["blocks"] if "fields" in block)
    text = "\n".join(field["text"] for field in fields)
    for expected in ("acme-prod", "europe-west2", "shared-vpc", "conn-payments", "alice@acme.example",
                     "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"):
        assert expected in text


def test_render_finding_escapes_mrkdwn_control_characters() -> None:
    finding = load_finding("failed")  # its principal is "bob <ops> & co@acme.example"
    dumped = json.dumps(render_finding(finding))
    assert "bob &lt;ops&gt; &amp; co@acme.example" in dumped
    assert "<ops>" not in dumped


def test_render_finding_with_500_changes_fits_slack_limits() -> None:
    finding = with_firewall_changes(load_finding("remediated-firewalls"), 500)
    payload = render_finding(finding)
    assert_within_slack_limits(payload)
    texts = "\n".join(text for _, text in _texts(payload))
    assert "*Changes (500)*" in texts
    assert "500 changes: 500 × compute.firewalls.insert" in texts
    assert "… and 490 more changes" in texts
    assert explain_payload(render_text_only(finding)) == (None, "ok")
    assert len(render_text_only(finding)["text"]) <= 3000


def test_render_finding_clips_huge_texts_within_limits() -> None:
    base = load_finding("blocked")
    long_name = "projects/acme-prod/locations/europe-west2/connectors/" + "c" * 2000
    finding = dataclasses.replace(
        base,
        reason="A & B <c> " * 1000,
        guardrail="g" * 500,
        resource=dataclasses.replace(base.resource, name=long_name),
        trigger=dataclasses.replace(base.trigger, principal="p" * 5000, methodName="m" * 5000),
        links=tuple(f"https://example.com/{index}" for index in range(300)),
        changes=tuple(
            Change(action="compute.firewalls.patch", resource="x" * 3000,
                   before={"name": "x", "sourceRanges": [f"10.{i // 256}.{i % 256}.0/24" for i in range(400)]},
                   after={"sourceRanges": ["10.0.0.0/8"]})
            for _ in range(30)
        ),
    )
    payload = render_finding(finding)
    assert_within_slack_limits(payload)
    assert explain_payload(render_text_only(finding)) == (None, "ok")
    for kind, text in _texts(payload):
        # a clip never leaves half an escape entity behind
        assert not text.rstrip("…").endswith(("&", "&a", "&am", "&l", "&g", "&amp", "&lt", "&gt"))


def test_render_finding_is_pure() -> None:
    finding = load_finding("planned-dry-run")
    snapshot = copy.deepcopy(finding.to_dict())
    assert render_finding(finding) == render_finding(finding)
    assert finding.to_dict() == snapshot


def test_render_finding_links_to_console_pages() -> None:
    links = {link.url for link in console_links(load_finding("remediated-nat-created"))}
    base = "https://console.cloud.google.com"
    assert f"{base}/networking/connectors/details/europe-west2/conn-payments?project=acme-prod" in links
    assert f"{base}/hybrid/routers/details/europe-west2/egress-guard-europe-west2?project=acme-prod" in links
    assert f"{base}/net-services/nat/details/europe-west2/egress-guard-europe-west2/egress-guard-nat?project=acme-prod" in links
    fw_links = {link.url for link in console_links(load_finding("remediated-firewalls"), console_base="https://console.example")}
    assert "https://console.example/net-security/firewall-manager/firewall-policies/details/egress-guard-deny-conn-payments?project=acme-prod" in fw_links


def test_summary_firewall_patch_shows_before_and_after() -> None:
    change = load_finding("remediated-firewalls").changes[2]  # aet-*-sbntfw patched to disabled
    summary = summarise_change(change)
    assert (summary.verb, summary.kind) == ("update", "firewall rule")
    assert summary.details == ("disabled: no → yes",)
    assert summarise_change(change, planned=True).verb == "would update"


def test_summary_firewall_full_body_shows_every_changed_field() -> None:
    before = {"name": "r", "priority": 1000, "allowed": [{"IPProtocol": "all"}], "sourceRanges": ["10.8.0.0/28"]}
    after = {"name": "r", "priority": 990, "denied": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceTags": ["t"],
             "targetTags": ["db"], "direction": "INGRESS"}
    details = summarise_change(Change("compute.firewalls.update", "projects/p/global/firewalls/r", before, after)).details
    assert details == (
        "action: allow → deny",
        "priority: 1000 → 990",
        "ports: all → tcp:22",
        "source tags: — → t",
        "source ranges: 10.8.0.0/28 → —",
        "target tags: all instances → db",
    )
    assert firewall_facts({})["priority"] == "1000"


def test_summary_router_reports_nat_names_and_coverage() -> None:
    nat = {"name": "n1", "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
           "subnetworks": [{"name": "https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/s1"}]}
    assert nat_coverage(nat) == "subnets s1"
    before = {"name": "rt", "nats": [nat]}
    after = {"name": "rt", "nats": [{**nat, "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"},
                                    {"name": "n2", "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES"}]}
    details = summarise_change(Change("compute.routers.update", "projects/p/regions/r/routers/rt", before, after)).details
    assert details == ("added NAT n2 (all subnets, primary IP ranges)", "NAT n1: subnets s1 → all subnets, all IP ranges")
    deleted = summarise_change(Change("compute.routers.delete", "projects/p/regions/r/routers/rt", before, None))
    assert (deleted.verb, deleted.details) == ("delete", ("was: NATs n1 (subnets s1)",))


def _terminal_text(renderable) -> str:
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_render_finding_rich_shows_the_same_message() -> None:
    finding = load_finding("planned-dry-run")
    text = _terminal_text(render_finding_rich(finding))
    for expected in ("DRY-RUN", "Planned", "conn-payments", "alice@acme.example", "would create",
                     "disabled: no → yes", "/networking/connectors/details/europe-west2/conn-payments", finding.id):
        assert expected in text


def test_render_finding_rich_summarises_long_change_lists_and_ignores_markup() -> None:
    finding = dataclasses.replace(with_firewall_changes(load_finding("remediated-firewalls"), 500),
                                  reason="[bold red]not markup[/bold red]")
    text = _terminal_text(render_finding_rich(finding, max_changes=20))
    assert "… and 480 more changes" in text
    assert "[bold red]not markup[/bold red]" in text
    assert "DRY-RUN" not in text
