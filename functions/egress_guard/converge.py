"""The converge loop every writer of egress-guard runs: read -> plan -> apply -> replan on conflict.

Both guardrails (one subject per event) and ``sweep`` (one router write per region, one rule set
per connector) decide and act the same way:

1. read the live state (a guardrail reads it now; a sweep starts from its inventory and reads
   again only after a conflict);
2. plan from it (pure);
3. in dry-run, or when the plan needs no change, stop: that plan is the decision;
4. apply it. An executor appends each change to ``applied`` the moment it is made, so that a
   ``Conflict`` on a later write (someone changed the state since it was read) keeps what was
   already written: the replan then finds that part in place, and the finding still reports it.
   Dropping it would turn a run that wrote rules into ``compliant``;
5. on ``Conflict``, read again and replan, at most ``MAX_ATTEMPTS`` times, then ``TransientError``.

``converge`` returns the last plan with every change made across the attempts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .errors import Conflict, TransientError
from .findings import Change

# Read, plan and write again at most this many times when the state changes under a write.
MAX_ATTEMPTS = 3


class Decision(Protocol):
    @property
    def needs_change(self) -> bool: ...


S = TypeVar("S")  # the state a plan is made from (routers, rules)
P = TypeVar("P", bound=Decision)


@dataclass(frozen=True)
class Converged(Generic[P]):
    plan: P  # the last plan made (after a conflict: the replan)
    applied: tuple[Change, ...]  # every change made, by every attempt


def converge(read: Callable[[], S], plan: Callable[[S], P], apply: Callable[[P, list[Change]], object], *,
             enforce: bool, kept_changing: str, first: Callable[[], S] | None = None) -> Converged[P]:
    """Plan and (when ``enforce``) apply until the plan holds; see the module docstring.

    ``read``: the live state. ``first``: where the first attempt's state comes from, when not a
    live read (sweep's inventory). ``apply(plan, applied)`` makes the plan's changes, appending
    each to ``applied`` as soon as it is made, and raises ``Conflict`` when the state changed.
    ``kept_changing``: the reason of the ``TransientError`` raised after ``MAX_ATTEMPTS``.
    """
    applied: list[Change] = []
    for attempt in range(MAX_ATTEMPTS):
        state = first() if attempt == 0 and first is not None else read()
        planned = plan(state)
        if not enforce or not planned.needs_change:
            return Converged(planned, tuple(applied))
        try:
            apply(planned, applied)
        except Conflict:
            continue  # someone else changed the state: read it again and plan again
        # A "verify after write" step (re-read what was written, and re-apply what a concurrent
        # writer undid) belongs here: after apply returned, before the decision is final.
        return Converged(planned, tuple(applied))
    raise TransientError(kept_changing)
