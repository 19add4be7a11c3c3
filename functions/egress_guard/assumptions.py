"""The registry of Google behaviours egress-guard relies on but could not confirm (UNCONFIRMED).

Each is one constant, with why it was chosen and where the gap is recorded (docs/gcp-facts.md).
The code, the test fixtures and localcloud all read the choice from here, so when Google's real
behaviour is learnt there is one line to change and the tests follow it. The trigger methods
whose audit ``methodName`` is unconfirmed are marked ``confirmed=False`` in ``events.TRIGGERS``.
"""

from __future__ import annotations

# resource.type of Serverless VPC Access audit entries (docs/gcp-facts.md §3.2: "vpcaccess entry
# shape (resource.type, request/response body): UNCONFIRMED, no sample found"). Chosen: the
# monitored-resource type Cloud Monitoring has for connectors, as Cloud Run (cloud_run_revision)
# and Compute (gce_router, gce_firewall_rule) use their own types in their audit entries.
# localcloud's audit entries use it; egress-guard's parser accepts any type.
VPCACCESS_RESOURCE_TYPE = "vpc_access_connector"

# resource.type of Cloud Run job audit entries (docs/gcp-facts.md §3.2: ``cloud_run_job``?).
RUN_JOB_RESOURCE_TYPE = "cloud_run_job"

# Whether VPC Access and Cloud Run v2 write an ``operation.last`` entry after the
# ``operation.first`` one (docs/gcp-facts.md §3.3). Unknown, so every entry of a long-running
# create is handled alike and the first must be enough: each guardrail re-reads the resource and
# acts on what it needs as soon as that is known, which for both is the create call. Cloud Run's
# template, a connector's network and subnet or range, and a connector's network tag
# (``vpc-connector-REGION-NAME``, from its name) exist from the create call on, so ensure_nat adds
# the NAT and replace_connector_firewalls adds the managed rules while the connector is CREATING,
# before its VMs run: nothing waits for READY, nor for Pub/Sub's redelivery backoff (10 s to 600 s).
# Only disabling the broad ``aet-*`` rules (``auto_rules: disable``) needs them to exist; their own
# Compute insert entries (``operation.last`` confirmed for Compute) bring that. A later entry of the
# same change finds the work done (compliant, same finding id: notify_slack posts it once).
WAITS_FOR_LAST_ENTRY = False

# How many connectors' firewall rules ``egress-guard sweep`` writes at once in enforce mode. Each
# connector's rules are its own (no two connectors write one rule), and a sweep of 5,000 connectors
# without managed rules makes 10,000 inserts, each waited for: one at a time, that is Google's
# operation latency 10,000 times over. How many writes Google serves at once without slowing each
# is not published (UNCONFIRMED). Its rate quota is: firewall writes are global mutations, 1,500 a
# minute per project by default (docs/gcp-facts.md §14); a write refused with 403
# rateLimitExceeded waits for the next minute with every other writer of the project
# (``api.RateQuotaWait``), so eight writers cost at most eight refused requests a minute.
SWEEP_FIREWALL_WRITERS = 8

# Cloud Asset Inventory (``egress-guard sweep --organization``, docs/gcp-facts.md §17). The version of
# each asset type's ``versionedResources`` that the sweep parses as that API's own JSON: Google
# documents that the field holds "the JSON representation of the resource as defined by the
# corresponding service" with its API version, but not which version each of these types carries
# (UNCONFIRMED for every one but Compute's v1, which the field's own example names). A result in
# another version is never guessed at: its project is swept live, as ``sweep --project`` does, so
# a wrong entry here costs calls, not decisions.
ASSET_RESOURCE_VERSIONS = {
    "vpcaccess.googleapis.com/Connector": "v1",
    "compute.googleapis.com/Subnetwork": "v1",
    "compute.googleapis.com/Router": "v1",
    "compute.googleapis.com/Firewall": "v1",
    "run.googleapis.com/Service": "v2",
    "run.googleapis.com/Job": "v2",
    "cloudfunctions.googleapis.com/Function": "v2",
    "appengine.googleapis.com/Version": "v1",
}
# Whether a 2nd gen Cloud Functions deploy also writes a ``run.googleapis.com`` audit entry for the
# function's underlying Cloud Run service (docs/gcp-facts.md §12.3: UNCONFIRMED; Google says only that
# its service agent performs administrative actions during the deploy, and no sample was found).
# Chosen: no. The Functions entry (confirmed) is what ensure_nat acts on; a Cloud Run entry for a
# service labelled ``goog-managed-by: cloudfunctions`` is acknowledged without acting whatever this
# says, so if Google does write one nothing is decided twice. localcloud follows the choice (it writes
# no such entry); tests/contract/test_functions_guardrail.py covers the other case with a labelled service.
FUNCTIONS_V2_WRITE_RUN_ENTRY = False
# The label Cloud Functions puts on a 2nd gen function's Cloud Run service ([3P], docs/gcp-facts.md §12.3).
FUNCTIONS_MANAGED_LABEL = ("goog-managed-by", "cloudfunctions")

