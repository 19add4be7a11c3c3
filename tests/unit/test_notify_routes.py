"""Per-team routing (policy ``notify.routes``): parsing with errors that name the key, the one
decision ``NotifyPolicy.destinations_for``, and notify_slack posting each finding to every
matching destination once, through the real Functions Framework and two local Slack receivers."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from pathlib import Path

import pytest
from functions_framework import create_app

from egress_guard.findings import Outcome
from egress_guard.notify.settings import NotifySettings, SettingsError
from egress_guard.policy import Policy, PolicyError, parse_policy_text, webhook_variable
from localcloud.slack_receiver import RunningReceiver, serve_in_thread
from tests.slack_helpers import NOTIFY_MAIN, load_finding, pubsub_cloud_event

ROUTES = """
notify:
  routes:
    - destination: payments
      match: {labels: {team: payments}}
    - destination: search
      match: {labels: {team: search}}
    - destination: platform
      match: {networks: [shared-vpc], outcomes: [blocked, failed]}
    - destination: payments            # a second route to the same destination
      match: {projects: [acme-payments]}
  default: default
"""


def _finding(name: str = "remediated-nat-created", **changes):
    return dataclasses.replace(load_finding(name), **changes)


def test_notify_routes_parse_and_round_trip():
    policy = parse_policy_text(ROUTES)
    assert [r.destination for r in policy.notify.routes] == ["payments", "search", "platform", "payments"]
    assert policy.notify.destinations == ("payments", "search", "platform", "default")
    assert Policy.from_dict(policy.to_dict()) == policy
    assert Policy().notify.destinations == ("default",), "without routes: the one webhook, as before"


def test_notify_routes_each_matching_destination_once_and_the_default_for_the_rest():
    notify = parse_policy_text(ROUTES).notify
    assert notify.destinations_for(_finding(labels={"team": "payments"})) == ("payments",)
    assert notify.destinations_for(_finding(labels={"team": "search", "env": "prod"})) == ("search",)
    assert notify.destinations_for(_finding(labels={"team": "payments"}, project="acme-payments")) == ("payments",)
    blocked = _finding("blocked", labels={"team": "search"})  # network shared-vpc, outcome blocked
    assert blocked.network.endswith("/shared-vpc")
    assert notify.destinations_for(blocked) == ("search", "platform")
    assert notify.destinations_for(_finding(labels={"team": "other"})) == ("default",)
    assert notify.destinations_for(_finding("compliant", labels={"team": "payments"})) == (), "not a posted outcome"


def test_notify_routes_match_networks_by_name_or_full_name_and_folders():
    notify = parse_policy_text("""
notify:
  routes:
    - {destination: a, match: {networks: [projects/acme-prod/global/networks/shared-vpc]}}
    - {destination: b, match: {folders: [folders/42]}}
  default: null
""").notify
    finding = _finding()
    assert notify.destinations_for(finding) == ("a",)
    assert notify.destinations_for(_finding(network="projects/other/global/networks/shared-vpc")) == ()
    assert notify.destinations_for(_finding(network="", folder="folders/42")) == ("b",)


def test_notify_routes_errors_name_the_key():
    with pytest.raises(PolicyError) as raised:
        parse_policy_text("""
notify:
  routes:
    - destination: Payments
      match: {label: {team: payments}}
    - match: {folders: [123], outcomes: [sent], networks: ["bad name"]}
    - destination: ok
      match: {labels: {"Team": payments}}
  default: 7
""")
    errors = "\n".join(raised.value.errors)
    for key in ("notify.routes[0].destination", "notify.routes[0].match.label: unknown key (did you mean 'labels'?)",
                "notify.routes[1].destination: is required", "notify.routes[1].match.folders[0]",
                "notify.routes[1].match.outcomes[0]", "notify.routes[1].match.networks[0]",
                "notify.routes[2].match.labels.Team (key)", "notify.default"):
        assert key in errors, f"{key} missing from:\n{errors}"


def test_notify_settings_need_every_destinations_webhook(tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(ROUTES)
    environ = {"EGRESS_GUARD_POLICY": str(policy), "SLACK_WEBHOOK_URL": "https://hooks.example/d",
               "SLACK_WEBHOOK_URL_PAYMENTS": "https://hooks.example/p", "SLACK_WEBHOOK_URL_SEARCH": "https://hooks.example/s"}
    with pytest.raises(SettingsError, match="SLACK_WEBHOOK_URL_PLATFORM is not set"):
        NotifySettings.from_env(environ)
    settings = NotifySettings.from_env({**environ, webhook_variable("platform"): "https://hooks.example/x"})
    assert set(settings.webhooks) == {"payments", "search", "platform", "default"}
    assert "hooks.example" not in repr(settings)


# --- notify_slack through the Functions Framework ------------------------------------------------


def _messages(receiver: RunningReceiver) -> list[dict]:
    with urllib.request.urlopen(f"{receiver.url}/_messages", timeout=5) as response:
        return json.loads(response.read())


def _fail(receiver: RunningReceiver, **fault: object) -> None:
    request = urllib.request.Request(f"{receiver.url}/_control", data=json.dumps(fault).encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).close()


@pytest.fixture
def receivers():
    made = {name: serve_in_thread() for name in ("default", "payments")}
    yield made
    for receiver in made.values():
        receiver.stop()


@pytest.fixture
def client(receivers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text("""
notify:
  routes:
    - {destination: payments, match: {labels: {team: payments}}}
    - {destination: default, match: {outcomes: [blocked]}}
""")
    monkeypatch.setenv("EGRESS_GUARD_POLICY", str(policy))
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receivers["default"].webhook_url("T0/B0/default"))
    monkeypatch.setenv("SLACK_WEBHOOK_URL_PAYMENTS", receivers["payments"].webhook_url("T0/B0/payments"))
    monkeypatch.setenv("EGRESS_GUARD_SLACK_MAX_RETRIES", "0")
    return create_app("notify_slack", str(NOTIFY_MAIN), "cloudevent").test_client()


def _post(client, finding, event_id: str = "1") -> int:
    headers, body = pubsub_cloud_event(finding, event_id=event_id)
    return client.post("/", headers=headers, data=body).status_code


def test_notify_slack_routes_each_team_its_findings_and_the_rest_to_the_default(client, receivers):
    payments = _finding(labels={"team": "payments"})
    other = _finding("remediated-firewalls")
    both = _finding("blocked", labels={"team": "payments"})  # payments' route and the blocked route
    for finding in (payments, other, both):
        assert _post(client, finding) == 200
    in_payments = json.dumps(_messages(receivers["payments"]))
    in_default = json.dumps(_messages(receivers["default"]))
    assert len(_messages(receivers["payments"])) == 2 and payments.id in in_payments and both.id in in_payments
    assert len(_messages(receivers["default"])) == 2 and other.id in in_default and both.id in in_default
    assert payments.id not in in_default and other.id not in in_payments


def test_notify_slack_redelivery_after_one_destination_failed_posts_each_destination_once(client, receivers):
    both = _finding("blocked", labels={"team": "payments"})
    _fail(receivers["payments"], status=500, count=1)
    assert _post(client, both, "1") == 500, "a destination that failed fails the invocation: Pub/Sub redelivers"
    assert len(_messages(receivers["default"])) == 1 and _messages(receivers["payments"]) == []
    assert _post(client, both, "2") == 200  # the redelivery
    assert _post(client, both, "3") == 200  # and a duplicate publish
    assert len(_messages(receivers["payments"])) == 1
    assert len(_messages(receivers["default"])) == 1, "the destination that had it was posted to again"
    assert Outcome.BLOCKED is both.outcome
