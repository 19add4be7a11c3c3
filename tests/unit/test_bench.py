"""make bench's pure parts: percentiles, pure API latency, minimums, goals, the table. Never how fast."""

from __future__ import annotations

from bench import api_calls, e2e, goals, report, sweep, throughput


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert e2e.percentile([10, 20, 30, 40], 50) == 25
    assert e2e.percentile([5.0], 95) == 5.0
    assert e2e.percentile(list(range(1, 101)), 95) == 95.05


def test_pure_api_latency_is_the_slower_guardrail_and_the_model_overlaps_waits_with_operations() -> None:
    calls = {
        "ensure_nat": [{"method_id": "compute.routers.list", "duration_ms": 150},
                       {"method_id": "compute.routers.insert", "duration_ms": 150},
                       {"method_id": "compute.regionOperations.wait", "duration_ms": 1990}],
        "replace_connector_firewalls": [{"method_id": "compute.firewalls.list", "duration_ms": 150}],
    }
    assert e2e.pure_api_ms(calls) == 2290
    assert e2e.model_api_ms(calls, latency_ms=150, operation_ms=2000) == 2300


def test_every_bench_scenario_names_rows_of_the_contract_minimum_table() -> None:
    table = api_calls.contract_minimum()
    for scenario in api_calls.SCENARIOS:
        assert scenario.reason and set(scenario.contract_rows) <= set(table), scenario.name
    without_nat = next(s for s in api_calls.SCENARIOS if s.name == "new connector without NAT")
    minimum = api_calls.minimum_of(without_nat, table)
    assert minimum["compute.routers.insert"] == 1 and minimum["compute.firewalls.insert"] == 2
    assert minimum["vpcaccess.projects.locations.connectors.get"] == 2  # each guardrail re-reads it


def test_api_call_counting_groups_by_method() -> None:
    calls = [{"method_id": "b"}, {"method_id": "a"}, {"method_id": "b"}]
    assert api_calls.count_by_method(calls) == {"a": 1, "b": 2}


def _results(**overrides):
    results = {
        "cold_start": {"runs": 5, "notify_slack": {"wall_s": 0.2, "rss_mib": 37.0},
                       "ensure_nat": {"wall_s": 0.2, "rss_mib": 35.0},
                       "replace_connector_firewalls": {"wall_s": 1.7, "rss_mib": 160.0},
                       "floors": {"compute_v1": {"wall_s": 1.5, "rss_mib": 148.0}},
                       "custodian": {"wall_s": 0.5, "rss_mib": 87.0}},
        "api_calls": {"a": {"used": 3, "minimum": 3}, "b": {"used": 5, "minimum": 4}},
        "e2e": {"overhead_ratio": 0.02},
        "sweep": [{"connectors": 1000, "calls": 40, "seconds": 6.0}, {"connectors": 5000, "calls": 100, "seconds": 30}],
    }
    results.update(overrides)
    return results


def test_goals_are_judged_on_ratios_of_this_run() -> None:
    verdicts = {g["goal"]: g for g in goals.evaluate(_results())["goals"]}
    assert verdicts["notify_slack cold import vs Cloud Custodian's handler"]["met"] is True
    assert verdicts["ensure_nat cold import vs the compute_v1 floor"]["met"] is True
    assert verdicts["replace_connector_firewalls cold import vs the compute_v1 floor"]["met"] is False  # 1.13 x
    assert verdicts["API calls equal the minimum in every scenario"]["met"] is False
    assert verdicts["egress-guard's overhead under the realistic profile"]["met"] is True
    flat = verdicts["sweep calls flat per resource (grow with regions and pages, not connectors)"]
    assert flat["value"] == 0.015 and flat["met"] is True
    assert verdicts["sweep of 1,000 connectors"]["met"] is False


def test_a_missing_figure_is_not_measured_never_met() -> None:
    verdicts = goals.evaluate({"cold_start": {"notify_slack": {"wall_s": 0.2, "rss_mib": 37},
                                              "custodian": {"error": "no network"}}})["goals"]
    assert all(g["met"] is None for g in verdicts)


def test_the_table_renders_full_and_partial_results() -> None:
    results = _results()
    results["goals"] = goals.evaluate(results)
    text = report.render(results)
    assert "MISSED" in text and "sweep of 1,000 connectors" in text
    assert report.render({"errors": {"e2e": "RuntimeError: boom"}}).endswith("section e2e failed: RuntimeError: boom")


def test_sweep_seed_ranges_never_overlap() -> None:
    ranges = {sweep.subnet_range(i) for i in range(5000)}
    assert len(ranges) == 5000 and all(r.endswith("/28") for r in ranges)


def test_irrelevant_entries_are_rejected_without_a_finding() -> None:
    figures = throughput.rejected_per_second(min_seconds=0.0)
    assert figures["entries_per_s"] > 0 and len(figures["mix"]) == 5