# Cloud Run v1 job methodNames: not in Google's audit catalog; CreateJob was seen only in an API
# ErrorInfo, ReplaceJob is inferred from the Services naming (docs/gcp-facts.md §3.1). events.TRIGGERS
# marks exactly these ``confirmed=False``.
RUN_V1_JOB_METHODS = ("google.cloud.run.v1.Jobs.CreateJob", "google.cloud.run.v1.Jobs.ReplaceJob")

# The shapes of the resourceName and operation of the entries without a real sample (docs/gcp-facts.md
# §3.2, §3.3): what events.py parses and localcloud writes.
VPCACCESS_RESOURCE_NAME = r"projects/[^/]+/locations/[^/]+/connectors/[^/]+"
RUN_V2_RESOURCE_NAME = r"projects/[^/]+/locations/[^/]+/(services|jobs)/[^/]+"
RUN_V1_JOB_RESOURCE_NAME = r"namespaces/[^/]+/jobs/[^/]+"
# Long-running VPC Access and Cloud Run v2 writes log an ``operation`` whose producer is the service.
OPERATION_PRODUCER_IS_SERVICE = True


# ---- the registry ------------------------------------------------------------------------------
# Every constant above as one record, so that ``egress-guard doctor`` (which judges them against the
# user's own audit log) and docs/gcp-facts.md §8.9 read the same list (tests/unit/test_assumptions.py
# checks the doc). A judge looks at one audit LogEntry (a dict, as entries.list returns it) and says
# True (this entry confirms it), False (refutes it) or None (this entry says nothing about it).

import re as _re  # noqa: E402  (kept below the constants, which are the point of this module)
from collections.abc import Callable as _Callable  # noqa: E402
from dataclasses import dataclass as _dataclass  # noqa: E402
from typing import Any as _Any  # noqa: E402

_VPCACCESS_SERVICE = "vpcaccess.googleapis.com"
_RUN_SERVICE = "run.googleapis.com"


@_dataclass(frozen=True)
class Assumption:
    """One UNCONFIRMED Google behaviour: the constant that holds the choice and how to judge it."""

    key: str
    constant: str  # the name in this module
    value: _Any
    claim: str  # what egress-guard assumes, in one sentence
    doc: str  # where the gap is recorded
    judge: _Callable[[dict[str, _Any]], bool | None]


def _payload(entry: dict[str, _Any]) -> dict[str, _Any]:
    payload = entry.get("protoPayload")
    return payload if isinstance(payload, dict) else {}


def _method(entry: dict[str, _Any]) -> str:
    return str(_payload(entry).get("methodName", ""))


def _service(entry: dict[str, _Any]) -> str:
    return str(_payload(entry).get("serviceName", ""))


def _is_run_job(entry: dict[str, _Any]) -> bool:
    return _service(entry) == _RUN_SERVICE and ".Jobs." in _method(entry)


def _long_running(entry: dict[str, _Any]) -> bool:
    """A VPC Access or Cloud Run v2 write: the calls that answer with a google.longrunning.Operation."""
    return _service(entry) == _VPCACCESS_SERVICE or (_service(entry) == _RUN_SERVICE and ".v2." in _method(entry))


def _when(condition: bool, verdict: bool) -> bool | None:
    return verdict if condition else None


def _resource_type_is(value: str, applies: _Callable[[dict[str, _Any]], bool]) -> _Callable[[dict[str, _Any]], bool | None]:
    def judge(entry: dict[str, _Any]) -> bool | None:
        return _when(applies(entry), (entry.get("resource") or {}).get("type") == value)
    return judge


def _resource_name_matches(pattern: str, applies: _Callable[[dict[str, _Any]], bool]) -> _Callable[[dict[str, _Any]], bool | None]:
    compiled = _re.compile(pattern)

    def judge(entry: dict[str, _Any]) -> bool | None:
        return _when(applies(entry), bool(compiled.fullmatch(str(_payload(entry).get("resourceName", "")))))
    return judge


def _method_is_one_of(methods: tuple[str, ...]) -> _Callable[[dict[str, _Any]], bool | None]:
    # Entries are read by methodName, so one of these can confirm the name; none can refute it.
    return lambda entry: True if _method(entry) in methods else None


