"""Decide, then act (style.md point 4): a guardrail's decision as a frozen ``Plan``.

A planner looks at live state and returns a ``Plan``: a ``verdict`` (change, compliant, blocked,
exempt), the reason in a sentence a person can act on, and the ordered ``PlannedChange`` list that
enforce mode applies. Dry-run publishes the same plan as a ``planned`` finding, so what a person
reads in dry-run is exactly what enforce would do.

``Plan.finding(...)`` turns a plan (and, after enforcement, the changes that were really made) into
the ``Finding`` of design §3. Planners are pure: no client, no clock, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .findings import Change, Finding, Mode, Outcome, ResourceRef, Trigger


class Verdict(str, enum.Enum):
    CHANGE = "change"  # the changes below are needed
    COMPLIANT = "compliant"  # nothing to do
    BLOCKED = "blocked"  # a change is needed but unsafe; the reason says what a person should do
    EXEMPT = "exempt"  # the policy's exemptions cover it


@dataclass(frozen=True)
class PlannedChange:
    """One intended API write.

    ``action`` is the API method (``compute.routers.insert``), ``resource`` the relative name of what
    it writes, ``before`` the body as read (None when it does not exist yet), ``after`` the body sent
    (a full body for insert/update, the patch for patch, None for delete), ``reason`` why.
    """

    action: str
    resource: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    reason: str
    stage: int = 0  # executors apply stages in order and wait for a stage before starting the next

    @property
    def verb(self) -> str:
        return self.action.rsplit(".", 1)[-1]

    @property
    def short_name(self) -> str:
        return self.resource.rsplit("/", 1)[-1]

    def to_change(self) -> Change:
        return Change(action=self.action, resource=self.resource,
                      before=_plain(self.before), after=_plain(self.after))


@dataclass(frozen=True)
class Plan:
    """What a guardrail decided about one subject (a connector, a Cloud Run service or job)."""

    subject: ResourceRef
    project: str
    region: str
    network: str  # relative network name ("projects/P/global/networks/N"), "" when unknown
    verdict: Verdict
    reason: str
    changes: tuple[PlannedChange, ...] = ()
    notes: tuple[str, ...] = ()  # extra facts for the finding's reason (e.g. implicit broad rules)

    def __post_init__(self) -> None:
        if (self.verdict is Verdict.CHANGE) != bool(self.changes):
            raise ValueError(f"a {self.verdict.value} plan must {'' if self.verdict is Verdict.CHANGE else 'not '}"
                             "carry changes")

    @property
    def needs_change(self) -> bool:
        return self.verdict is Verdict.CHANGE

    def stages(self) -> list[tuple[int, tuple[PlannedChange, ...]]]:
        """The changes grouped by stage, in stage order (order within a stage kept)."""
        grouped: dict[int, list[PlannedChange]] = {}
        for change in self.changes:
            grouped.setdefault(change.stage, []).append(change)
        return [(stage, tuple(grouped[stage])) for stage in sorted(grouped)]

    def full_reason(self) -> str:
        return " ".join([self.reason, *self.notes]).strip()

    def finding(self, *, guardrail: str, mode: Mode, trigger: Trigger,
                applied: Sequence[Change] | None = None, reason: str | None = None,
                labels: Mapping[str, str] | None = None) -> Finding:
        """The finding for this plan.

        Dry-run: ``planned`` with every planned change. Enforce: pass ``applied`` (the changes really
        made, which may be fewer when someone else made the same change concurrently): ``remediated``
        when there are any, otherwise the plan's own verdict (a change plan with nothing made:
        ``compliant``, someone else converged first). ``labels``: the workload's labels, which
        notify.routes match on (a connector has none).
        """
        changes: tuple[Change, ...] = ()
        if mode is Mode.ENFORCE and applied:
            # Changes were made in this run (possibly by an attempt before a replan found the rest in place).
            outcome, changes = Outcome.REMEDIATED, tuple(applied)
        elif self.verdict is Verdict.CHANGE:
            if mode is Mode.DRY_RUN:
                outcome = Outcome.PLANNED
                changes = tuple(c.to_change() for c in self.changes)
            else:  # enforce, nothing made: someone else made the same change first
                outcome = Outcome.COMPLIANT
        else:
            outcome = {Verdict.COMPLIANT: Outcome.COMPLIANT, Verdict.BLOCKED: Outcome.BLOCKED,
                       Verdict.EXEMPT: Outcome.EXEMPT}[self.verdict]
        return Finding(
            guardrail=guardrail, mode=mode, outcome=outcome, project=self.project, region=self.region,
            network=self.network, resource=self.subject, trigger=trigger, changes=changes,
            reason=reason if reason is not None else self.full_reason(), labels=dict(labels or {}))


def change_plan(subject: ResourceRef, *, project: str, region: str, network: str, reason: str,
                changes: Sequence[PlannedChange], notes: Sequence[str] = ()) -> Plan:
    """A plan with changes, or a compliant one when ``changes`` is empty (``reason`` then says so)."""
    verdict = Verdict.CHANGE if changes else Verdict.COMPLIANT
    return Plan(subject, project, region, network, verdict, reason, tuple(changes), tuple(notes))


def _plain(value: Any) -> Any:
    """A JSON-ready deep copy (plans may hold read-only mappings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


__all__ = ["Verdict", "PlannedChange", "Plan", "change_plan"]
