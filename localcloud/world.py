"""The emulated world: all state, one lock, the clocks and ids Google would hand out.

Backends (compute, vpcaccess, run, logging) keep their resources here and never see HTTP.
Every mutation happens under ``World.lock`` so concurrent clients see Google's
one-writer-wins behaviour (409 for the loser of two inserts), never a torn write.
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
from dataclasses import dataclass, field, asdict
from datetime import datetime, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo

# Compute writes creationTimestamp in Pacific time with an offset (e.g. 2024-04-01T05:34:56.123-07:00).
_PACIFIC = ZoneInfo("America/Los_Angeles")

DEFAULT_PRINCIPAL = "developer@example.com"


@dataclass
class Config:
    """Behaviour switches, changed through the control API (POST /_localcloud/config)."""

    compute_operation_delay_s: float = 0.0
    connector_ready_delay_s: float = 1.0
    run_operation_delay_s: float = 0.0
    functions_operation_delay_s: float = 0.0
    appengine_operation_delay_s: float = 0.0
    # docs/gcp-facts.md §11: whether the broad connector -> VPC allow rules (sbntfw/tagfw) are visible
    # firewall resources or implicit ones no API lists. Visible by default.
    connector_broad_rules: str = "visible"  # visible | implicit
    default_principal: str = DEFAULT_PRINCIPAL
    validate_responses: bool = False  # tests turn it on: our own answers must match discovery
    public_base: str = "https://www.googleapis.com"  # the host selfLinks are written with

    def update(self, changes: dict[str, Any]) -> None:
        from localcloud.errors import invalid

        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise invalid(f"unknown localcloud config key {key!r}; known: {sorted(self.__dataclass_fields__)}")
            current = getattr(self, key)
            if isinstance(current, bool) and not isinstance(value, bool):
                raise invalid(f"config {key} must be a boolean")
            if isinstance(current, float) and not isinstance(value, (int, float)):
                raise invalid(f"config {key} must be a number")
            if key == "connector_broad_rules" and value not in ("visible", "implicit"):
                raise invalid("config connector_broad_rules must be 'visible' or 'implicit'")
            setattr(self, key, float(value) if isinstance(current, float) else value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditHook(Protocol):
    def on_call(self, record: Any) -> None: ...  # an auditlog.record.AuditRecord
    def on_operation_done(self, operation: Any) -> None: ...
    def reset(self) -> None: ...


class NoAudit:
    def on_call(self, record) -> None:
        pass

    def on_operation_done(self, operation) -> None:
        pass

    def reset(self) -> None:
        pass


@dataclass
class World:
    config: Config = field(default_factory=Config)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # kind -> key -> resource body (Google's JSON shape); backends own their kinds' keys.
    tables: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=dict)
    audit: Any = field(default_factory=NoAudit)
    backends: dict[str, Any] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def table(self, kind: str) -> dict[Any, dict[str, Any]]:
        return self.tables.setdefault(kind, {})

    def reset(self) -> None:
        with self.lock:
            self.tables.clear()
            for backend in self.backends.values():
                reset = getattr(backend, "reset", None)
                if reset:
                    reset()
            self.audit.reset()

    # ---- ids and clocks, in Google's formats ---------------------------------------------
    def new_id(self) -> str:
        """A 19-digit unsigned id, as Compute assigns (uint64 rendered as a string)."""
        return str(random.randrange(10**18, 2**63))

    @staticmethod
    def compute_timestamp(at: float | None = None) -> str:
        moment = datetime.fromtimestamp(at if at is not None else time.time(), _PACIFIC)
        return moment.isoformat(timespec="milliseconds")

    @staticmethod
    def rfc3339(at: float | None = None) -> str:
        """UTC with nanosecond digits, as one-platform APIs write createTime/updateTime."""
        t = at if at is not None else time.time()
        base = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{base}.{int((t % 1) * 1e9):09d}Z"

    @staticmethod
    def operation_suffix() -> str:
        return f"{int(time.time() * 1000)}-{secrets.token_hex(7)[:13]}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"

    def self_link(self, path: str) -> str:
        return f"{self.config.public_base}/compute/v1/{path}"