def _writes_operation_first(entry: dict[str, _Any]) -> bool | None:
    if not _long_running(entry):
        return None
    operation = entry.get("operation")
    if not isinstance(operation, dict):
        return False  # a long-running write logged without any operation: the first/last pairing is not there
    return True if operation.get("first") else None  # a last-only entry neither confirms nor refutes


def _operation_producer(entry: dict[str, _Any]) -> bool | None:
    operation = entry.get("operation")
    if not _long_running(entry) or not isinstance(operation, dict) or "producer" not in operation:
        return None
    return operation.get("producer") == _service(entry)


def _labels_of(value: _Any) -> dict[str, _Any]:
    """Every ``labels`` map in a request or response body (Cloud Run v1 metadata, v2 top level)."""
    found: dict[str, _Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "labels" and isinstance(item, dict):
                found.update(item)
            else:
                found.update(_labels_of(item))
    elif isinstance(value, list):
        for item in value:
            found.update(_labels_of(item))
    return found


def _function_service_entry(entry: dict[str, _Any]) -> bool | None:
    # A Cloud Run entry for a function's own service shows that Google writes one: the claim "no" is
    # refuted. Its absence proves nothing (the window may hold no deploy), so nothing confirms it.
    if _service(entry) != _RUN_SERVICE:
        return None
    key, value = FUNCTIONS_MANAGED_LABEL
    payload = _payload(entry)
    labels = {**_labels_of(payload.get("request")), **_labels_of(payload.get("response"))}
    return False if labels.get(key) == value else None


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption("vpcaccess_resource_type", "VPCACCESS_RESOURCE_TYPE", VPCACCESS_RESOURCE_TYPE,
               f"connector audit entries have resource.type {VPCACCESS_RESOURCE_TYPE!r}", "docs/gcp-facts.md §3.2",
               _resource_type_is(VPCACCESS_RESOURCE_TYPE, lambda e: _service(e) == _VPCACCESS_SERVICE)),
    Assumption("run_job_resource_type", "RUN_JOB_RESOURCE_TYPE", RUN_JOB_RESOURCE_TYPE,
               f"Cloud Run job audit entries have resource.type {RUN_JOB_RESOURCE_TYPE!r}", "docs/gcp-facts.md §3.2",
               _resource_type_is(RUN_JOB_RESOURCE_TYPE, _is_run_job)),
    Assumption("first_entry_is_enough", "WAITS_FOR_LAST_ENTRY", WAITS_FOR_LAST_ENTRY,
               "VPC Access and Cloud Run v2 writes log an operation.first entry, which the guardrails act on",
               "docs/gcp-facts.md §3.3", _writes_operation_first),
    Assumption("operation_producer", "OPERATION_PRODUCER_IS_SERVICE", OPERATION_PRODUCER_IS_SERVICE,
               "the operation.producer of VPC Access and Cloud Run v2 entries is the service name",
               "docs/gcp-facts.md §3.3", _operation_producer),
    Assumption("run_v1_job_methods", "RUN_V1_JOB_METHODS", RUN_V1_JOB_METHODS,
               "Cloud Run v1 job writes are logged as google.cloud.run.v1.Jobs.CreateJob / ReplaceJob",
               "docs/gcp-facts.md §3.1", _method_is_one_of(RUN_V1_JOB_METHODS)),
    Assumption("vpcaccess_resource_name", "VPCACCESS_RESOURCE_NAME", VPCACCESS_RESOURCE_NAME,
               "connector entries name projects/P/locations/R/connectors/C", "docs/gcp-facts.md §3.2",
               _resource_name_matches(VPCACCESS_RESOURCE_NAME, lambda e: _service(e) == _VPCACCESS_SERVICE)),
    Assumption("run_v2_resource_name", "RUN_V2_RESOURCE_NAME", RUN_V2_RESOURCE_NAME,
               "Cloud Run v2 entries name projects/P/locations/R/services/S (jobs/J)", "docs/gcp-facts.md §3.2",
               _resource_name_matches(RUN_V2_RESOURCE_NAME, lambda e: _service(e) == _RUN_SERVICE and ".v2." in _method(e))),
    Assumption("run_v1_job_resource_name", "RUN_V1_JOB_RESOURCE_NAME", RUN_V1_JOB_RESOURCE_NAME,
               "Cloud Run v1 job entries name namespaces/P/jobs/J", "docs/gcp-facts.md §3.2",
               _resource_name_matches(RUN_V1_JOB_RESOURCE_NAME, lambda e: _is_run_job(e) and ".v1." in _method(e))),
    Assumption("functions_write_no_run_entry", "FUNCTIONS_V2_WRITE_RUN_ENTRY", FUNCTIONS_V2_WRITE_RUN_ENTRY,
               "a 2nd gen function deploy writes no Cloud Run entry for the function's own service",
               "docs/gcp-facts.md §12.3", _function_service_entry),
)
