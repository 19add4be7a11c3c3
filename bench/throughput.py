"""In-process throughput of the two paths that run on every message, whatever it is.

- Irrelevant entries rejected per second: ``runner.handle`` (parse the Pub/Sub CloudEvent, screen,
  ask the guardrail, write the one acknowledgement log line) on audit entries egress-guard does not
  act on, run through both guardrails, as each function receives every entry of the sink. The mix:
  a method no guardrail handles, a user's firewall rule that is neither an ``aet-*`` nor a managed
  rule (the sink passes every firewall change), a write by egress-guard itself (the loop guard), a
  failed call, and an entry older than the age limit. None makes an API call (the clients are never
  built); the log lines go where ``__main__`` sends egress-guard's logging (``.bench/bench.log``).
- Findings rendered per second: ``notify.render.render_finding`` (Block Kit, pure) over the Slack
  test fixtures (every outcome, small and large change lists).
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from localcloud.identities import FIREWALLS_SA, PROJECT

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MIN_SECONDS = 1.0  # each rate is measured over at least this long (and whole passes over the corpus)
FW_SA = FIREWALLS_SA


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def irrelevant_entries() -> dict[str, dict[str, Any]]:
    """One entry of each kind egress-guard must acknowledge without action (timestamps fresh)."""
    firewall = _fixture("compute-v1.compute.firewalls.insert.json")
    connector = _fixture("vpcaccess-google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector.json")
    for entry in (firewall, connector):
        entry["timestamp"] = entry["receiveTimestamp"] = _now()

    other_method = copy.deepcopy(firewall)
    other_method["protoPayload"].update(methodName="v1.compute.instances.insert",
                                        resourceName=f"projects/{PROJECT}/zones/europe-west2-a/instances/vm-1")
    user_rule = copy.deepcopy(firewall)
    user_rule["protoPayload"]["resourceName"] = f"projects/{PROJECT}/global/firewalls/allow-ssh-from-iap"
    own_write = copy.deepcopy(firewall)
    own_write["protoPayload"]["resourceName"] = (f"projects/{PROJECT}/global/firewalls/"
                                                 "egress-guard-conn-a-euw2-deny")
    own_write["protoPayload"]["authenticationInfo"] = {"principalEmail": FW_SA}
    failed = copy.deepcopy(connector)
    failed["protoPayload"]["status"] = {"code": 7, "message": "PERMISSION_DENIED"}
    stale = copy.deepcopy(connector)
    stale["timestamp"] = stale["receiveTimestamp"] = (
        datetime.now(timezone.utc) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    return {"other method": other_method, "unrelated firewall rule": user_rule, "egress-guard's own write": own_write,
            "failed call": failed, "stale entry": stale}


def as_pubsub_cloudevent(entry: dict[str, Any]) -> Any:
    """The CloudEvent a function receives from the audit topic's push subscription."""
    from cloudevents.http import CloudEvent

    data = {"message": {"data": base64.b64encode(json.dumps(entry).encode()).decode(), "messageId": "1",
                        "attributes": {"logging.googleapis.com/timestamp": entry["timestamp"]}},
            "subscription": f"projects/{PROJECT}/subscriptions/ensure_nat-push"}
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "1",
                       "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/egress-guard-audit"}, data)


def rate(operation: Callable[[Any], object], corpus: Sequence[Any], min_seconds: float = MIN_SECONDS) -> float:
    """Operations per second over whole passes of ``corpus``, for at least ``min_seconds``."""
    for item in corpus:  # warm: first-call imports and caches are not throughput
        operation(item)
    done, started = 0, time.perf_counter()
    while True:
        for item in corpus:
            operation(item)
        done += len(corpus)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed


def rejected_per_second(min_seconds: float = MIN_SECONDS) -> dict[str, Any]:
    from egress_guard.guardrails import GUARDRAILS
    from egress_guard.runner import Context, handle

    env = {"GOOGLE_CLOUD_PROJECT": PROJECT, "LOCALCLOUD_URL": "http://127.0.0.1:9",
           "EGRESS_GUARD_SELF_PRINCIPALS": FW_SA}
    published: list[Any] = []
    context = Context.from_env(env, publish=published.append)
    entries = irrelevant_entries()
    deliveries = [as_pubsub_cloudevent(e) for e in entries.values()]
    guardrails = list(GUARDRAILS.values())

    def reject(delivery: Any) -> None:
        for guardrail in guardrails:
            if handle(delivery, guardrail, context):
                raise RuntimeError("an irrelevant entry produced a finding")

    per_delivery = rate(reject, deliveries, min_seconds)
    return {"entries_per_s": round(per_delivery), "handled_per_s": round(per_delivery * len(guardrails)),
            "mix": list(entries), "guardrails_per_entry": len(guardrails)}


def rendered_per_second(min_seconds: float = MIN_SECONDS) -> dict[str, Any]:
    from egress_guard.findings import Finding
    from egress_guard.notify.render import render_finding

    paths = sorted((FIXTURES / "slack" / "findings").glob("*.json"))
    findings = [Finding.from_json(p.read_text()) for p in paths]
    return {"findings_per_s": round(rate(render_finding, findings, min_seconds)), "corpus": [p.stem for p in paths]}


def run(progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    progress("throughput: irrelevant entries rejected")
    rejected = rejected_per_second()
    progress("throughput: findings rendered (Block Kit)")
    rendered = rendered_per_second()
    return {"irrelevant_rejected_per_s": rejected["entries_per_s"],
            "findings_rendered_per_s": rendered["findings_per_s"], "rejected": rejected, "rendered": rendered}
