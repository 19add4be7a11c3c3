"""egress-guard undo with the real google-cloud-compute clients against localcloud: the state
before a remediation is back; a write that fails part-way says what was done; the file form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from egress_guard.clients import Clients
from egress_guard.config import Settings
from egress_guard.findings import Finding, Outcome
from egress_guard.guardrails.connector_firewalls import _shape
from egress_guard.undo import PartlyUndone, undo
from tests.contract.test_guardrails_localcloud import (  # noqa: F401  (fixtures)
    DISABLE_AUTO_RULES,
    P,
    Guardrails,
    User,
    guardrails,
    state,
    subnet_connector,
    user,
)

pytestmark = pytest.mark.contract


def _rules(localcloud) -> dict[str, dict]:
    """Firewall rules by name, as what decides them (Google's defaults filled: disabled false)."""
    return {name: _shape(body) for name, body in state(localcloud)[1].items()}


def _clients(url: str) -> Clients:
    return Clients(Settings(project=P, localcloud_url=url, operation_timeout_seconds=20))


def test_undo_a_firewall_remediation_puts_the_state_before_back(subnet_connector, guardrails: Guardrails,
                                                                localcloud, localcloud_url):
    before = _rules(localcloud)
    (finding,) = guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    assert finding.outcome is Outcome.REMEDIATED and _rules(localcloud) != before
    published: list[Finding] = []
    plan, undone = undo(_clients(localcloud_url), finding, timeout=20, dry_run=False,
                        publisher=lambda: published.append)
    assert undone is not None and published == [undone] and undone.outcome is Outcome.UNDONE
    assert _rules(localcloud) == before
    assert [c.action for c in undone.changes] == ["compute.firewalls.patch"] * 2 + ["compute.firewalls.delete"] * 2


def test_undo_that_fails_part_way_says_what_was_done(subnet_connector, guardrails: Guardrails, localcloud,
                                                     localcloud_url):
    (finding,) = guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    localcloud.set_faults([{"methods": "compute.firewalls.delete", "error_rate": 1.0, "code": 403, "count": 1}])
    try:
        with pytest.raises(PartlyUndone) as raised:
            undo(_clients(localcloud_url), finding, timeout=20, dry_run=False, publisher=None)
    finally:
        localcloud.clear_faults()
    reason = raised.value.reason
    print(f"\n{reason}")
    assert "403" in reason and "done before it stopped: compute.firewalls.patch" in reason
    # What was done is not done twice: the broad rules are enabled again, so a second undo is refused.
    plan, again = undo(_clients(localcloud_url), finding, timeout=20, dry_run=False, publisher=None)
    assert again is None and "changed disabled" in plan.reason


def test_undo_command_takes_a_finding_file_and_refuses_a_dry_run_finding(tmp_path: Path, localcloud_url):
    from tests.slack_helpers import load_finding

    planned = tmp_path / "planned.json"
    planned.write_text(load_finding("planned-dry-run").to_json())
    script = Path(sys.executable).parent / "egress-guard"
    env = {"LOCALCLOUD_URL": localcloud_url, "GOOGLE_CLOUD_PROJECT": P, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(script), "undo", str(planned)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "nothing to undo" in done.stderr, done.stderr
    missing = subprocess.run([str(script), "undo", str(tmp_path / "nowhere.json")], env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "neither a finding id nor a finding file" in missing.stderr


def test_undo_of_findings_reporting_one_remediation_takes_it_back_once(subnet_connector, guardrails: Guardrails,
                                                                       localcloud, localcloud_url):
    """Two instances handling two events about one connector at once both disable its broad rules:
    two findings report the same patches. Undoing either takes the whole remediation back; the other
    is then already undone (no write, not refused)."""
    import dataclasses

    from egress_guard.plan import Verdict
    from egress_guard.undo import duplicates_of

    before = _rules(localcloud)
    (creation,) = guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    patches = tuple(c for c in creation.changes if c.action == "compute.firewalls.patch")
    assert patches and len(patches) < len(creation.changes)
    # Its finding may be made before or after the other's (a finding's time says nothing of its writes).
    rule_seen = dataclasses.replace(creation, changes=patches, id="", time="2000-01-01T00:00:00.000Z",
                                    trigger=dataclasses.replace(creation.trigger, insertId="aet-rule-inserted",
                                                                operationId=""))
    archive = [creation, rule_seen]
    assert rule_seen.id != creation.id and duplicates_of(rule_seen, archive) == (creation,)

    plan, undone = undo(_clients(localcloud_url), rule_seen, timeout=20, dry_run=False, publisher=None,
                        duplicates=duplicates_of(rule_seen, archive))
    assert undone is not None and _rules(localcloud) == before, "the managed rules went with the patches"
    assert [c.action for c in undone.changes] == ["compute.firewalls.patch"] * 2 + ["compute.firewalls.delete"] * 2, \
        "the broad rules enabled again before a managed rule goes"
    seen = localcloud.calls()["last_seq"]
    plan, again = undo(_clients(localcloud_url), creation, timeout=20, dry_run=False, publisher=None,
                       duplicates=duplicates_of(creation, archive))
    assert plan.verdict is Verdict.COMPLIANT and "already undone" in again.reason and not again.changes
    assert set(localcloud.calls(since=seen)["counts"]) == {"compute.firewalls.list"}, "read, nothing written"
