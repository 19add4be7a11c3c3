"""The checks: pure functions from ``Readings`` to lines of ✓ / ✗ / ?, each ✗ with the command that fixes it.

Nothing here reads or writes anything; ``read.py`` gathered the readings and ``render.py`` prints
the result, so every verdict can be tested with hand-made readings.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from . import expected
from .readings import Read, Readings, Unreadable


class Status(str, Enum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"

    @property
    def mark(self) -> str:
        return {"ok": "✓", "fail": "✗", "unknown": "?"}[self.value]


@dataclass(frozen=True)
class Check:
    section: str
    title: str
    status: Status
    detail: tuple[str, ...] = ()
    fix: str | None = None  # a command; every FAIL has one

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"section": self.section, "title": self.title, "status": self.status.value}
        if self.detail:
            out["detail"] = list(self.detail)
        if self.fix:
            out["fix"] = self.fix
        return out


def ok(section: str, title: str, *detail: str) -> Check:
    return Check(section, title, Status.OK, detail)


def fail(section: str, title: str, fix: str, *detail: str) -> Check:
    return Check(section, title, Status.FAIL, detail, fix)


def unknown(section: str, title: str, *detail: str) -> Check:
    return Check(section, title, Status.UNKNOWN, detail)


def unreadable(section: str, title: str, reading: Unreadable, fix_if_missing: str | None = None) -> Check:
    """A read that failed: ✗ with the fix when the thing does not exist, ? when it could not be seen."""
    if reading.missing and fix_if_missing:
        return fail(section, title, fix_if_missing, f"not found: {reading.reason}")
    return unknown(section, title, reading.reason)


def q(value: str) -> str:
    return shlex.quote(value)


# ---- the audit sink ---------------------------------------------------------------------------------
SINK = "audit sink"


def sink_checks(r: Readings) -> Iterator[Check]:
    scope, names = r.scope, expected.Names(r.prefix)
    host = r.host_project if isinstance(r.host_project, str) else "HOST_PROJECT"
    want_filter = r.expected_filter if isinstance(r.expected_filter, str) else ""
    topic = f"projects/{host}/topics/{names.audit_topic}"
    create = (f"gcloud logging sinks create {names.sink} pubsub.googleapis.com/{topic} {scope.gcloud_flag()}"
              + ("" if scope.kind == "project" else " --include-children") + f" --log-filter={q(want_filter)}")
    title = f"sink {scope.resource}/sinks/{names.sink} exists"
    if isinstance(r.sink, Unreadable):
        yield unreadable(SINK, title, r.sink, create)
        return
    sink = r.sink
    yield ok(SINK, title, f"destination {sink.destination}")
    if sink.topic != topic and isinstance(r.host_project, str):
        yield fail(SINK, f"it routes to the audit topic {topic}",
                   f"gcloud logging sinks update {names.sink} pubsub.googleapis.com/{topic} {scope.gcloud_flag()}",
                   f"destination is {sink.destination}")
    if scope.kind != "project" and not sink.include_children:
        yield fail(SINK, "it includes the child projects",
                   f"gcloud logging sinks update {names.sink} {scope.gcloud_flag()} --include-children",
                   "includeChildren is false: only the folder's or organization's own entries are routed")
    if isinstance(r.expected_filter, Unreadable):
        yield unknown(SINK, "its filter equals the one rendered from the trigger list", r.expected_filter.reason)
    elif normalised(sink.filter) == normalised(want_filter):
        yield ok(SINK, "its filter equals the one rendered from the trigger list",
                 f"{len(expected.TRIGGER_METHODS)} trigger methods")
    else:
        yield fail(SINK, "its filter equals the one rendered from the trigger list",
                   f"gcloud logging sinks update {names.sink} {scope.gcloud_flag()} --log-filter={q(want_filter)}",
                   *filter_diff(sink.filter, want_filter))
    if isinstance(r.host_project, str):
        missing = [p for p in expected.self_principals(r.host_project) if f'"{p}"' not in sink.filter]
        title = "it excludes egress-guard's own service accounts"
        if missing:
            yield fail(SINK, title, f"gcloud logging sinks update {names.sink} {scope.gcloud_flag()} "
                       f"--log-filter={q(want_filter)}", *(f"not excluded: {p}" for p in missing))
        else:
            yield ok(SINK, title)
    title = f"its writer identity may publish to {names.audit_topic}"
    if not sink.writer_identity:
        yield fail(SINK, title, f"gcloud logging sinks update {names.sink} {scope.gcloud_flag()} "
                   "--unique-writer-identity", "the sink has no writer identity")
    elif isinstance(r.audit_topic_publishers, Unreadable):
        yield unknown(SINK, title, r.audit_topic_publishers.reason)
    elif sink.writer_identity in r.audit_topic_publishers:
        yield ok(SINK, title, sink.writer_identity)
    else:
        yield fail(SINK, title, f"gcloud pubsub topics add-iam-policy-binding {names.audit_topic} --project={host} "
                   f"--member={q(sink.writer_identity)} --role=roles/pubsub.publisher",
                   f"{sink.writer_identity} is not a roles/pubsub.publisher of the topic")


def normalised(text: str) -> str:
    return " ".join(text.split())


def filter_diff(actual: str, wanted: str) -> list[str]:
    """A line diff of two filters, one clause or method per line, so a typo stands out."""
    def lines(text: str) -> list[str]:
        return [part.strip() for part in re.split(r"\s+(?:AND|OR)\s+|\(|\)", normalised(text)) if part and part.strip()]
    return [line for line in difflib.unified_diff(lines(actual), lines(wanted), "deployed", "expected", n=1,
                                                  lineterm="")]


# ---- Pub/Sub --------------------------------------------------------------------------------------
PUBSUB = "pub/sub"


def pubsub_checks(r: Readings) -> Iterator[Check]:
    names = expected.Names(r.prefix)
    if isinstance(r.host_project, Unreadable):
        yield unknown(PUBSUB, "topics and subscriptions", f"no host project: {r.host_project.reason}")
        return
    host = r.host_project
    for topic, exists in r.topics.items():
        title = f"topic {topic} exists"
        fix = f"gcloud pubsub topics create {topic} --project={host}"
        if isinstance(exists, Unreadable):
            yield unreadable(PUBSUB, title, exists, fix)
        elif exists:
            yield ok(PUBSUB, title)
        else:
            yield fail(PUBSUB, title, fix)
    dead_letter_topic = f"projects/{host}/topics/{names.dead_letter_topic}"
    for topic, wanted in ((names.audit_topic, "audit"), (names.findings_topic, "findings")):
        functions = [f for f in expected.FUNCTIONS if f.trigger == wanted]
        subs = r.push_subscriptions.get(topic, Unreadable("not read"))
        title = f"{len(functions)} push subscription(s) on {topic}, each with the dead-letter topic"
        if isinstance(subs, Unreadable):
            yield unknown(PUBSUB, title, subs.reason)
            continue
        pushing = [s for s in subs if s.push_endpoint]
        if len(pushing) < len(functions):
            yield fail(PUBSUB, title, "terraform -chdir=infra/examples/single-project apply",
                       f"{len(pushing)} push subscription(s) found; each function's trigger creates one "
                       f"({', '.join(f.name(r.prefix) for f in functions)})")
            continue
        for sub in pushing:
            if sub.dead_letter_topic != dead_letter_topic:
                yield fail(PUBSUB, f"{short(sub.name)} dead-letters to {names.dead_letter_topic}",
                           f"gcloud pubsub subscriptions update {short(sub.name)} --project={host} "
                           f"--dead-letter-topic={dead_letter_topic} "
                           f"--max-delivery-attempts={expected.DEAD_LETTER_MAX_ATTEMPTS}",
                           f"dead-letter topic: {sub.dead_letter_topic or 'none'}")
        if all(s.dead_letter_topic == dead_letter_topic for s in pushing):
            yield ok(PUBSUB, title, *(f"{short(s.name)} -> {s.push_endpoint}" for s in pushing))
    inbox = names.dead_letter_subscription
    title = f"dead-letter subscription {inbox} exists"
    fix = f"gcloud pubsub subscriptions create {inbox} --topic={names.dead_letter_topic} --project={host}"
    if isinstance(r.dead_letter_subscription, Unreadable):
        yield unreadable(PUBSUB, title, r.dead_letter_subscription, fix)
        return
    yield ok(PUBSUB, title)
    title = f"no message waits in {inbox}"
    if isinstance(r.dead_letters, Unreadable):
        yield unknown(PUBSUB, title, r.dead_letters.reason)
    elif r.dead_letters.count == 0:
        yield ok(PUBSUB, title)
    else:
        count = f"{r.dead_letters.count}{'+' if r.dead_letters.capped else ''}"
        yield fail(PUBSUB, title,
                   f"egress-guard dead-letters --subscription projects/{host}/subscriptions/{inbox} --redrive",
                   f"{count} message(s) wait: deliveries a function failed {expected.DEAD_LETTER_MAX_ATTEMPTS} times. "
                   "Read them (the same command without --redrive takes nothing out), fix the cause, then redrive "
                   "them to the topic they came from")


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


# ---- functions, service accounts, roles --------------------------------------------------------
FUNCTIONS = "functions"


def function_checks(r: Readings) -> Iterator[Check]:
    if isinstance(r.host_project, Unreadable):
        yield unknown(FUNCTIONS, "functions", f"no host project: {r.host_project.reason}")
        return
    host = r.host_project
    for spec in expected.FUNCTIONS:
        name = spec.name(r.prefix)
        deploy = "terraform -chdir=infra/examples/single-project apply"
        reading = r.functions.get(spec.key, Unreadable("not read"))
        title = f"function {name} exists and is ACTIVE"
        if isinstance(reading, Unreadable):
            yield unreadable(FUNCTIONS, title, reading, deploy)
            yield from role_checks(r, spec, host)
            continue
        region = reading.name.split("/")[3] if reading.name.count("/") >= 5 else "REGION"
        if reading.state != "ACTIVE":
            yield fail(FUNCTIONS, title, f"gcloud functions describe {name} --gen2 --region={region} --project={host} "
                       f"--format='value(stateMessages)' && {deploy}", f"state {reading.state}")
        else:
            yield ok(FUNCTIONS, title, reading.name)
        account = spec.service_account(host)
        title = f"{name} runs as {account}"
        if reading.service_account == account:
            yield ok(FUNCTIONS, title)
        else:
            yield fail(FUNCTIONS, title, deploy, f"runs as {reading.service_account or 'the default compute account'}")
        yield from role_checks(r, spec, host)


def role_checks(r: Readings, spec: expected.FunctionSpec, host: str) -> Iterator[Check]:
    name = spec.name(r.prefix)
    if isinstance(r.expected_roles, Unreadable):
        yield unknown(FUNCTIONS, f"{name}'s custom role holds exactly what it calls", r.expected_roles.reason)
        return
    wanted = r.expected_roles.get(spec.key, frozenset())
    if not wanted:
        yield ok(FUNCTIONS, f"{name} calls no Google API: it needs no custom role")
        return
    if isinstance(r.role_parent, Unreadable):
        yield unknown(FUNCTIONS, f"{name}'s custom role", r.role_parent.reason)
        return
    role_name = f"{r.role_parent}/roles/{spec.role_id(r.prefix)}"
    where = (f"--project={r.role_parent.split('/')[1]}" if r.role_parent.startswith("projects/")
             else f"--organization={r.role_parent.split('/')[1]}")
    exact = f"gcloud iam roles update {spec.role_id(r.prefix)} {where} --permissions={','.join(sorted(wanted))}"
    role = r.roles.get(spec.key, Unreadable("not read"))
    title = f"role {role_name} holds exactly the {len(wanted)} permissions {name} calls"
    if isinstance(role, Unreadable):
        create = (f"gcloud iam roles create {spec.role_id(r.prefix)} {where} "
                  f"--permissions={','.join(sorted(wanted))}")
        yield unreadable(FUNCTIONS, title, role, create)
    elif role.deleted:
        yield fail(FUNCTIONS, title, f"gcloud iam roles undelete {spec.role_id(r.prefix)} {where}", "the role is deleted")
    else:
        missing, extra = sorted(wanted - role.permissions), sorted(role.permissions - wanted)
        if missing or extra:
            yield fail(FUNCTIONS, title, exact, *(f"missing {p}" for p in missing),
                       *(f"extra {p} (least privilege)" for p in extra))
        else:
            yield ok(FUNCTIONS, title)
    member = f"serviceAccount:{spec.service_account(host)}"
    title = f"the role is granted to {spec.service_account_id} on {r.scope.resource}"
    grant = {"project": f"gcloud projects add-iam-policy-binding {r.scope.id}",
             "organization": f"gcloud organizations add-iam-policy-binding {r.scope.id}",
             "folder": f"gcloud resource-manager folders add-iam-policy-binding {r.scope.id}"}[r.scope.kind]
    grant += f" --member={member} --role={role_name} --condition=None"
    if isinstance(r.scope_bindings, Unreadable):
        yield unreadable(FUNCTIONS, title, r.scope_bindings)
    elif member in r.scope_bindings.get(role_name, frozenset()):
        yield ok(FUNCTIONS, title)
    else:
        yield fail(FUNCTIONS, title, grant, f"no binding of {role_name} to {member}")


# ---- configuration ----------------------------------------------------------------------------
CONFIG = "configuration"


def config_checks(r: Readings) -> Iterator[Check]:
    title = f"the policy ({r.policy.source}) parses"
    if r.policy.error:
        yield fail(CONFIG, title, f"$EDITOR {q(r.policy.source)}  # then: egress-guard doctor again", r.policy.error)
    else:
        yield ok(CONFIG, title)
    names = expected.Names(r.prefix)
    if isinstance(r.host_project, Unreadable):
        yield unknown(CONFIG, "the Slack webhook secret", f"no host project: {r.host_project.reason}")
        return
    host = r.host_project
    secret = f"projects/{host}/secrets/{names.slack_secret}"
    add_version = (f'printf %s "$SLACK_WEBHOOK_URL" | gcloud secrets versions add {names.slack_secret} '
                   f"--project={host} --data-file=-")
    if isinstance(r.secret, Unreadable):
        yield unreadable(CONFIG, f"secret {secret} exists", r.secret,
                         f"gcloud secrets create {names.slack_secret} --project={host} --replication-policy=automatic "
                         f"&& {add_version}")
        return
    yield ok(CONFIG, f"secret {secret} exists")
    title = "it has an enabled version (its value is not read)"
    if r.secret.enabled_versions:
        yield ok(CONFIG, title, f"{len(r.secret.enabled_versions)} enabled")
    else:
        yield fail(CONFIG, title, add_version,
                   "no enabled version" + (f" ({len(r.secret.other_versions)} disabled or destroyed)"
                                           if r.secret.other_versions else ""))


# ---- the dry-run sweep ----------------------------------------------------------------------------
SWEEP = "sweep (dry run)"


def sweep_checks(r: Readings) -> Iterator[Check]:
    if r.sweep is None:
        yield unknown(SWEEP, "what the guardrails would change today", f"sweep runs per project: "
                      f"egress-guard doctor --project P (this run covers {r.scope.resource})")
        return
    title = "nothing the guardrails would change today"
    if isinstance(r.sweep, Unreadable):
        yield unknown(SWEEP, title, r.sweep.reason)
        return
    s = r.sweep
    if s.problems:
        yield unknown(SWEEP, title, *s.problems)
    elif s.changes:
        yield fail(SWEEP, f"{len(s.changes)} decision(s) of an enforcing guardrail would change something today",
                   f"egress-guard sweep --project {s.project}", *s.changes,
                   *(f"(policy dry-run, planned only) {line}" for line in s.planned_only))
    elif s.planned_only:
        yield ok(SWEEP, "nothing an enforcing guardrail would change today",
                 *(f"(policy dry-run, planned only) {line}" for line in s.planned_only))
    else:
        yield ok(SWEEP, title, f"{s.decided} decision(s), all compliant")


CHECKS: tuple[Callable[[Readings], Iterator[Check]], ...] = (sink_checks, pubsub_checks, function_checks,
                                                            config_checks, sweep_checks)


def judge(readings: Readings) -> list[Check]:
    """Every check, in order."""
    return [check for family in CHECKS for check in family(readings)]


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> int:
        return sum(c.status is Status.FAIL for c in self.checks)

    @property
    def unknown(self) -> int:
        return sum(c.status is Status.UNKNOWN for c in self.checks)
