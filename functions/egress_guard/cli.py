"""``egress-guard``: the command line (design §3).

    egress-guard replay FILE [--dry-run] [--pretty] [--publish] [--guardrail NAME]

``replay`` runs the guardrails (both, or the one named) on the audit entries in FILE against the
endpoints the environment configures, exactly as the functions read it (``LOCALCLOUD_URL``,
``EGRESS_GUARD_POLICY``, ...; ``config.py``). FILE holds a LogEntry, a CloudEvent (either
delivery form), a JSON array of them, or one per line; ``-`` reads stdin. The findings are printed
on stdout as JSON lines; logs go to stderr. The event-age cut-off does not apply (it exists to end
retry storms, and a replay is a deliberate act).

- ``--dry-run`` forces dry-run for every guardrail: findings are ``planned`` and no write is made.
- ``--pretty`` also renders each finding for a terminal (on stderr, so stdout stays JSON lines).
- ``--publish`` also publishes the findings to the findings topic, as the functions do.

Exit status: 0 when every entry was handled (acted on or acknowledged), 1 when one needs a retry
(a transient error, printed on stderr), 2 for bad arguments, an unreadable file or a bad
configuration.

    egress-guard sweep --project P [--region R] [--dry-run] [--json] [--publish] [--all]
    egress-guard sweep --organization N | --folder N | --project P --project Q [--projects-at-once K] [--dry-run] [--json] [--publish]

``sweep`` reconciles everything that already exists in project P (connectors, Cloud Run services
and jobs, their NAT and firewall rules) with the guardrails' own planners and executors
(``sweep/``): a progress bar on a terminal (plain lines otherwise, on stderr), a table at the end.
``--json`` prints the findings as JSON lines on stdout instead (the totals go to stderr).
Exit status: 0 when every decision was made, 1 when a read or a change failed, 2 for bad arguments.

    egress-guard backfill --since 2h [--project P] [--dry-run] [--json] [--publish] [--guardrail NAME]

``backfill`` reads the trigger methods' audit entries since then with Cloud Logging
``entries.list`` and replays each change once through the runner (``backfill.py``), oldest first:
a progress line per change (stderr), a summary table at the end. Exit status as for replay.

    egress-guard doctor --project P | --organization ORG | --folder F [--json] [--export DIR]

``doctor`` checks a deployment end to end, read-only (``doctor/``): the audit sink (scope, filter
against the trigger list, self-exclusion, writer identity), the topics and subscriptions, the
dead letters waiting, each function, its service account and custom role, the policy, the Slack
secret, a dry-run sweep; then it judges each UNCONFIRMED constant against the last 30 days of the
scope's audit log. ``--export DIR`` writes those entries with principals and project numbers
replaced. Exit status: 0 when nothing is ✗, 1 when something is, 2 for bad arguments.
    egress-guard dead-letters [--subscription S] [--redrive] [--json] [--limit N]

``dead-letters`` lists what waits in the dead-letter inbox (default ``egress-guard-dead-letter-inbox``
in the configured project) without taking it out; ``--redrive`` publishes each message again to the
topic it came from and acknowledges it only once Pub/Sub accepted it (``deadletters.py``). Exit
status: 0 when everything asked for was done, 1 when a message could not be redriven (it stays in
the inbox), 2 for bad arguments.

    egress-guard undo FINDING_ID | finding.json [--dry-run] [--subscription S] [--json]

``undo`` puts back the ``before`` of every change a remediated finding records, after checking that
each is still as the finding left it (``undo.py``); it refuses, changing nothing, when someone
changed it since. FINDING_ID is looked up in the findings archive subscription
(``EGRESS_GUARD_FINDINGS_SUBSCRIPTION``); a file holds the finding's JSON. The ``undone`` finding is
published to the findings topic (notify_slack posts it) and printed. ``--dry-run`` prints what it
would do. Exit status: 0 undone (or planned), 1 refused or failed part-way (what was done is
printed), 2 for bad arguments or a finding that cannot be found.

Subcommands are a table (``COMMANDS``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import ConfigError, TransientError
from .findings import Finding, Mode
from .log import log_finding, setup_logging

log = logging.getLogger("egress_guard.cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    setup_logging(stream=sys.stderr)  # before anything logs: stdout is for results only
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"egress-guard: configuration error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egress-guard", description="Hands-off guardrails for Google Cloud "
                                     "serverless networking: Cloud NAT and connector firewall rules.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


# --------------------------------------------------------------------------- replay


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    from .guardrails import GUARDRAILS

    parser.add_argument("file", metavar="FILE", help="LogEntry / CloudEvent JSON (object, array or JSON lines); - for stdin")
    parser.add_argument("--dry-run", action="store_true", help="plan only: no guardrail makes any change")
    parser.add_argument("--pretty", action="store_true", help="also render each finding for a terminal (stderr)")
    parser.add_argument("--publish", action="store_true", help="also publish findings to EGRESS_GUARD_FINDINGS_TOPIC")
    parser.add_argument("--guardrail", choices=sorted(GUARDRAILS), action="append",
                        help="run only this guardrail (repeatable; default: all)")


def _replay(args: argparse.Namespace) -> int:
    from .guardrails import GUARDRAILS
    from .publish import FindingPublisher
    from .runner import NO_AGE_LIMIT, Context, handle

    try:
        deliveries = list(read_deliveries(args.file))
    except (OSError, ValueError) as exc:
        print(f"egress-guard replay: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2

    findings: list[Finding] = []
    context = Context.from_env(publish=findings.append, policy=None)
    policy = context.policy
    if args.dry_run:
        policy = forced_dry_run(policy)
    publisher = FindingPublisher.from_clients(context.clients) if args.publish else None

    def publish(finding: Finding) -> None:
        findings.append(finding)
        if publisher is not None:
            publisher.publish(finding)  # logs the decision line itself
        else:
            log_finding(finding)

    context = dataclasses.replace(context, policy=policy, publish=publish, max_age=NO_AGE_LIMIT)
    chosen = [GUARDRAILS[name] for name in (args.guardrail or sorted(GUARDRAILS))]
    status = 0
    for delivery in deliveries:
        for guardrail in chosen:
            start = len(findings)
            try:
                handle(delivery, guardrail, context)
            except TransientError as exc:
                print(f"egress-guard replay: {guardrail.name}: needs a retry: {exc.reason}", file=sys.stderr)
                status = 1
            for finding in findings[start:]:
                print(finding.to_json(), flush=True)
                if args.pretty:
                    _render(finding)
    return status


def forced_dry_run(policy: Any) -> Any:
    """The policy with every guardrail in dry-run mode."""
    return dataclasses.replace(policy, nat=dataclasses.replace(policy.nat, mode=Mode.DRY_RUN),
                               firewall=dataclasses.replace(policy.firewall, mode=Mode.DRY_RUN))


def read_deliveries(path: str) -> Iterator[Any]:
    """The JSON documents in ``path``: one object, an array of objects, or one object per line."""
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    stripped = text.strip()
    if not stripped:
        raise ValueError("the file is empty")
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, list):
        yield from document
        return
    if document is not None:
        yield document
        return
    for number, line in enumerate(stripped.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number} is not JSON: {exc}") from None


def _render(finding: Finding) -> None:
    from rich.console import Console

    from .notify.terminal import render_finding_rich

    Console(stderr=True).print(render_finding_rich(finding))


# --------------------------------------------------------------------------- sweep


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", action="append", help="the project to sweep (default: EGRESS_GUARD_PROJECT or "
                                                           "GOOGLE_CLOUD_PROJECT); repeated: each, as --organization does")
    parser.add_argument("--organization", help="sweep every project of organization NUMBER, found with Cloud Asset "
                                               "Inventory (organization/sweep.py)")
    parser.add_argument("--folder", help="sweep every project under folder NUMBER, found with Cloud Asset Inventory")
    parser.add_argument("--projects-at-once", type=int, default=None,
                        help="with --organization, --folder or several --project: projects swept live at once "
                             "(default 4)")
    parser.add_argument("--region", action="append", help="sweep only this region (repeatable; default: every region "
                                                          "Serverless VPC Access offers the project)")
    parser.add_argument("--dry-run", action="store_true", help="plan only: findings are planned, no change is made")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON lines on stdout")
    parser.add_argument("--publish", action="store_true", help="also publish findings to EGRESS_GUARD_FINDINGS_TOPIC")
    parser.add_argument("--all", action="store_true", help="list compliant decisions in the table too")
    parser.add_argument("--verbose", action="store_true", help="log every decision (JSON lines on stderr)")


def _sweep(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .runner import Context
    from .sweep import LineProgress, RichProgress, Sweep, render_report

    _quiet_unless(args.verbose)
    if args.organization or args.folder or len(args.project or ()) > 1:
        return _sweep_scopes(args)
    args.project = args.project[0] if args.project else None
    if args.projects_at_once is not None:
        print("egress-guard sweep: --projects-at-once goes with --organization, --folder or several --project",
              file=sys.stderr)
        return 2
    context = Context.from_env(publish=lambda finding: None)
    project = _project(args, context, "sweep")
    regions = _regions(args.region)
    if project is None or regions is None:
        return 2
    policy = forced_dry_run(context.policy) if args.dry_run else context.policy
    publish = _publisher(context) if args.publish else None
    err = Console(stderr=True)
    progress = RichProgress(err) if err.is_terminal else LineProgress(lambda line: print(line, file=sys.stderr))
    sweep = Sweep(context.clients, policy, operation_timeout=context.settings.operation_timeout_seconds,
                  publish=publish, progress=progress)
    with progress:
        report = sweep.run(project, regions)
    if args.json:
        for row in report.rows:
            if row.finding is not None:
                print(row.finding.to_json(), flush=True)
    if args.json:
        for row in report.rows:  # rows without a finding: what could not be decided, and why
            if row.finding is None:
                print(f"egress-guard sweep: {row.guardrail} skipped {row.resource.name}: {row.reason}", file=sys.stderr)
    render_report(report, err if args.json else Console(), all_rows=args.all, table=not args.json)
    return 1 if report.failed else 0


def _sweep_scopes(args: argparse.Namespace) -> int:
    """``sweep --organization | --folder | --project P --project Q``: organization/ (run.py says how)."""
    import json as json_module

    from rich.console import Console

    from .clients import Clients
    from .errors import InvalidName
    from .organization import PROJECTS_AT_ONCE, DiscoveryFailed, OrganizationSweep, Scope
    from .organization.report import progress_line, render, to_json
    from .runner import Context

    given = [flag for flag, value in (("--organization", args.organization), ("--folder", args.folder),
                                      ("--project", args.project)) if value]
    if len(given) > 1:
        print(f"egress-guard sweep: give one of --organization, --folder or --project, not {' and '.join(given)}",
              file=sys.stderr)
        return 2
    if args.region:
        print("egress-guard sweep: --region goes with a single --project (an organization's regions are found "
              "with its resources)", file=sys.stderr)
        return 2
    at_once = PROJECTS_AT_ONCE if args.projects_at_once is None else args.projects_at_once
    if at_once < 1:
        print("egress-guard sweep: --projects-at-once must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.organization:
            scopes = [Scope.parse("organizations", args.organization)]
        elif args.folder:
            scopes = [Scope.parse("folders", args.folder)]
        else:
            scopes = [Scope.parse("projects", p) for p in dict.fromkeys(args.project)]
    except InvalidName as exc:
        print(f"egress-guard sweep: {exc}", file=sys.stderr)
        return 2
    context = Context.from_env(publish=lambda finding: None)
    policy = forced_dry_run(context.policy) if args.dry_run else context.policy
    publish = _publisher(context) if args.publish else None

    def line(text: str) -> None:
        print(f"egress-guard sweep: {text}", file=sys.stderr, flush=True)

    sweep = OrganizationSweep(
        context.clients, policy, operation_timeout=context.settings.operation_timeout_seconds,
        new_clients=lambda: Clients(context.settings), publish=publish, projects_at_once=at_once,
        on_page=lambda pages: line(f"Asset Inventory search: {pages} page{'s' if pages > 1 else ''} read"),
        on_project=lambda done, total, result: line(progress_line(done, total, result)))
    try:
        report = sweep.run(scopes)
    except DiscoveryFailed as exc:
        why = (" It does not exist, or the caller lacks cloudasset.assets.searchAllResources on it (Google "
               "answers both with 403, PERMISSION_DENIED)." if exc.error.code == 403 else "")
        print(f"egress-guard sweep: cannot search {exc.scope} with Cloud Asset Inventory: {exc.error.reason}.{why} "
              "Nothing was changed.", file=sys.stderr)
        return 2
    if args.json:
        print(json_module.dumps(to_json(report), separators=(",", ":")), flush=True)
    render(report, Console(stderr=True) if args.json else Console(), all_rows=args.all)
    return 1 if report.failed else 0


# --------------------------------------------------------------------------- backfill


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    from .guardrails import GUARDRAILS

    parser.add_argument("--since", required=True, help="how far back: a duration (2h, 90m, 1d12h) or an RFC 3339 time")
    parser.add_argument("--project", help="whose audit log to read (default: EGRESS_GUARD_PROJECT or "
                                          "GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--dry-run", action="store_true", help="plan only: no guardrail makes any change")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON lines on stdout")
    parser.add_argument("--publish", action="store_true", help="also publish findings to EGRESS_GUARD_FINDINGS_TOPIC")
    parser.add_argument("--guardrail", choices=sorted(GUARDRAILS), action="append",
                        help="run only this guardrail (repeatable; default: all)")
    parser.add_argument("--verbose", action="store_true", help="log every decision (JSON lines on stderr)")


def _backfill(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .backfill import backfill, parse_since, progress_line, render_report
    from .guardrails import GUARDRAILS
    from .runner import NO_AGE_LIMIT, Context

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"egress-guard backfill: {exc}", file=sys.stderr)
        return 2
    _quiet_unless(args.verbose)
    context = Context.from_env(publish=lambda finding: None)
    project = _project(args, context, "backfill")
    if project is None:
        return 2
    policy = forced_dry_run(context.policy) if args.dry_run else context.policy
    publisher = _publisher(context) if args.publish else None
    context = dataclasses.replace(context, policy=policy, publish=publisher or (lambda finding: None),
                                  max_age=NO_AGE_LIMIT)
    chosen = [GUARDRAILS[name] for name in (args.guardrail or sorted(GUARDRAILS))]

    def on_entry(index: int, total: int, replayed: Any) -> None:
        print(progress_line(index, total, replayed), file=sys.stderr, flush=True)
        if args.json:
            for result in replayed.results:
                for finding in result.findings:
                    print(finding.to_json(), flush=True)

    try:
        report = backfill(context, chosen, project, since, on_entry=on_entry)
    except TransientError as exc:
        print(f"egress-guard backfill: reading the audit log needs a retry: {exc.reason}", file=sys.stderr)
        return 1
    render_report(report, Console(stderr=True) if args.json else Console())
    return 1 if report.failed else 0


# --------------------------------------------------------------------------- doctor


def _doctor_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--project", help="the deployment's scope is this project")
    where.add_argument("--organization", help="the deployment's scope is this organization (numeric id)")
    where.add_argument("--folder", help="the deployment's scope is this folder (numeric id)")
    parser.add_argument("--json", action="store_true", help="print the checks and assumptions as one JSON document")
    parser.add_argument("--export", metavar="DIR", help="write the audit entries used, anonymised, to DIR")
    parser.add_argument("--host-project", help="the project holding egress-guard's topics, functions and secret "
                                               "(default: the sink's topic's project)")
    parser.add_argument("--role-organization", help="folder scope: the organization holding the custom roles")
    parser.add_argument("--name-prefix", default=None, help="infra's var.name_prefix (default: egress-guard)")
    parser.add_argument("--policy", help="the policy file the functions use (default: EGRESS_GUARD_POLICY)")
    parser.add_argument("--infra", help="infra/ of egress-guard, for its permission table (default: the "
                                        "repository's)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the dry-run sweep")


def _doctor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .clients import Clients
    from .config import Settings
    from .doctor import Reader, Scope, diagnose, export_entries, expected, render
    from .errors import InvalidName
    from .names import validate_project

    kind, value = next((k, getattr(args, k)) for k in ("project", "organization", "folder") if getattr(args, k))
    try:
        if kind == "project":
            value = validate_project(value, "--project")
        elif not value.isdigit():
            raise InvalidName(f"--{kind} {value!r}: expected the numeric id (e.g. 123456789012)")
        host = validate_project(args.host_project, "--host-project") if args.host_project else None
    except InvalidName as exc:
        print(f"egress-guard doctor: {exc}", file=sys.stderr)
        return 2
    _quiet_unless(False)
    settings = Settings.from_env()
    if not settings.project:  # the logging client needs a project; the scope's host is the natural one
        settings = dataclasses.replace(settings, project=host or (value if kind == "project" else ""))
    reader = Reader(Clients(settings), prefix=args.name_prefix or expected.NAME_PREFIX,
                    infra=Path(args.infra) if args.infra else expected.DEFAULT_INFRA, policy_path=args.policy,
                    host_project=host, role_organization=args.role_organization, sweep=not args.no_sweep)
    scope = Scope(kind, value)
    diagnosis = diagnose(reader, scope)
    target = scope.resource
    entries = diagnosis.readings.audit_entries
    show = render.as_json if args.json else render.text
    sys.stdout.write(show(diagnosis.checks, diagnosis.assumptions, entries, target))
    if args.export:
        written = export_entries(diagnosis, Path(args.export))
        print(f"egress-guard doctor: wrote {len(written)} file(s) to {args.export}", file=sys.stderr)
    return 1 if diagnosis.failed else 0
# --------------------------------------------------------------------------- dead-letters


def _dead_letters_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscription", help="the dead-letter inbox: projects/P/subscriptions/S or S (default: "
                                               "EGRESS_GUARD_DEAD_LETTER_SUBSCRIPTION, else egress-guard-dead-letter-inbox)")
    parser.add_argument("--redrive", action="store_true", help="publish each message again to the topic it came "
                                                               "from; acknowledged only once published")
    parser.add_argument("--json", action="store_true", help="one JSON object per message on stdout")
    parser.add_argument("--limit", type=int, default=None, help="read at most this many messages")


def _dead_letters(args: argparse.Namespace) -> int:
    import os

    from .clients import Clients
    from .config import Settings
    from .deadletters import DeadLetterInbox
    from .errors import EgressGuardError

    inbox = DeadLetterInbox.named(Clients(Settings.from_env()), args.subscription, os.environ)  # ConfigError: exit 2
    try:
        letters = inbox.read(limit=args.limit)
    except EgressGuardError as exc:
        print(f"egress-guard dead-letters: cannot read {inbox.subscription}: {exc.reason}", file=sys.stderr)
        return 1
    for letter in letters:
        if args.json:
            print(json.dumps(letter.to_dict(), sort_keys=True), flush=True)
        else:
            source = letter.source_subscription.rsplit("/", 1)[-1] or "?"
            print(f"{letter.message_id}  {letter.publish_time}  from {source} ({letter.delivery_attempt} tries)  "
                  f"{letter.what}", flush=True)
    if not args.redrive:
        inbox.release(letters)
        print(f"{len(letters)} message(s) in {inbox.subscription}; left in place", file=sys.stderr)
        return 0
    failed = 0
    for outcome in inbox.redrive(letters):
        letter = outcome.letter
        if outcome.redriven:
            note = f" ({outcome.error})" if outcome.error else ""
            print(f"redriven {letter.message_id} -> {letter.topic}{note}", file=sys.stderr)
        else:
            failed += 1
            print(f"kept {letter.message_id} in the inbox: {outcome.error}", file=sys.stderr)
    print(f"{len(letters) - failed} of {len(letters)} message(s) redriven from {inbox.subscription}", file=sys.stderr)
    return 1 if failed else 0


# --------------------------------------------------------------------------- undo


def _undo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("finding", metavar="FINDING_ID|FILE", help="a finding id (24 hex characters), looked up in "
                                                                   "the findings archive subscription, or a file "
                                                                   "holding the finding's JSON (- for stdin)")
    parser.add_argument("--dry-run", action="store_true", help="print what undo would change; change nothing")
    parser.add_argument("--subscription", help="the findings archive subscription (default: "
                                               "EGRESS_GUARD_FINDINGS_SUBSCRIPTION, else egress-guard-findings-archive)")
    parser.add_argument("--json", action="store_true", help="print the undone finding as JSON only")


def _undo(args: argparse.Namespace) -> int:
    import getpass
    import os
    import re

    from .errors import EgressGuardError
    from .runner import Context
    from .undo import NotUndoable, find_finding, findings_subscription, redo_warning, undo

    context = Context.from_env(publish=lambda finding: None)
    clients = context.clients
    if re.fullmatch(r"[0-9a-f]{24}", args.finding) and not os.path.exists(args.finding):
        subscription = findings_subscription(clients, args.subscription, os.environ)
        try:
            finding = find_finding(clients, subscription, args.finding)
        except EgressGuardError as exc:
            print(f"egress-guard undo: cannot read {subscription}: {exc.reason}", file=sys.stderr)
            return 1
        if finding is None:
            print(f"egress-guard undo: no finding {args.finding} in {subscription} (older than its retention? give "
                  "the finding's JSON as a file instead)", file=sys.stderr)
            return 2
    else:
        try:
            documents = list(read_deliveries(args.finding))
            if len(documents) != 1:
                raise ValueError(f"it holds {len(documents)} documents; undo takes one finding")
            finding = Finding.from_dict(documents[0])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"egress-guard undo: {args.finding} is neither a finding id nor a finding file: {exc}", file=sys.stderr)
            return 2
    try:
        warning = redo_warning(context.policy, finding)
        if warning:
            print(f"egress-guard undo: warning: {warning}", file=sys.stderr)
        plan, result = undo(clients, finding, timeout=context.settings.operation_timeout_seconds, dry_run=args.dry_run,
                            publisher=lambda: _publisher(context),  # ConfigError (exit 2) before any write
                            principal=context.settings.principal or getpass.getuser())
    except NotUndoable as exc:
        print(f"egress-guard undo: {exc.reason}", file=sys.stderr)
        return 1
    except ConfigError:
        raise  # exit 2: no findings topic, found before any write
    except EgressGuardError as exc:  # PartlyUndone says what was done; a read that failed changed nothing
        print(f"egress-guard undo: {exc.reason}", file=sys.stderr)
        return 1
    if result is None:
        print(f"egress-guard undo: {plan.reason}", file=sys.stderr)
        return 1
    print(result.to_json(), flush=True)
    if not args.json:
        _render(result)
    return 0


# --------------------------------------------------------------------------- shared


def _quiet_unless(verbose: bool) -> None:
    """sweep and backfill show their own progress and table; the JSON log lines on stderr only with
    --verbose (or for errors). The level is the handlers', so records still reach loggers' own
    handlers (backfill reads the runner's acknowledgement reasons from them)."""
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.NOTSET if verbose else logging.ERROR)


