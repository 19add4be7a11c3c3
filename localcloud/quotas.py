"""Compute's per-project rate quota on global mutation methods, as an opt-in profile.

Google counts the requests of each quota group per project and per synchronized minute (a limit
reached at 10:00:15 refills at 10:01:00, not 60 s later), and answers a request over the limit with
403 and reason ``rateLimitExceeded`` (docs/gcp-facts.md §14). The global mutation methods
(``firewalls.insert``, ``firewalls.patch`` ...) share the group "Queries",
``compute.googleapis.com/default``, 1,500 requests per minute per project by default.

Off unless switched on through the control API (``POST /_localcloud/quotas``), so every other test
and benchmark runs unlimited as before. ``per_window`` defaults to Google's 1,500 and ``window_s``
to its minute; a test may shrink both (20 writes per 2 s) to see a sweep wait for refills in
seconds. Windows are aligned to the epoch (``time.time() // window_s``), as Google aligns them to
the minute. A rejected request is not counted: it made no change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from localcloud.errors import ApiError, invalid

# Google's default for the "Queries" group (global mutation methods), per project and minute.
DEFAULT_GLOBAL_MUTATIONS_PER_MINUTE = 1500
WINDOW_S = 60.0


class RateQuotas:
    """Counts the global Compute mutations of each project per window; refuses those over the limit."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.per_window: int | None = None  # None: off
        self.window_s = WINDOW_S
        self._counts: dict[tuple[str, int], int] = {}  # (project, window index) -> accepted requests
        self.rejected = 0

    def set(self, per_window: int = DEFAULT_GLOBAL_MUTATIONS_PER_MINUTE, window_s: float = WINDOW_S) -> None:
        if isinstance(per_window, bool) or not isinstance(per_window, int) or per_window < 1:
            raise invalid("quota per_window must be a positive integer")
        if isinstance(window_s, bool) or not isinstance(window_s, (int, float)) or not 0 < window_s <= 3600:
            raise invalid("quota window_s must be a number of seconds in (0, 3600]")
        with self._lock:
            self.per_window, self.window_s = per_window, float(window_s)
            self._counts.clear()
            self.rejected = 0

    def reset(self) -> None:
        with self._lock:
            self.per_window, self.window_s = None, WINDOW_S
            self._counts.clear()
            self.rejected = 0

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"enabled": self.per_window is not None, "per_window": self.per_window, "window_s": self.window_s,
                    "group": "compute.googleapis.com/default (Queries: global mutation methods)",
                    "rejected": self.rejected,
                    "accepted": [{"project": p, "window_start": w * self.window_s, "requests": n}
                                 for (p, w), n in sorted(self._counts.items())]}

    def before_call(self, method_id: str, path: str, mutating: bool) -> None:
        """Raise Compute's 403 rateLimitExceeded when this request is over its project's quota."""
        if self.per_window is None or not (mutating and method_id.startswith("compute.")):
            return
        project = global_project(path)
        if project is None:
            return  # a regional or zonal mutation: another quota group, not emulated
        with self._lock:
            if self.per_window is None:
                return
            key = (project, int(self._clock() // self.window_s))
            used = self._counts.get(key, 0)
            if used >= self.per_window:
                self.rejected += 1
                raise ApiError(403, "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of "
                                    f"service 'compute.googleapis.com' for consumer 'project:{project}'.",
                               reason="rateLimitExceeded")
            self._counts[key] = used + 1


def global_project(path: str) -> str | None:
    """``/compute/v1/projects/P/global/...`` -> P; None for any other path."""
    parts = path.split("/")
    try:
        at = parts.index("projects")
    except ValueError:
        return None
    if len(parts) > at + 2 and parts[at + 2] == "global":
        return parts[at + 1]
    return None
