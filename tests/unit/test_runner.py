"""runner.handle: what is acknowledged, what is retried, what becomes a finding (a fake guardrail)."""

from __future__ import annotations

import json
import logging
import pathlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from egress_guard.config import Settings
from egress_guard.decided import DecidedChanges
from egress_guard.errors import NothingToDo, PermanentError, TransientError
from egress_guard.findings import Finding, Mode, Outcome
from egress_guard.plan import Plan, Verdict
from egress_guard.policy import Policy, parse_policy_text
from egress_guard.runner import NO_AGE_LIMIT, Context, handle
from localcloud.identities import NAT_SA

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
SELF = NAT_SA


def entry(**changes: Any) -> dict[str, Any]:
    body = json.loads((FIXTURES / "vpcaccess-google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector.json").read_text())
    body["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    body.update(changes)
    return body


class FakeGuardrail:
    name = "ensure_nat"

    def __init__(self, outcome: Any = None, refuse: str | None = None) -> None:
        self.outcome = outcome
        self.refuse = refuse
        self.runs = 0

    def accepts(self, event, policy):
        return self.refuse

    def run(self, event, ctx, mode):
        self.runs += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return [Plan(event.resource.ref, event.project, event.region, "", Verdict.COMPLIANT, "fine").finding(
            guardrail=self.name, mode=mode, trigger=event.trigger)]


def context(policy: Policy = Policy(), max_age: timedelta = timedelta(minutes=10)) -> tuple[Context, list[Finding]]:
    published: list[Finding] = []
    settings = Settings(project="eg-demo-project", self_principals=frozenset({SELF}))
    return Context(settings=settings, policy=policy, clients=None, publish=published.append,  # type: ignore[arg-type]
                   max_age=max_age, decided=DecidedChanges()), published


def test_handle_runs_the_guardrail_and_publishes_its_findings():
    ctx, published = context()
    found = handle(entry(), FakeGuardrail(), ctx)
    assert [f.outcome for f in found] == [Outcome.COMPLIANT] and published == found
    assert found[0].mode is Mode.ENFORCE


@pytest.mark.parametrize("delivery", [
    "{not json", {"protoPayload": "x"}, {"hello": 1},
    entry(protoPayload={**entry()["protoPayload"], "status": {"code": 7}}),
    entry(protoPayload={**entry()["protoPayload"], "authenticationInfo": {"principalEmail": SELF}}),
    entry(timestamp="2020-01-01T00:00:00Z"),
    entry(protoPayload={**entry()["protoPayload"], "resourceName": "projects/eg-demo-project/locations/x/connectors/A"}),
])
def test_handle_acknowledges_bad_foreign_failed_own_and_stale_entries_without_running(delivery, caplog):
    caplog.set_level(logging.INFO, logger="egress_guard.runner")
    guardrail = FakeGuardrail()
    ctx, published = context()
    assert handle(delivery, guardrail, ctx) == []
    assert guardrail.runs == 0 and published == []
    (line,) = [r for r in caplog.records if "acknowledged" in r.getMessage()]  # exactly one line per entry
    assert line.levelno in (logging.INFO, logging.WARNING)


def test_handle_acknowledges_what_the_guardrail_does_not_take():
    guardrail = FakeGuardrail(refuse="not mine")
    ctx, published = context()
    assert handle(entry(), guardrail, ctx) == [] and guardrail.runs == 0


def test_handle_without_age_limit_runs_old_entries():
    ctx, _ = context(max_age=NO_AGE_LIMIT)
    assert len(handle(entry(timestamp="2020-01-01T00:00:00Z"), FakeGuardrail(), ctx)) == 1


def test_handle_project_exemption_needs_no_guardrail_run():
    guardrail = FakeGuardrail()
    ctx, published = context(parse_policy_text("exemptions: {projects: [eg-demo-project]}"))
    (finding,) = handle(entry(), guardrail, ctx)
    assert finding.outcome is Outcome.EXEMPT and guardrail.runs == 0 and "exemptions.projects" in finding.reason


@pytest.mark.parametrize("error", [TransientError("later"), gexc.ServiceUnavailable("busy"),
                                   gexc.TooManyRequests("slow down")])
def test_handle_raises_transient_errors_for_the_platform_to_retry(error):
    ctx, published = context()
    with pytest.raises(TransientError):
        handle(entry(), FakeGuardrail(error), ctx)
    assert published == []


@pytest.mark.parametrize("error, words", [
    (PermanentError("compute.routers.insert: HTTP 403, permission denied", code=403), "403"),
    (gexc.Forbidden("no"), "403"),
    (KeyError("bug"), "unexpected error"),
])
def test_handle_publishes_a_failed_finding_when_an_api_refuses_for_good_or_a_bug_stops_it(error, words):
    ctx, published = context()
    (finding,) = handle(entry(), FakeGuardrail(error), ctx)
    assert finding.outcome is Outcome.FAILED and words in finding.reason and published == [finding]


def test_handle_acknowledges_a_permanent_nothing_to_do():
    ctx, published = context()
    assert handle(entry(), FakeGuardrail(NothingToDo("connector gone")), ctx) == [] and published == []


def test_handle_reports_any_other_permanent_error_as_failed():
    ctx, published = context()
    (finding,) = handle(entry(), FakeGuardrail(PermanentError("the operation failed with HTTP ?")), ctx)
    assert finding.outcome is Outcome.FAILED and published == [finding]


def test_handle_uses_the_guardrails_mode():
    ctx, _ = context(parse_policy_text("nat: {mode: dry-run}"))
    (finding,) = handle(entry(), FakeGuardrail(), ctx)
    assert finding.mode is Mode.DRY_RUN


def test_a_repeat_of_a_decided_change_is_acknowledged_without_running_the_guardrail(caplog):
    ctx, published = context()
    guardrail = FakeGuardrail()
    first = entry()
    last = entry(insertId="another-entry", operation={**first["operation"], "first": False, "last": True})
    assert len(handle(first, guardrail, ctx)) == 1
    with caplog.at_level("INFO", logger="egress_guard.runner"):
        assert handle(first, guardrail, ctx) == [] and handle(last, guardrail, ctx) == []
    assert guardrail.runs == 1 and len(published) == 1
    assert sum("a repeat of operation" in r.getMessage() for r in caplog.records) == 2


def test_a_change_that_failed_or_raised_is_not_remembered():
    ctx, _ = context()
    flaky = FakeGuardrail(TransientError("later"))
    with pytest.raises(TransientError):
        handle(entry(), flaky, ctx)
    refused = FakeGuardrail(PermanentError("HTTP 403", code=403))
    handle(entry(), refused, ctx)  # a failed finding asks a person to redeliver: the redelivery runs
    handle(entry(), refused, ctx)
    healthy = FakeGuardrail()
    assert len(handle(entry(), healthy, ctx)) == 1 and refused.runs == 2 and healthy.runs == 1


def test_without_remembered_decisions_every_entry_is_decided_again():
    """replay and backfill: each entry given is a decision asked for."""
    ctx, published = context()
    ctx.decided = None
    guardrail = FakeGuardrail()
    handle(entry(), guardrail, ctx)
    handle(entry(), guardrail, ctx)
    assert guardrail.runs == 2 and len(published) == 2