def _project(args: argparse.Namespace, context: Any, command: str) -> str | None:
    from .errors import InvalidName
    from .names import validate_project

    value = args.project or context.settings.project
    if not value:
        print(f"egress-guard {command}: no project: pass --project or set EGRESS_GUARD_PROJECT", file=sys.stderr)
        return None
    try:
        return validate_project(value, "--project")
    except InvalidName as exc:
        print(f"egress-guard {command}: {exc}", file=sys.stderr)
        return None


def _regions(values: Sequence[str] | None) -> list[str] | None:
    from .errors import InvalidName
    from .names import validate_region

    try:
        return [validate_region(v, "--region") for v in values] if values else []
    except InvalidName as exc:
        print(f"egress-guard sweep: {exc}", file=sys.stderr)
        return None


def _publisher(context: Any) -> Callable[[Finding], object]:
    from .publish import FindingPublisher

    return FindingPublisher.from_clients(context.clients).publish  # ConfigError (exit 2) without a topic


# name -> (help, add_arguments, run).
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "replay": ("run the guardrails on audit entries from a file and print the findings as JSON lines",
               _replay_arguments, _replay),
    "sweep": ("reconcile everything that already exists (connectors, Cloud Run services and jobs) with the guardrails, "
              "in a project or every project of an organization or folder",
              _sweep_arguments, _sweep),
    "backfill": ("replay the audit entries of a past window (after an outage) through the guardrails",
                 _backfill_arguments, _backfill),
    "doctor": ("check a deployment end to end (read-only) and judge the UNCONFIRMED constants against the audit log",
               _doctor_arguments, _doctor),
    "undo": ("put back what a remediation changed (its findings' before), unless someone changed it since",
             _undo_arguments, _undo),
    "dead-letters": ("list what waits in the dead-letter inbox (nothing is taken out); --redrive sends it back",
                     _dead_letters_arguments, _dead_letters),
}


if __name__ == "__main__":
    sys.exit(main())
