"""converge: the one read -> plan -> apply -> replan loop of the guardrails and sweep."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from egress_guard.converge import MAX_ATTEMPTS, converge
from egress_guard.errors import Conflict, TransientError
from egress_guard.findings import Change


@dataclass(frozen=True)
class Todo:
    missing: tuple[str, ...]

    @property
    def needs_change(self) -> bool:
        return bool(self.missing)


def change(name: str) -> Change:
    return Change(action="compute.firewalls.insert", resource=name, before=None, after={"name": name})


class World:
    """Rules that exist; ``racer`` adds the next rule the moment the loop's second write starts."""

    def __init__(self, wanted: tuple[str, ...], *, racer: bool = False, conflicts: int = 0) -> None:
        self.wanted, self.existing, self.racer, self.conflicts, self.reads = wanted, set(), racer, conflicts, 0

    def read(self) -> frozenset[str]:
        self.reads += 1
        return frozenset(self.existing)

    def plan(self, existing: frozenset[str]) -> Todo:
        return Todo(tuple(n for n in self.wanted if n not in existing))

    def apply(self, todo: Todo, applied: list[Change]) -> None:
        for index, name in enumerate(todo.missing):
            if self.conflicts:
                self.conflicts -= 1
                raise Conflict(name)
            if index == 1 and self.racer:
                self.existing.add(name)  # another writer made it first: this write meets a 409
                self.racer = False
                raise Conflict(name)
            self.existing.add(name)
            applied.append(change(name))


def test_a_write_made_before_a_conflict_is_kept_when_the_replan_finds_nothing_left():
    world = World(("allow0", "deny"), racer=True)
    done = converge(world.read, world.plan, world.apply, enforce=True, kept_changing="-")
    assert not done.plan.needs_change and [c.resource for c in done.applied] == ["allow0"]
    assert world.reads == 2  # read, conflict, read again


def test_first_state_comes_from_the_caller_then_live_reads():
    world = World(("a",), conflicts=1)
    done = converge(world.read, world.plan, world.apply, enforce=True, kept_changing="-", first=lambda: frozenset())
    assert world.reads == 1 and [c.resource for c in done.applied] == ["a"]


def test_dry_run_plans_and_applies_nothing():
    world = World(("a", "b"))
    done = converge(world.read, world.plan, world.apply, enforce=False, kept_changing="-")
    assert done.plan.missing == ("a", "b") and done.applied == () and world.existing == set()


def test_gives_up_after_max_attempts_with_a_transient_error():
    world = World(("a",), conflicts=MAX_ATTEMPTS)
    with pytest.raises(TransientError, match="kept changing"):
        converge(world.read, world.plan, world.apply, enforce=True, kept_changing="the rules kept changing")
    assert world.reads == MAX_ATTEMPTS


class StaleWriter(World):
    """Another instance's patch, made from a read older than ours, lands right after each of our
    writes and drops what we added (routers have no fingerprint: nothing refuses it)."""

    def __init__(self, wanted: tuple[str, ...], *, undo: int) -> None:
        super().__init__(wanted)
        self.undo, self.writes = undo, 0

    def apply(self, todo: Todo, applied: list[Change]) -> None:
        super().apply(todo, applied)
        self.writes += 1
        if self.undo:
            self.undo -= 1
            self.existing.clear()


def every_write_is_unconditional(changes) -> bool:
    return bool(changes)


def test_a_write_undone_by_a_stale_writer_is_seen_by_the_verification_read_and_made_again():
    world = StaleWriter(("nat-subnet",), undo=1)
    done = converge(world.read, world.plan, world.apply, enforce=True, kept_changing="-",
                    verify_after_write=every_write_is_unconditional)
    assert world.existing == {"nat-subnet"} and world.writes == 2
    assert world.reads == 3  # read, write (undone), verify: missing, write, verify: there
    assert done.plan.needs_change and [c.resource for c in done.applied] == ["nat-subnet", "nat-subnet"]


def test_without_verification_the_stale_writer_wins():
    world = StaleWriter(("nat-subnet",), undo=1)
    converge(world.read, world.plan, world.apply, enforce=True, kept_changing="-")
    assert world.existing == set() and world.reads == 1  # why ensure_nat verifies its router patches


def test_a_conditional_write_pays_no_verification_read():
    world = StaleWriter(("rule",), undo=0)
    converge(world.read, world.plan, world.apply, enforce=True, kept_changing="-",
             verify_after_write=lambda changes: False)
    assert world.reads == 1 and world.writes == 1


def test_writes_undone_every_time_end_in_a_transient_error_after_max_attempts_writes():
    world = StaleWriter(("nat-subnet",), undo=MAX_ATTEMPTS)
    with pytest.raises(TransientError, match="kept changing"):
        converge(world.read, world.plan, world.apply, enforce=True, kept_changing="the routers kept changing",
                 verify_after_write=every_write_is_unconditional)
    assert world.writes == MAX_ATTEMPTS and world.reads == MAX_ATTEMPTS + 1


def test_the_verification_read_comes_after_the_callers_settle_time():
    world = StaleWriter(("nat-subnet",), undo=0)
    order: list[str] = []
    read = world.read
    world.read = lambda: (order.append("read"), read())[1]  # type: ignore[method-assign]
    converge(world.read, world.plan, world.apply, enforce=True, kept_changing="-",
             verify_after_write=every_write_is_unconditional, settle=lambda: order.append("settle"))
    assert order == ["read", "settle", "read"]
