"""Cold start as a user feels it: process start -> the first finding published, per function.

For each function and run: a new connector (READY) in its own project is prepared, untimed, with
the audit sink detached; the function's process is stopped, and the clock starts when the new
process is spawned (``Stack.restart_function``). A sender thread posts the delivery (the Pub/Sub push
body, exactly what the push subscription sends: the ``CreateConnector`` entry for the guardrails, a
finding for notify_slack) every ``POLL_S`` until the new process accepts it, as Pub/Sub keeps pushing
until an endpoint answers. The clock stops when the first finding is on the findings topic (the
emulator's ``publish_time``) or, for notify_slack, when the Slack receiver holds the message.

Its floor, measured in the same run: a fresh process importing ``functions_framework`` and
``google.cloud.compute_v1`` (what any Python function that calls Compute pays), plus that event's pure
API time (the server-side durations of the function's calls in localcloud's call log).
notify_slack calls no Google API: its floor is ``functions_framework`` alone. The floor is measured
again just before each run (paired), and ``ratio`` is the median of the runs' own ratios: on a
machine shared with other work, one function's runs spread from 1.8 s to 7.6 s within a minute,
more than the difference being judged, and a floor measured minutes earlier does not share a run's load.
"""

from __future__ import annotations

import base64
import json
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from .cold_start import measure_import
from .harness import LocalStack, one

CONNECTOR_CREATE = "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"
FUNCTIONS = ("ensure_nat", "replace_connector_firewalls", "notify_slack")
FLOORS = {
    "remediation": "import functions_framework\nfrom google.cloud import compute_v1",
    "notify_slack": "import functions_framework",
}
POLL_S = 0.01
TIMEOUT_S = 60.0


def push_body(data: bytes, attributes: Mapping[str, str], subscription: str) -> dict[str, Any]:
    """The JSON a Pub/Sub push subscription POSTs (wrapped message), pure."""
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": dict(attributes),
                        "messageId": str(time.time_ns()), "publishTime": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                     time.gmtime())},
            "subscription": subscription}


def _sender(url: str, body: Mapping[str, Any], stop: threading.Event, sent: list[float]) -> None:
    """Posts ``body`` until the function accepts it (2xx), as Pub/Sub pushes until an endpoint answers."""
    while not stop.is_set():
        try:
            response = requests.post(url, json=body, timeout=TIMEOUT_S)
            if response.status_code < 300:
                sent.append(time.time())
                return
        except requests.RequestException:
            pass
        time.sleep(POLL_S)


def _slack_count(stack: LocalStack) -> int:
    return len(requests.get(stack.slack_url + "/_messages", timeout=10).json())


def one_run(stack: LocalStack, name: str, project: str, finding: Mapping[str, Any] | None) -> dict[str, Any]:
    from localcloud.auditlog.sinks import pubsub_message
    from localcloud.stack import PROJECT, _stop_process_group

    if name == "notify_slack":
        assert finding is not None
        data = json.dumps(finding).encode()
        attributes = {k: str(v) for k, v in (finding.get("attributes") or {}).items()}
        before = _slack_count(stack)
    else:
        stack.profile(None)
        stack.user.connector_on_new_network(project)
        entry = one(stack.fetch_entries(), CONNECTOR_CREATE, project=project, first=True)
        data, attributes = pubsub_message(entry)
        insert_id = str(entry["insertId"])
    body = push_body(data, attributes, f"projects/{PROJECT}/subscriptions/{name}-push")
    _stop_process_group(stack.stack.pid(name), timeout=5.0)
    stack.clear_calls()
    stop, sent = threading.Event(), []
    started = time.time()
    thread = threading.Thread(target=_sender, args=(stack.stack.url(name) + "/", body, stop, sent), daemon=True)
    thread.start()
    try:
        stack.stack.restart_function(name)
        if name == "notify_slack":
            deadline = time.monotonic() + TIMEOUT_S
            while _slack_count(stack) <= before and time.monotonic() < deadline:
                time.sleep(POLL_S)
            done = time.time() if _slack_count(stack) > before else None
            api_ms = 0.0
        else:
            found = stack.findings.wait(insert_id, 1, timeout=TIMEOUT_S)
            done = found[0].published if found else None
            api_ms = sum(float(c.get("duration_ms", 0.0)) for c in stack.calls_by(stack.principals[name]))
    finally:
        stop.set()
        thread.join(timeout=TIMEOUT_S)
    return {"wall_s": None if done is None else round(done - started, 3), "api_s": round(api_ms / 1000, 3)}


def run(stack: LocalStack, runs: int = 3, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """``cold_start.first_event.<function>.{wall_s, floor_s}`` (medians over ``runs``)."""
    stack.detach_sink()
    floors = {}
    for kind, statement in FLOORS.items():
        progress(f"first event: floor {statement!r}")
        floors[kind] = measure_import(statement, runs)
    # Wall time only: a child forked from this process (by now holding the stack's clients) reports the
    # parent's pages in its peak RSS, so the cold_start section, run first, is where RSS is measured.
    result: dict[str, Any] = {"runs": runs, "floors": {k: {"import": FLOORS[k], "wall_s": v["wall_s"]}
                                                       for k, v in floors.items()}}
    finding: Mapping[str, Any] | None = None
    for name in FUNCTIONS:
        progress(f"first event on a cold instance: {name} ({runs} runs)")
        rows = []
        floor_kind = "notify_slack" if name == "notify_slack" else "remediation"
        for index in range(runs):
            paired = measure_import(FLOORS[floor_kind], 1)["wall_s"]  # the same moment's load as the run
            row = one_run(stack, name, f"egb-cold-{name[:8].replace('_', '-')}-{index}", finding)
            row["floor_s"] = round(paired + row["api_s"], 3)
            row["ratio"] = None if row["wall_s"] is None else round(row["wall_s"] / row["floor_s"], 3)
            rows.append(row)
        if name != "notify_slack" and finding is None:
            seen = stack.findings.wait_until(lambda _: True, timeout=0)
            remediated = [f.body for f in seen if f.body.get("outcome") == "remediated"]  # notify posts these
            finding = remediated[-1] if remediated else None
            time.sleep(1.0)  # the findings of these runs reach notify_slack before its own run counts messages
        walls = [r["wall_s"] for r in rows if r["wall_s"] is not None]
        ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
        api = statistics.median(r["api_s"] for r in rows)
        floor_import = floors[floor_kind]["wall_s"]
        result[name] = {
            "wall_s": round(statistics.median(walls), 3) if walls else None,
            "floor_s": round(floor_import + api, 3),
            "floor_import_s": floor_import,
            "api_s": round(api, 3),
            "ratio": round(statistics.median(ratios), 3) if ratios else None,  # median of paired ratios
            "runs": rows,
        }
    return result
