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
5. on ``Conflict``, read again and replan, at most ``MAX_ATTEMPTS`` times, then ``TransientError``;
6. verify after write, for writes that cannot be made conditional on the state read
   (``verify_after_write`` says which: a router ``patch`` replaces the whole ``nats`` list and
   routers have no fingerprint, so a concurrent writer's patch made from an older read is not
   refused, it silently drops what we added). After such a write, read again and plan: a plan that
   needs no change is the proof our write holds; one that still needs a change means someone's
   stale write undid ours, so write again (this is step 4 again, counted against the same
   ``MAX_ATTEMPTS``), and verify again. Writes that Google makes conditional (firewall rules carry
   a fingerprint: a stale write answers 412, a ``Conflict``) need no verification and pay no read.

``converge`` returns the last plan applied (or, after a conflict, the replan) with every change
made across the attempts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
             enforce: bool, kept_changing: str, first: Callable[[], S] | None = None,
             verify_after_write: Callable[[Sequence[Change]], bool] | None = None,
             settle: Callable[[], object] = lambda: None) -> Converged[P]:
    """Plan and (when ``enforce``) apply until the plan holds; see the module docstring.

    ``read``: the live state. ``first``: where the first attempt's state comes from, when not a
    live read (sweep's inventory). ``apply(plan, applied)`` makes the plan's changes, appending
    each to ``applied`` as soon as it is made, and raises ``Conflict`` when the state changed.
    ``kept_changing``: the reason of the ``TransientError`` raised after ``MAX_ATTEMPTS`` writes.
    ``verify_after_write(changes)``: True when the changes one apply made were unconditional
    writes, which a fresh read must confirm (step 6); ``settle()`` runs before that read (the
    caller's wait for concurrent writers that read before our write to land theirs).
    """
    applied: list[Change] = []
    written: P | None = None  # the plan last applied, while a fresh read has not confirmed it yet
    writes = 0
    while True:
        if written is not None:
            settle()
        state = first() if writes == 0 and first is not None else read()
        planned = plan(state)
        if written is not None and not planned.needs_change:
            return Converged(written, tuple(applied))  # verified: what we wrote is still in place
        if not enforce or not planned.needs_change:
            return Converged(planned, tuple(applied))
        if writes == MAX_ATTEMPTS:  # every write met a conflict or was undone by another writer
            raise TransientError(kept_changing)
        writes += 1
        made = len(applied)
        try:
            apply(planned, applied)
        except Conflict:
            written = None
            if writes == MAX_ATTEMPTS:
                raise TransientError(kept_changing) from None
            continue  # someone else changed the state: read it again and plan again
        if verify_after_write is None or not verify_after_write(applied[made:]):
            return Converged(planned, tuple(applied))
        written = planned  # read again: a concurrent writer's stale write may have dropped ours
