"""The table ``make bench`` prints (pure: results in, text out). The same rows feed the README's
Performance section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _num(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)):
        text = f"{value:,.{digits}f}"
        return f"{text} {unit}".strip()
    return str(value)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = ["", title, line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return out


def render(results: Mapping[str, Any]) -> str:
    lines: list[str] = []
    e2e = results.get("e2e") or {}
    if e2e:
        real = e2e.get("realistic") or {}
        lines += _table("End to end: audit entry published -> findings on the findings topic", (
            "profile", "events", "p50", "p95", "pure API p50", "overhead"), [
            ("zero latency", _num(e2e.get("completed")), _num(e2e.get("e2e_p50_ms"), 0, "ms"),
             _num(e2e.get("e2e_p95_ms"), 0, "ms"), "-", "-"),
            ("150 ms/call, 2 s/operation", _num(real.get("completed")), _num(real.get("e2e_p50_ms"), 0, "ms"),
             _num(real.get("e2e_p95_ms"), 0, "ms"), _num(real.get("pure_api_p50_ms"), 0, "ms"),
             "n/a" if real.get("overhead_ratio") is None else f"{real['overhead_ratio']:.1%}"),
        ])
        if e2e.get("first_event_ms"):
            lines.append(f"first events of the new function instances (not in the percentiles): "
                         f"{', '.join(_num(v, 0, 'ms') for v in e2e['first_event_ms'])}")
    path = e2e.get("real_path") or {}
    if path:
        redelivery = path.get("redelivery") or {}
        rows = []
        for label, figures in (("zero latency", path.get("zero_latency") or {}), ("150 ms/call, 2 s/operation", path)):
            rows.append((label, f"{_num(figures.get('completed'))}/{_num(figures.get('events'))}",
                         _num(figures.get("ready_to_remediated_p50_ms"), 0, "ms"),
                         _num(figures.get("ready_to_remediated_p95_ms"), 0, "ms"),
                         _num(figures.get("create_to_remediated_p50_ms"), 0, "ms"),
                         _num(figures.get("create_to_remediated_p95_ms"), 0, "ms"),
                         _num(figures.get("deliveries_per_event"), 1),
                         f"{_num(figures.get('calls_per_event'), 1)} / {_num(figures.get('calls_per_event_argued'))}"))
        lines += _table(f"Real path: CreateConnector (READY after {_num(path.get('connector_ready_s'), 0)} s) -> both "
                        f"remediated findings; redelivery {_num(redelivery.get('minimum_backoff_s'), 0)}-"
                        f"{_num(redelivery.get('maximum_backoff_s'), 0)} s from infra/",
                        ("profile", "events", "READY->rem. p50", "p95", "create->rem. p50", "p95",
                         "deliveries/event", "calls/event (argued)"), rows)
    api = results.get("api_calls") or {}
    if api:
        lines += _table("API calls per scenario (argued: docs/minimums.md)", ("scenario", "used", "argued", ""), [
            (name, _num(row.get("used")), _num(row.get("argued")),
             "" if row.get("used") is not None and row.get("argued") is not None and row["used"] <= row["argued"]
             else "ABOVE" if row.get("used") is not None and row.get("argued") is not None else "n/a")
            for name, row in api.items()])
    first = (results.get("cold_start") or {}).get("first_event") or {}
    if first:
        lines += _table(f"Cold start as felt: process start -> first finding published (median of "
                        f"{first.get('runs', '?')})", ("function", "first event", "floor", "ratio",
                                                        "of which the event's API time"), [
            (name, _num((first.get(name) or {}).get("wall_s"), 3, "s"),
             _num((first.get(name) or {}).get("floor_s"), 3, "s"),
             _num((first.get(name) or {}).get("ratio") or _ratio((first.get(name) or {}).get("wall_s"),
                                                                 (first.get(name) or {}).get("floor_s")), 2, "x"),
             _num((first.get(name) or {}).get("api_s"), 3, "s"))
            for name in ("ensure_nat", "replace_connector_firewalls", "notify_slack")])
        for kind, floor in (first.get("floors") or {}).items():
            lines.append(f"floor import ({kind}): {floor.get('import', '').replace(chr(10), '; ')} "
                         f"{_num(floor.get('wall_s'), 3, 's')}")
    cold = results.get("cold_start") or {}
    if cold:
        rows = [(name, _num((cold.get(name) or {}).get("wall_s"), 3, "s"),
                 _num((cold.get(name) or {}).get("rss_mib"), 1, "MiB"))
                for name in ("ensure_nat", "replace_connector_firewalls", "notify_slack")]
        for name, figures in (cold.get("floors") or {}).items():
            rows.append((f"floor: {figures.get('import', name)}", _num(figures.get("wall_s"), 3, "s"),
                         _num(figures.get("rss_mib"), 1, "MiB")))
        for name, figures in (cold.get("with_first_event_clients") or {}).items():
            rows.append((f"{name} + first event's clients", _num(figures.get("wall_s"), 3, "s"),
                         _num(figures.get("rss_mib"), 1, "MiB")))
        custodian = cold.get("custodian") or {}
        rss = custodian["error"][:60] if custodian.get("error") else _num(custodian.get("rss_mib"), 1, "MiB")
        rows.append(("anchor: Cloud Custodian c7n_gcp.handler", _num(custodian.get("wall_s"), 3, "s"), rss))
        lines += _table(f"Cold start (fresh process, median of {cold.get('runs', '?')})",
                        ("import", "wall", "peak RSS"), rows)
    sweep = results.get("sweep_realistic") or []
    if sweep:
        lines += _table("egress-guard sweep on a realistic estate, as its own process (imports included)",
                        ("connectors", "mode", "seconds", "sweep CPU", "load", "Google's quota floor", "peak RSS",
                         "API calls", "of which writes", "localcloud"),
                        [(_num(r["connectors"]), str(r.get("mode")), _num(r.get("wall_s"), 2, "s"),
                          _num(r.get("cpu_s"), 2, "s"), _num(r.get("load_avg"), 1),
                          _num(r.get("quota_floor_s"), 1, "s") if r.get("quota_writes") else "-",
                          _num(r.get("rss_mib"), 0, "MiB"), _num(r.get("calls")), _num(r.get("writes")),
                          _num(r.get("api_server_s"), 2, "s")) for r in sweep])
        lines.append("Google's quota floor: the run's global writes at Compute's default 1,500 a minute per project "
                     "(docs/minimums.md); localcloud has no quota here, so a run may be below it.")
        missing = (results.get("sweep_setup") or {}).get("not_measured")
        if missing:
            lines.append(f"sweep not measured: {missing}")
    organization = results.get("sweep_organization") or []
    if organization:
        lines += _table("egress-guard sweep --organization --dry-run (3 projects drifted, the rest compliant), as its "
                        "own process", ("projects", "API calls", "argued bound", "search pages", "swept live", "seconds"),
                        [(_num(r["projects"]), _num(r.get("calls")), _num(r.get("calls_bound")),
                          _num(r.get("search_pages")), _num(r.get("live_projects")), _num(r.get("wall_s"), 2, "s"))
                         for r in organization])
    throughput = results.get("throughput") or {}
    if throughput:
        lines += _table("Throughput (one process)", ("path", "per second"), [
            ("irrelevant audit entries rejected (both guardrails)", _num(throughput.get("irrelevant_rejected_per_s"))),
            ("findings rendered as Block Kit", _num(throughput.get("findings_rendered_per_s"))),
        ])
    goals = (results.get("goals") or {}).get("goals") or []
    if goals:
        lines += _table("Goals", ("goal", "target", "value", "verdict"),
                        [(g["goal"], g["target"], _value(g["value"]), _verdict(g["met"])) for g in goals])
    errors = results.get("errors") or {}
    for section, error in errors.items():
        lines.append(f"section {section} failed: {error}")
    return "\n".join(lines).lstrip("\n")


def _ratio(a: Any, b: Any) -> float | None:
    try:
        return float(a) / float(b) if float(b) > 0 else None
    except (TypeError, ValueError):
        return None


def _value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_num(v, 2)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3g}"
    return _num(value)
