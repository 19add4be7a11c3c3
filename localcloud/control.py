"""The control API under /_localcloud/ (tests, the demo and benchmarks drive localcloud with it).

GET  /_localcloud/health                 liveness and the emulated services
POST /_localcloud/reset                  empty every table, operation, call log, fault and audit entry
GET  /_localcloud/state                  every resource, by kind
GET  /_localcloud/calls?since=N&principal=P   the call log with per-method counts
DELETE /_localcloud/calls                clear the call log
GET|POST|DELETE /_localcloud/faults      fault rules: {"rules": [FaultRule...], "seed": 1}; GET also says how many calls are held
POST /_localcloud/faults/release         let every call a ``hold`` rule holds go on
GET|POST /_localcloud/config             behaviour switches (operation delays, broad rule visibility)
GET|POST|DELETE /_localcloud/quotas      Compute's rate quota on global mutations (quotas.py), off by
                                         default: {"per_window": 1500, "window_s": 60} switches it on
Service modules may add their own control routes (``control_routes(services)``), e.g. sinks.
"""

from __future__ import annotations

from localcloud.errors import invalid
from localcloud.faults import FaultRule
from localcloud.routing import Call, Result, Route, Router
from localcloud.services import Services


def routes(services: Services, api_router: Router) -> list[Route]:
    """The control routes over ``services``; ``api_router`` is counted by health."""
    world = services.world

    def health(call: Call) -> Result:
        return Result({"status": "ok", "routes": len(api_router.routes)})

    def reset(call: Call) -> Result:
        with world.lock:
            world.reset()
            services.operations.reset()
        services.calls.reset()
        services.faults.reset()
        services.quotas.reset()
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
        return Result(services.calls.snapshot(since, call.query.get("principal")))

    def clear_calls(call: Call) -> Result:
        services.calls.reset()
        return Result({"cleared": True})

    def get_faults(call: Call) -> Result:
        return Result({"rules": services.faults.rules(), "held": services.faults.holding()})

    def release_faults(call: Call) -> Result:
        return Result({"released": services.faults.release()})

    def set_faults(call: Call) -> Result:
        body = call.body or {}
        if not isinstance(body, dict) or not isinstance(body.get("rules", []), list):
            raise invalid('faults body must be {"rules": [...], "seed": optional int}')
        rules = [FaultRule.from_dict(r) for r in body.get("rules", [])]
        services.faults.set(rules, seed=body.get("seed"))
        return Result({"rules": services.faults.rules()})

    def clear_faults(call: Call) -> Result:
        services.faults.reset()
        return Result({"rules": []})

    def get_quotas(call: Call) -> Result:
        return Result(services.quotas.state())

    def set_quotas(call: Call) -> Result:
        body = call.body if call.body is not None else {}
        if not isinstance(body, dict) or set(body) - {"per_window", "window_s"}:
            raise invalid('quotas body must be {"per_window": N (default 1500), "window_s": S (default 60)}')
        services.quotas.set(**body)
        return Result(services.quotas.state())

    def clear_quotas(call: Call) -> Result:
        services.quotas.reset()
        return Result(services.quotas.state())

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
        ("POST", "faults/release", release_faults),
        ("GET", "config", get_config), ("POST", "config", set_config),
        ("GET", "quotas", get_quotas), ("POST", "quotas", set_quotas), ("DELETE", "quotas", clear_quotas),
    ]
    out = [Route(m, f"{base}/{p}", "", f"localcloud.{p}.{m.lower()}", h) for m, p, h in table]
    return out + services.control_routes()


def _key(key) -> str:
    return "/".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
