"""The goals of issue 7, judged on one run's results (pure: results in, verdicts out).

Every comparison is a ratio of two figures measured in the same run, because these machines are
noisy; ``met`` is None when a figure is missing (its section failed or could not run), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOTIFY_VS_CUSTODIAN_MAX = 0.5
REMEDIATION_VS_COMPUTE_MAX = 1.1
OVERHEAD_MAX = 0.10
SWEEP_MARGINAL_CALLS_PER_CONNECTOR_MAX = 0.05  # at least 20 more connectors per extra call: pages, not gets
SWEEP_GOAL_CONNECTORS, SWEEP_GOAL_SECONDS = 1000, 5.0
REMEDIATION = ("ensure_nat", "replace_connector_firewalls")


def _ratio(a: Any, b: Any) -> float | None:
    try:
        return round(float(a) / float(b), 3) if float(b) > 0 else None
    except (TypeError, ValueError):
        return None


def _goal(name: str, target: str, value: Any, met: bool | None, **detail: Any) -> dict[str, Any]:
    return {"goal": name, "target": target, "value": value, "met": met, **detail}


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _all(values: list[bool | None]) -> bool | None:
    if not values or any(v is None for v in values):
        return None
    return all(values)


def cold_start_goals(cold: Mapping[str, Any]) -> list[dict[str, Any]]:
    goals = []
    custodian = cold.get("custodian") or {}
    notify = cold.get("notify_slack") or {}
    wall = _ratio(notify.get("wall_s"), custodian.get("wall_s"))
    rss = _ratio(notify.get("rss_mib"), custodian.get("rss_mib"))
    goals.append(_goal("notify_slack cold import vs Cloud Custodian's handler", f"<= {NOTIFY_VS_CUSTODIAN_MAX} x",
                       {"wall": wall, "rss": rss}, _all([_at_most(wall, NOTIFY_VS_CUSTODIAN_MAX),
                                                         _at_most(rss, NOTIFY_VS_CUSTODIAN_MAX)]),
                       **({"missing": custodian["error"]} if custodian.get("error") else {})))
    floor = (cold.get("floors") or {}).get("compute_v1") or {}
    for name in REMEDIATION:
        figures = cold.get(name) or {}
        wall = _ratio(figures.get("wall_s"), floor.get("wall_s"))
        rss = _ratio(figures.get("rss_mib"), floor.get("rss_mib"))
        goals.append(_goal(f"{name} cold import vs the compute_v1 floor", f"<= {REMEDIATION_VS_COMPUTE_MAX} x",
                           {"wall": wall, "rss": rss}, _all([_at_most(wall, REMEDIATION_VS_COMPUTE_MAX),
                                                             _at_most(rss, REMEDIATION_VS_COMPUTE_MAX)])))
    return goals


def api_call_goal(api_calls: Mapping[str, Any]) -> dict[str, Any]:
    over = {name: {"used": row.get("used"), "minimum": row.get("minimum")} for name, row in api_calls.items()
            if row.get("used") != row.get("minimum") or row.get("equal") is False}
    unknown = [name for name, row in api_calls.items() if row.get("used") is None or row.get("minimum") is None]
    met = None if unknown or not api_calls else not over
    return _goal("API calls equal the minimum in every scenario", "used == minimum",
                 f"{len(api_calls) - len(over)}/{len(api_calls)} scenarios at the minimum", met,
                 **({"differ": over} if over else {}))


def overhead_goal(e2e: Mapping[str, Any]) -> dict[str, Any]:
    ratio = e2e.get("overhead_ratio")
    return _goal("egress-guard's overhead under the realistic profile", f"< {OVERHEAD_MAX:.0%} of end-to-end",
                 ratio, None if ratio is None else ratio < OVERHEAD_MAX)


def sweep_goals(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    measured = sorted((r for r in rows if r.get("calls") is not None), key=lambda r: r["connectors"])
    slope = None
    if len(measured) >= 2:
        small, large = measured[-2], measured[-1]
        slope = round((large["calls"] - small["calls"]) / (large["connectors"] - small["connectors"]), 4)
    flat = _goal("sweep calls flat per resource (grow with regions and pages, not connectors)",
                 f"<= {SWEEP_MARGINAL_CALLS_PER_CONNECTOR_MAX} extra calls per extra connector",
                 slope, _at_most(slope, SWEEP_MARGINAL_CALLS_PER_CONNECTOR_MAX),
                 per_connector={r["connectors"]: _ratio(r["calls"], r["connectors"]) for r in measured})
    at_goal = next((r for r in measured if r["connectors"] == SWEEP_GOAL_CONNECTORS), None)
    seconds = at_goal.get("seconds") if at_goal else None
    fast = _goal(f"sweep of {SWEEP_GOAL_CONNECTORS:,} connectors", f"<= {SWEEP_GOAL_SECONDS:g} s locally", seconds,
                 _at_most(seconds, SWEEP_GOAL_SECONDS))
    return [flat, fast]


def evaluate(results: Mapping[str, Any]) -> dict[str, Any]:
    """``{"ratios": {...}, "goals": [...]}`` from the sections present in ``results``."""
    goals = cold_start_goals(results.get("cold_start") or {})
    goals.append(api_call_goal(results.get("api_calls") or {}))
    goals.append(overhead_goal(results.get("e2e") or {}))
    goals += sweep_goals(list(results.get("sweep") or []))
    cold = results.get("cold_start") or {}
    floor = (cold.get("floors") or {}).get("compute_v1") or {}
    ratios = {
        "notify_slack_vs_custodian_wall": _ratio((cold.get("notify_slack") or {}).get("wall_s"),
                                                 (cold.get("custodian") or {}).get("wall_s")),
        "notify_slack_vs_custodian_rss": _ratio((cold.get("notify_slack") or {}).get("rss_mib"),
                                                (cold.get("custodian") or {}).get("rss_mib")),
        **{f"{name}_vs_compute_v1_wall": _ratio((cold.get(name) or {}).get("wall_s"), floor.get("wall_s"))
           for name in REMEDIATION},
        **{f"{name}_vs_compute_v1_rss": _ratio((cold.get(name) or {}).get("rss_mib"), floor.get("rss_mib"))
           for name in REMEDIATION},
        **{f"{name}_with_first_event_clients_vs_compute_v1_wall":
           _ratio(((cold.get("with_first_event_clients") or {}).get(name) or {}).get("wall_s"), floor.get("wall_s"))
           for name in REMEDIATION},
        "overhead_ratio": (results.get("e2e") or {}).get("overhead_ratio"),
    }
    return {"ratios": ratios, "goals": goals}
