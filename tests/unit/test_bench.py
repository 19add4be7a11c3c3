"""make bench's pure parts: percentiles, pure API latency, minimums, goals, the table. Never how fast."""

from __future__ import annotations

from bench import api_calls, deployment, e2e, first_event, goals, real_path, report, sweep, throughput


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
                       "custodian": {"wall_s": 0.5, "rss_mib": 87.0},
                       "first_event": {"ensure_nat": {"wall_s": 1.5, "floor_s": 1.4},
                                       "replace_connector_firewalls": {"wall_s": 1.7, "floor_s": 1.4}}},
        "api_calls": {"a": {"used": 3, "argued": 3}, "b": {"used": 5, "argued": 4},
                      "duplicate delivery (12 deliveries)": {"used": 78, "argued": 12},
                      "drift: NAT removed, 1 connectors": {"used": 5, "argued": 5},
                      "drift: NAT removed, 100 connectors": {"used": 401, "argued": 5}},
        "e2e": {"overhead_ratio": 0.02, "real_path": {"ready_to_remediated_p95_ms": 4000.0,
                                                      "redelivery": {"minimum_backoff_s": 10.0}}},
        "sweep_realistic": [{"connectors": 1000, "mode": "dry-run", "wall_s": 1.5, "rss_mib": 120, "calls": 40},
                            {"connectors": 10000, "mode": "dry-run", "wall_s": 20.0, "rss_mib": 310, "calls": 100},
                            {"connectors": 10000, "mode": "enforce", "wall_s": 90.0, "rss_mib": 250, "calls": 20000,
                             "writes": 10200, "quota_writes": 10000, "quota_floor_s": 400.0}],
    }
    results.update(overrides)
    return results


def test_goals_are_judged_on_ratios_of_this_run() -> None:
    verdicts = {g["goal"]: g for g in goals.evaluate(_results())["goals"]}
    assert verdicts["notify_slack cold import vs Cloud Custodian's handler"]["met"] is True
    assert verdicts["ensure_nat: first event on a cold instance vs its floor"]["met"] is True  # 1.07 x
    assert verdicts["replace_connector_firewalls: first event on a cold instance vs its floor"]["met"] is False
    assert verdicts["API calls at or below the argued minimum, every scenario"]["met"] is False
    assert verdicts["duplicates: 12 deliveries of one change, both guardrails"]["met"] is False
    drift = verdicts["drift in a region flat in the number of connectors"]
    assert drift["value"] == 396 and drift["met"] is False
    assert verdicts["egress-guard's overhead under the realistic profile"]["met"] is True
    assert verdicts["real path: READY -> remediated does not wait for Pub/Sub's backoff (realistic profile)"]["met"]
    assert verdicts["sweep of 1,000 connectors (dry-run, the process)"]["met"] is True
    assert verdicts["sweep of 10,000 connectors (dry-run, the process)"]["met"] is False
    assert verdicts["sweep linear (dry-run): 10,000 / 1,000 connectors"]["value"] == 13.333
    assert verdicts["sweep peak RSS at 10,000 connectors (dry-run)"]["met"] is False
    flat = verdicts["sweep reads grow with pages only (dry-run)"]
    assert flat["value"] == 0.0067 and flat["met"] is True
    assert verdicts["sweep of 1,000 connectors (enforce, the process)"]["met"] is None  # not measured
    # Beside the enforce figure: Google's floor for its writes at 1,500 a minute (docs/minimums.md).
    assert verdicts["sweep of 10,000 connectors (enforce, the process)"]["quota_floor_s"] == 400.0


def test_a_missing_figure_is_not_measured_never_met() -> None:
    verdicts = goals.evaluate({"cold_start": {"notify_slack": {"wall_s": 0.2, "rss_mib": 37},
                                              "custodian": {"error": "no network"}}})["goals"]
    assert all(g["met"] is None for g in verdicts)


def test_the_table_renders_full_and_partial_results() -> None:
    results = _results()
    results["goals"] = goals.evaluate(results)
    text = report.render(results)
    assert "MISSED" in text and "sweep of 1,000 connectors (dry-run, the process)" in text and "ABOVE" in text
    assert "Google's quota floor" in text and "400.0 s" in text
    assert report.render({"errors": {"e2e": "RuntimeError: boom"}}).endswith("section e2e failed: RuntimeError: boom")


def test_the_deployments_backoff_is_read_from_infra() -> None:
    redelivery = deployment.read()
    # infra/ sets RETRY_POLICY_RETRY and no subscription backoff: Eventarc's documented default.
    assert redelivery.retries and (redelivery.minimum_backoff_s, redelivery.maximum_backoff_s) == (10.0, 600.0)
    assert redelivery.max_delivery_attempts == 10


def test_an_explicit_subscription_backoff_in_infra_wins(tmp_path) -> None:
    (tmp_path / "main.tf").write_text('event_trigger {\n  retry_policy = "RETRY_POLICY_RETRY"\n}\n')
    (tmp_path / "sub.tf").write_text('resource "google_pubsub_subscription" "s" {\n  retry_policy {\n'
                                     '    minimum_backoff = "5s"\n    maximum_backoff = "60s"\n  }\n}\n')
    redelivery = deployment.read(tmp_path)
    assert (redelivery.minimum_backoff_s, redelivery.maximum_backoff_s) == (5.0, 60.0)
    (tmp_path / "main.tf").write_text('retry_policy = "RETRY_POLICY_DO_NOT_RETRY"\n')
    assert deployment.read(tmp_path).retries is False


def test_real_path_counts_one_delivery_per_outcome_line_and_settles_on_a_non_retry() -> None:
    lines = [
        {"insert_id": "a", "logging.googleapis.com/labels": {"outcome": "retry"}},
        {"trigger": {"insertId": "a"}, "logging.googleapis.com/labels": {"outcome": "remediated"}},
        {"insert_id": "b", "logging.googleapis.com/labels": {"outcome": "acknowledged"}},
        {"insert_id": "a", "message": "Exception on / [POST]"},  # the framework's own line: not a delivery
        {"insert_id": "c", "logging.googleapis.com/labels": {"outcome": "retry"}},
    ]
    assert len(real_path.delivery_lines(lines, {"a", "b"})) == 3
    assert real_path.settled(lines, "a") and real_path.settled(lines, "b") and not real_path.settled(lines, "c")


def test_first_event_posts_what_a_push_subscription_posts() -> None:
    import base64

    body = first_event.push_body(b'{"x": 1}', {"k": "v"}, "projects/p/subscriptions/s")
    assert base64.b64decode(body["message"]["data"]) == b'{"x": 1}' and body["message"]["attributes"] == {"k": "v"}
    assert body["subscription"] == "projects/p/subscriptions/s"


def test_sweep_seed_ranges_never_overlap() -> None:
    ranges = {sweep.subnet_range(i) for i in range(20000)}  # connectors' and Direct VPC subnets at 10,000
    assert len(ranges) == 20000 and all(r.endswith("/28") for r in ranges)


def test_irrelevant_entries_are_rejected_without_a_finding() -> None:
    figures = throughput.rejected_per_second(min_seconds=0.0)
    assert figures["entries_per_s"] > 0 and len(figures["mix"]) == 5
