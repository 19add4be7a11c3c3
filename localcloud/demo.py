"""`make demo`: one scenario, end to end, on the local stack, narrated.

A platform engineer creates a VPC, a /28 subnet, a Serverless VPC Access connector and a Cloud
Run job whose traffic all leaves through the VPC, with the real gcloud CLI. Cloud Audit Logs
(localcloud) record each call, the sink routes them through the Pub/Sub emulator to the guardrail
functions (real Functions Framework), and egress-guard: creates the Cloud NAT, replaces the
connector's broad firewall rules with narrow managed ones (make-before-break), and posts each
decision to Slack. Every step is verified; the exit code is 0 only when all of them held.
The stack is stopped at the end (``--keep`` leaves it running, ``make down`` stops it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from localcloud.stack import AUDIT_TOPIC, FINDINGS_TOPIC, PROJECT, REGION, ROOT, Stack

DEMO_POLICY = ROOT / "examples" / "policy" / "demo.yaml"
NETWORK = "demo-vpc"
SUBNET = "demo-conn-28"
SUBNET_RANGE = "10.10.0.0/28"
CONNECTOR = "demo-conn"
JOB = "nightly-export"
IMAGE = "us-docker.pkg.dev/cloudrun/container/job"
STEP_TIMEOUT_S = 30.0  # a bound so a broken stack cannot hang the demo; the guardrails take ~1 s here

# gcloud's tables are wide: on a pipe (CI, a log file) rich would wrap them at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Demo:
    stack: Stack
    env: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    # ---- plumbing -----------------------------------------------------------------------
    def gcloud(self, *args: str, show: bool = True, check: bool = True) -> subprocess.CompletedProcess:
        if show:
            console.print(f"[bold cyan]$ gcloud {' '.join(args)}[/]")
        proc = subprocess.run(["gcloud", *args], env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=180)
        if check and proc.returncode != 0:
            raise DemoFailure(f"gcloud {' '.join(args)} failed:\n{proc.stderr.strip()}")
        return proc

    def gcloud_json(self, *args: str) -> Any:
        return json.loads(self.gcloud(*args, "--format=json", show=False).stdout or "null")

    def verify(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        mark = "[green]✔[/]" if ok else "[red]✘[/]"
        console.print(f"  {mark} {name}" + (f" [dim]({detail})[/]" if detail else ""))
        return ok

    def wait_for(self, what: str, probe: Callable[[], Any]) -> tuple[Any, float]:
        started = time.monotonic()
        deadline = started + STEP_TIMEOUT_S
        with console.status(f"waiting for {what}…"):
            while True:
                value = probe()
                if value or time.monotonic() > deadline:
                    return value, time.monotonic() - started
                time.sleep(0.2)

    def audit_entries(self) -> list[dict[str, Any]]:
        return requests.get(self.env["LOCALCLOUD_URL"] + "/_localcloud/entries", timeout=10).json()["entries"]

    def pull(self, topic: str) -> list[dict[str, Any]]:
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        path = subscriber.subscription_path(PROJECT, f"{topic}-watch")
        out: list[dict[str, Any]] = []
        while True:
            response = subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=5, retry=None)
            if not response.received_messages:
                return out
            out.extend(json.loads(m.message.data) for m in response.received_messages)
            subscriber.acknowledge(request={"subscription": path,
                                            "ack_ids": [m.ack_id for m in response.received_messages]})

    # ---- the story ----------------------------------------------------------------------
    def run(self) -> bool:
        console.rule("[bold]egress-guard demo[/]")
        console.print("Starting the local stack: Pub/Sub emulator, localcloud, the three functions, a Slack receiver.")
        self.env = self.stack.up()
        os.environ["PUBSUB_EMULATOR_HOST"] = self.env["PUBSUB_EMULATOR_HOST"]
        console.print(f"[dim]policy: {DEMO_POLICY.relative_to(ROOT)} (firewall guardrail enforcing; "
                      f"connectors may reach tag 'db' on tcp:5432 only; broad auto rules disabled)[/]\n")

        console.rule("1. A platform engineer builds a VPC and a connector")
        self.gcloud("compute", "networks", "create", NETWORK, "--subnet-mode=custom")
        self.gcloud("compute", "networks", "subnets", "create", SUBNET, f"--network={NETWORK}",
                    f"--region={REGION}", f"--range={SUBNET_RANGE}")
        self.gcloud("compute", "networks", "vpc-access", "connectors", "create", CONNECTOR,
                    f"--region={REGION}", f"--subnet={SUBNET}")
        connector = self.gcloud_json("compute", "networks", "vpc-access", "connectors", "describe", CONNECTOR,
                                     f"--region={REGION}")
        self.verify("connector is READY", connector.get("state") == "READY", connector.get("state", "?"))
        aet = [r for r in self.gcloud_json("compute", "firewall-rules", "list") if r["name"].startswith("aet-")]
        broad = [r["name"] for r in aet if r.get("priority") == 1000]
        self.verify("Google's automatic rules exist, incl. the broad connector → whole-VPC allow rules",
                    len(aet) == 6 and len(broad) == 2, ", ".join(sorted(broad)))

        console.rule("2. A Cloud Run job sends all its traffic through the VPC")
        self.gcloud("run", "jobs", "deploy", JOB, f"--image={IMAGE}", f"--region={REGION}",
                    f"--vpc-connector={CONNECTOR}", "--vpc-egress=all-traffic")
        methods = [e["protoPayload"]["methodName"] for e in self.audit_entries()
                   if e["protoPayload"]["authenticationInfo"]["principalEmail"] == self.stack_user]
        table = Table("audit entries written for the user's calls", "count", box=None)
        for method in sorted(set(methods)):
            table.add_row(method, str(methods.count(method)))
        console.print(table)
        self.verify("audit entries recorded for the connector and the job",
                    any("CreateConnector" in m for m in methods) and any("Jobs.CreateJob" in m for m in methods))

        console.rule("3. egress-guard reacts")
        subnet_link_end = f"/regions/{REGION}/subnetworks/{SUBNET}"

        def nat_covers() -> Any:
            for router in self.gcloud_json("compute", "routers", "list", f"--regions={REGION}") or []:
                for nat in router.get("nats", []):
                    if nat.get("sourceSubnetworkIpRangesToNat", "").startswith("ALL_SUBNETWORKS") or any(
                            s.get("name", "").endswith(subnet_link_end) for s in nat.get("subnetworks", [])):
                        return router
            return None

        router, took = self.wait_for("a Cloud NAT covering the connector's subnet", nat_covers)
        self.verify("Cloud NAT covers the connector's subnet", bool(router),
                    f"router {router['name']}, NAT {router['nats'][0]['name']}, after {took:.1f} s" if router else "none")

        def rules_replaced() -> Any:
            rules = {r["name"]: r for r in self.gcloud_json("compute", "firewall-rules", "list")}
            managed = [r for n, r in rules.items() if n.startswith("egress-guard-")]
            disabled = [n for n in broad if rules.get(n, {}).get("disabled")]
            if len(managed) >= 2 and len(disabled) == len(broad):
                return managed
            return None

        managed, took = self.wait_for("the managed rules and the broad rules disabled", rules_replaced)
        tag = f"vpc-connector-{REGION}-{CONNECTOR}"
        deny = [r for r in managed or [] if r.get("denied") and r.get("priority") == 990 and tag in r.get("sourceTags", [])]
        allow = [r for r in managed or [] if r.get("allowed") and r.get("priority") == 980 and tag in r.get("sourceTags", [])]
        self.verify("managed deny (990) and allow (980) rules use the connector's unique tag",
                    bool(deny) and bool(allow), f"after {took:.1f} s")
        from localcloud.auditlog.invariants import make_before_break_violations

        violations = make_before_break_violations(self.audit_entries())
        self.verify("make-before-break, per connector, checked in the audit log: allow before deny, deny before "
                    "any broad rule is disabled, no managed rule removed while one is",
                    bool(managed) and not violations,
                    "; ".join(violations) or f"0 violations; {', '.join(broad)}")
        infra = [r for r in self.gcloud_json("compute", "firewall-rules", "list")
                 if r["name"].startswith("aet-") and r.get("priority") == 100]
        self.verify("the connector's priority-100 infrastructure rules untouched",
                    len(infra) == 4 and not any(r.get("disabled") for r in infra))

        console.rule("4. Every decision reaches Slack")
        findings, _ = self.wait_for("findings", lambda: [f for f in self.pull(FINDINGS_TOPIC)] or None)
        findings = findings or []
        posted, took = self.wait_for(
            "Slack messages",
            lambda: (msgs := requests.get(self.env["SLACK_RECEIVER_URL"] + "/_messages", timeout=5).json())
            and len(msgs) >= len([f for f in findings if f["outcome"] != "compliant"]) and msgs)
        from egress_guard.findings import Finding
        from egress_guard.notify.terminal import render_finding_rich

        notable = [f for f in findings if f["outcome"] != "compliant"]
        for body in notable:
            console.print(render_finding_rich(Finding.from_dict(body)))
        compliant = len(findings) - len(notable)
        if compliant:
            console.print(f"[dim]+ {compliant} compliant findings (later entries of the same changes found nothing "
                          f"left to do; by policy they are not posted to Slack)[/]")
        remediated = [f for f in findings if f["outcome"] == "remediated"]
        self.verify("remediated findings published by both guardrails",
                    {f["guardrail"] for f in remediated} >= {"ensure_nat", "replace_connector_firewalls"},
                    f"{len(findings)} findings")
        self.verify("one Slack message per posted finding", bool(posted) and len(posted or []) == len(
            [f for f in findings if f["outcome"] != "compliant"]), f"{len(posted or [])} messages")

        console.rule("5. Final state")
        self.gcloud("compute", "routers", "describe", router["name"] if router else "?", f"--region={REGION}",
                    check=False, show=True)
        console.print(self.gcloud("compute", "routers", "describe", router["name"] if router else "?",
                                  f"--region={REGION}", show=False, check=False).stdout)
        proc = self.gcloud("compute", "firewall-rules", "list", "--sort-by=priority",
                           "--format=table(name,direction,priority,sourceRanges.list():label=SRC_RANGES,"
                           "sourceTags.list():label=SRC_TAGS,targetTags.list():label=TARGET_TAGS,"
                           "allowed[].map().firewall_rule().list():label=ALLOW,"
                           "denied[].map().firewall_rule().list():label=DENY,disabled)")
        console.print(proc.stdout)
        return all(c.ok for c in self.checks)

    @property
    def stack_user(self) -> str:
        return "developer@example.com"


class DemoFailure(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the stack running (stop it with make down)")
    args = parser.parse_args(argv)
    # Each function as deployed: 3 instances at concurrency 1 (infra/examples' default max_instances).
    stack = Stack(policy=str(DEMO_POLICY), log=lambda line: console.print(f"[dim]{line}[/]"), instances=3)
    demo = Demo(stack)
    started = time.monotonic()
    ok = False
    try:
        ok = demo.run()
    except DemoFailure as exc:
        console.print(f"[red]demo failed:[/] {exc}")
    except RuntimeError as exc:  # the stack could not start: say why, no traceback
        console.print(f"[red]the local stack could not start:[/] {exc}")
    finally:
        if not args.keep:
            stack.down(quiet=True)
    passed = sum(c.ok for c in demo.checks)
    summary = f"{passed}/{len(demo.checks)} checks held in {time.monotonic() - started:.0f} s"
    console.print(Panel(summary, style="green" if ok else "red", title="egress-guard demo"))
    if args.keep:
        console.print("The stack is still running: `. .local/env` to use it, `make down` to stop it.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
