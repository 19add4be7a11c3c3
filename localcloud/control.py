"""The control API under /_localcloud/ (tests, the demo and benchmarks drive localcloud with it).

GET  /_localcloud/health                 liveness and the emulated services
POST /_localcloud/reset                  empty every table, operation, call log, fault and audit entry
GET  /_localcloud/state                  every resource, by kind
GET  /_localcloud/calls?since=N&principal=P   the call log with per-method counts
DELETE /_localcloud/calls                clear the call log
GET|POST|DELETE /_localcloud/faults      fault rules: {"rules": [FaultRule...], "seed": 1}
GET|POST /_localcloud/config             behaviour switches (operation delays, broad rule visibility)
Service modules may add their own control routes (``control_routes(app)``), e.g. sinks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from localcloud.errors import invalid
from localcloud.faults import FaultRule
from localcloud.routing import Call, Result, Route

if TYPE_CHECKING:
    from localcloud.server import LocalCloud


def routes(app: "LocalCloud") -> list[Route]:
    world = app.world

    def health(call: Call) -> Result:
        return Result({"status": "ok", "routes": len(app.router.routes)})

    def reset(call: Call) -> Result:
        with world.lock:
            world.reset()
            app.operations.reset()
        app.calls.reset()
        app.faults.reset()
        return Result({"reset": True})

    def state(call: Call) -> Result:
        with world.lock:
            dump = {kind: {_key(k): v for k, v in table.items()} for kind, table in world.tables.items()}
        return Result(dump)

    def calls(call: Call) -> Result:
        try:
            since = int(call.query.get("since", "0"))
        except ValueError:
            raise invalid("since must be an integer") from None
        return Result(app.calls.snapshot(since, call.query.get("principal")))

    def clear_calls(call: Call) -> Result:
        app.calls.reset()
        return Result({"cleared": True})

    def get_faults(call: Call) -> Result:
        return Result({"rules": app.faults.rules()})

    def set_faults(call: Call) -> Result:
        body = call.body or {}
        if not isinstance(body, dict) or not isinstance(body.get("rules", []), list):
            raise invalid('faults body must be {"rules": [...], "seed": optional int}')
        rules = [FaultRule.from_dict(r) for r in body.get("rules", [])]
        app.faults.set(rules, seed=body.get("seed"))
        return Result({"rules": app.faults.rules()})

    def clear_faults(call: Call) -> Result:
        app.faults.reset()
        return Result({"rules": []})

    def get_config(call: Call) -> Result:
        return Result(world.config.to_dict())

    def set_config(call: Call) -> Result:
        if not isinstance(call.body, dict):
            raise invalid("config body must be a JSON object")
        with world.lock:
            world.config.update(call.body)
        return Result(world.config.to_dict())

    base = "/_localcloud"
    table = [
        ("GET", "health", health), ("POST", "reset", reset), ("GET", "state", state),
        ("GET", "calls", calls), ("DELETE", "calls", clear_calls),
        ("GET", "faults", get_faults), ("POST", "faults", set_faults), ("DELETE", "faults", clear_faults),
        ("GET", "config", get_config), ("POST", "config", set_config),
    ]
    out = [Route(m, f"{base}/{p}", "", f"localcloud.{p}.{m.lower()}", h) for m, p, h in table]
    from localcloud.server import SERVICE_MODULES

    for name in SERVICE_MODULES:
        try:
            module = importlib.import_module(f"localcloud.routes.{name}")
        except ModuleNotFoundError:
            continue
        extra = getattr(module, "control_routes", None)
        if extra:
            out.extend(extra(app))
    return out


def _key(key) -> str:
    return "/".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
