"""The changes this instance has already decided, so that a repeat costs no API call (docs/minimums.md F9).

Pub/Sub delivers at least once and redelivers what was not acknowledged in time; a long-running
create writes an ``operation.first`` and possibly an ``operation.last`` entry with the same
``operation.id``. A repeat of a change that this instance has decided, and whose findings it has
published, needs no second decision: any later change of the state it read writes its own audit
entry, which is another change and is handled. So each guardrail remembers, per instance, the
changes it decided (key: guardrail, mode, and the entry's ``operation.id``, else its ``insertId``)
and acknowledges a repeat with its reason. Concurrent deliveries of one change wait for the first
(one lock per change, dropped when no delivery holds it), then find it decided.

Only a decision that was published is remembered: a delivery that raised (transient error, a
finding Pub/Sub refused) leaves nothing, so its redelivery is handled in full. A repeat that reaches
another instance is handled there as a first delivery (at-least-once across instances is the
platform's; this only spares what one instance can know).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from .events import AuditEvent
from .findings import Mode

# Enough for the changes of an event-age window (600 s) at hundreds of events per second; the
# oldest are forgotten first, and a forgotten repeat is only handled in full again.
CAPACITY = 100_000


def change_key(guardrail: str, mode: Mode, event: AuditEvent) -> str:
    """What makes two deliveries the same change for one guardrail."""
    return f"{guardrail}|{mode.value}|{event.project}|{event.operation_id or event.insert_id}"


class DecidedChanges:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._guard = threading.Lock()
        self._decided: OrderedDict[str, str] = OrderedDict()  # key -> the entry that decided it (insertId)
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """One delivery of the change ``key`` at a time in this instance."""
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def decided_by(self, key: str) -> str | None:
        """The insertId of the entry whose delivery decided ``key``, if this instance decided it."""
        with self._guard:
            return self._decided.get(key)

    def remember(self, key: str, insert_id: str) -> None:
        with self._guard:
            self._decided[key] = insert_id
            self._decided.move_to_end(key)
            while len(self._decided) > self._capacity:
                self._decided.popitem(last=False)
