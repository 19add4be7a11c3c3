"""localcloud.auditlog.filter: the Cloud Logging query language subset that sink filters use.

Entries are the real public samples in reference/audit-samples, or copies of them with
a few fields changed (so they keep the real LogEntry shape)."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localcloud.auditlog.filter import FilterSyntaxError, parse
from tests.paths import AUDIT_SAMPLES

SAMPLES = AUDIT_SAMPLES


def _load_entries() -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(SAMPLES.glob("*.json*")):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        for index, line in enumerate(l for l in lines if l.strip()):
            doc = json.loads(line)
            if isinstance(doc.get("data"), dict) and "logName" in doc["data"]:
                doc = doc["data"]  # an Eventarc CloudEvent: data is the LogEntry
            if "logName" in doc:
                entries[f"{path.name}#{index}"] = doc
    return entries


ENTRIES = _load_entries()
FIREWALL_INSERT = ENTRIES["audit-logentry-compute-v1-firewalls-insert.unidentified-public-repo.json#0"]
INSTANCE_INSERT_FIRST = ENTRIES[
    "audit-logentry-compute-v1-instances-insert-operation-first.elastic-integrations.json#0"]
RUN_REPLACE_OK = ENTRIES["audit-logentry-run-v1-ReplaceService-success.cloud-run-slack-bot.json#0"]
RUN_REPLACE_CONFLICT = ENTRIES["audit-logentry-run-v1-ReplaceService-failure-conflict.cloud-run-slack-bot.json#0"]
PUBSUB_CREATE_TOPIC = ENTRIES["audit-logentry-pubsub-CreateTopic.google-cloudevents.json#0"]
IMAGES_INSERT_FIRST, INSTANCES_STOP_LAST = (
    ENTRIES["audit-logentries-compute-operation-first-and-last.elastic-integrations.jsonl#0"],
    ENTRIES["audit-logentries-compute-operation-first-and-last.elastic-integrations.jsonl#1"],
)


def like(sample: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``sample`` with dotted paths set (``protoPayload__methodName=...``)."""
    entry = copy.deepcopy(sample)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = entry
        for key in parents:
            node = node.setdefault(key, {})
        if value is _DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return entry


_DELETE = object()

SINK_FILTER = """\
logName:"cloudaudit.googleapis.com%2Factivity"
protoPayload.methodName=("google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector" OR "google.cloud.run.v1.Jobs.CreateJob" OR "v1.compute.routers.patch")
NOT protoPayload.authenticationInfo.principalEmail=("eg-ensure-nat@p.iam.gserviceaccount.com" OR "eg-fw@p.iam.gserviceaccount.com")
"""


def matches(text: str, entry: dict[str, Any]) -> bool:
    return parse(text).matches(entry)


# --- the realistic sink filter --------------------------------------------------------------


def test_sink_filter_keeps_its_text_and_reads_as_three_anded_restrictions():
    sink = parse(SINK_FILTER)
    assert sink.text == SINK_FILTER
    assert sink.canonical == (
        'logName : "cloudaudit.googleapis.com%2Factivity" AND protoPayload.methodName = ('
        '"google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector" OR "google.cloud.run.v1.Jobs.CreateJob"'
        ' OR "v1.compute.routers.patch") AND NOT protoPayload.authenticationInfo.principalEmail = ('
        '"eg-ensure-nat@p.iam.gserviceaccount.com" OR "eg-fw@p.iam.gserviceaccount.com")')


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_sink_filter_ignores_every_reference_sample(name):
    # None of the real samples is one of the three methods: the filter must let them all pass by.
    assert parse(SINK_FILTER).matches(ENTRIES[name]) is False


@pytest.mark.parametrize("method", [
    "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector",
    "google.cloud.run.v1.Jobs.CreateJob",
    "v1.compute.routers.patch",
])
def test_sink_filter_matches_each_trigger_method_in_a_real_entry_shape(method):
    entry = like(FIREWALL_INSERT, protoPayload__methodName=method)
    assert parse(SINK_FILTER).matches(entry)


def test_sink_filter_matches_exactly_the_trigger_methods_of_the_audit_catalog():
    catalog = json.loads((SAMPLES / "audit-service-catalog-subset.google-cloudevents.json").read_text())
    wanted = {"google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector", "google.cloud.run.v1.Jobs.CreateJob",
              "v1.compute.routers.patch"}
    sink = parse(SINK_FILTER)
    seen = set()
    for service in catalog["services"]:
        for method in service["methods"]:
            name = method["methodName"]
            entry = like(RUN_REPLACE_OK, protoPayload__methodName=name,
                         protoPayload__serviceName=service["serviceName"])
            if sink.matches(entry):
                seen.add(name)
    assert seen == wanted & {m["methodName"] for s in catalog["services"] for m in s["methods"]}
    assert "v1.compute.routers.patch" in seen


@pytest.mark.parametrize("principal", ["eg-ensure-nat@p.iam.gserviceaccount.com", "EG-FW@p.iam.gserviceaccount.com"])
def test_sink_filter_excludes_egress_guards_own_writes(principal):
    entry = like(FIREWALL_INSERT, protoPayload__methodName="v1.compute.routers.patch",
                 protoPayload__authenticationInfo__principalEmail=principal)
    assert not parse(SINK_FILTER).matches(entry)


def test_sink_filter_keeps_entries_without_a_principal():
    # NOT on a missing field is true: an entry with no principal is not one of ours.
    entry = like(FIREWALL_INSERT, protoPayload__methodName="v1.compute.routers.patch",
                 protoPayload__authenticationInfo=_DELETE)
    assert parse(SINK_FILTER).matches(entry)


def test_sink_filter_only_takes_admin_activity_logs():
    data_access = like(FIREWALL_INSERT, protoPayload__methodName="v1.compute.routers.patch",
                       logName="projects/scc-log-pubsub/logs/cloudaudit.googleapis.com%2Fdata_access")
    assert not parse(SINK_FILTER).matches(data_access)
    lower_escape = like(data_access, logName="projects/p/logs/cloudaudit.googleapis.com%2factivity")
    assert parse(SINK_FILTER).matches(lower_escape)  # ':' ignores case, like every string comparison


def test_design_trigger_filter_with_status_and_operation_restrictions():
    text = """
    -- remediation triggers (docs/design.md §1)
    logName:"cloudaudit.googleapis.com%2Factivity"
    protoPayload.serviceName=("run.googleapis.com" OR "compute.googleapis.com")
    protoPayload.methodName:("ReplaceService" OR "firewalls.insert")  -- substrings
    NOT protoPayload.status.code>0
    """
    assert matches(text, RUN_REPLACE_OK)
    assert not matches(text, RUN_REPLACE_CONFLICT)  # status.code 10
    assert matches(text, FIREWALL_INSERT)
    assert not matches(text, INSTANCE_INSERT_FIRST)


# --- precedence ---------------------------------------------------------------------------


def _bools(**values: bool) -> dict[str, Any]:
    return {"logName": "projects/p/logs/x", "jsonPayload": values}


def test_precedence_matches_googles_worked_example():
    # Google: "a" OR NOT "b" AND NOT "c" OR "d"  ==  ("a" OR (NOT "b")) AND ((NOT "c") OR "d")
    text = "jsonPayload.a=true OR NOT jsonPayload.b=true AND NOT jsonPayload.c=true OR jsonPayload.d=true"
    compiled = parse(text)
    assert compiled.canonical == ("(jsonPayload.a = \"true\" OR NOT jsonPayload.b = \"true\") AND "
                                  "(NOT jsonPayload.c = \"true\" OR jsonPayload.d = \"true\")")
    for a, b, c, d in itertools.product([False, True], repeat=4):
        assert compiled.matches(_bools(a=a, b=b, c=c, d=d)) == ((a or not b) and (not c or d))


@pytest.mark.parametrize("text, expected", [
    # implicit AND binds looser than OR, on one line or across lines
    ("jsonPayload.a=true jsonPayload.b=true OR jsonPayload.c=true", lambda a, b, c: a and (b or c)),
    ("jsonPayload.a=true OR jsonPayload.b=true jsonPayload.c=true", lambda a, b, c: (a or b) and c),
    ("jsonPayload.a=true\nOR jsonPayload.b=true\njsonPayload.c=true", lambda a, b, c: (a or b) and c),
    ("jsonPayload.a=true AND jsonPayload.b=true OR jsonPayload.c=true", lambda a, b, c: a and (b or c)),
    ("(jsonPayload.a=true AND jsonPayload.b=true) OR jsonPayload.c=true", lambda a, b, c: (a and b) or c),
    ("-jsonPayload.a=true OR jsonPayload.b=true", lambda a, b, c: (not a) or b),
    ("NOT (jsonPayload.a=true OR jsonPayload.b=true) jsonPayload.c=true", lambda a, b, c: not (a or b) and c),
    ("NOT NOT jsonPayload.a=true", lambda a, b, c: a),
])
def test_precedence_of_implicit_and_explicit_operators(text, expected):
    compiled = parse(text)
    for a, b, c in itertools.product([False, True], repeat=3):
        assert compiled.matches(_bools(a=a, b=b, c=c)) == expected(a, b, c), (a, b, c)


def test_value_groups_apply_field_and_operator_to_each_value():
    entry = {"logName": "l", "textPayload": "The unicorn met a phoenix"}
    assert matches('textPayload:("unicorn" AND "phoenix")', entry)
    assert matches("textPayload:(unicorn phoenix)", entry)  # implicit AND inside the group
    assert not matches('textPayload:("unicorn" AND NOT "phoenix")', entry)
    assert matches('textPayload:("dragon" OR ("unicorn" "met"))', entry)
    assert not matches('textPayload:(dragon OR griffin)', entry)


# --- comparisons on strings -----------------------------------------------------------------


def test_equality_and_substring_ignore_case():
    assert matches('protoPayload.methodName="V1.COMPUTE.FIREWALLS.INSERT"', FIREWALL_INSERT)
    assert matches("resource.type=gce_firewall_rule", FIREWALL_INSERT)  # unquoted text
    assert matches('protoPayload.requestMetadata.callerSuppliedUserAgent:"GCLOUD.COMPUTE.firewall-rules"',
                   FIREWALL_INSERT)
    assert not matches('protoPayload.methodName="firewalls.insert"', FIREWALL_INSERT)  # '=' is whole-value
    assert matches('protoPayload.methodName!="v1.compute.firewalls.delete"', FIREWALL_INSERT)


def test_string_comparison_uses_unicode_case_folding():
    entry = {"logName": "l", "jsonPayload": {"name": "Straße ﬁle"}}
    assert matches('jsonPayload.name="STRASSE FILE"', entry)
    assert matches('jsonPayload.name:"sse fi"', entry)


def test_string_ordering_is_case_insensitive_and_lexicographic():
    entry = {"logName": "l", "jsonPayload": {"zone": "europe-west2-a"}}
    assert matches('jsonPayload.zone > "EUROPE-WEST1"', entry)
    assert matches('jsonPayload.zone <= "europe-west2-A"', entry)
    assert not matches('jsonPayload.zone < "europe"', entry)


def test_quoted_strings_decode_escapes():
    entry = {"logName": "l", "textPayload": 'say "hi"\tnow \\ done'}
    assert matches(r'textPayload="say \"hi\"\tnow \\ done"', entry)
    assert matches(r'textPayload:"\x22hi\u0022"', entry)


def test_has_on_an_object_searches_every_value_inside_it():
    assert matches('protoPayload.request:"firewall-rule-01"', FIREWALL_INSERT)
    assert matches('protoPayload.request:"TCP"', FIREWALL_INSERT)  # alloweds[0].IPProtocol
    assert not matches('protoPayload.request:"udp"', FIREWALL_INSERT)
    assert not matches('protoPayload.request="firewall-rule-01"', FIREWALL_INSERT)


# --- regular expressions ----------------------------------------------------------------------


def test_regex_is_case_sensitive_and_unanchored():
    assert matches(r'protoPayload.methodName=~"compute\.firewalls\.(insert|patch)"', FIREWALL_INSERT)
    assert not matches(r'protoPayload.methodName=~"COMPUTE"', FIREWALL_INSERT)
    assert matches(r'protoPayload.methodName=~"(?i)COMPUTE"', FIREWALL_INSERT)
    assert matches(r'logName=~"%2Factivity$"', FIREWALL_INSERT)
    assert matches(r'logName=~"%2Factivity\z"', FIREWALL_INSERT)  # RE2's end of text
    assert not matches(r'protoPayload.methodName=~"^compute"', FIREWALL_INSERT)


def test_negated_regex_and_regex_groups():
    assert matches(r'protoPayload.methodName!~"routers"', FIREWALL_INSERT)
    assert not matches(r'protoPayload.methodName!~"firewalls"', FIREWALL_INSERT)
    assert matches(r'protoPayload.methodName=~("routers" OR "^v1\.compute\.firewalls")', FIREWALL_INSERT)
    assert matches(r'protoPayload.resourceName=~"^namespaces/[^/]+/services/"', RUN_REPLACE_OK)


def test_regex_matches_only_strings_and_fails_on_missing_fields():
    assert not matches(r'protoPayload.status.code=~"10"', RUN_REPLACE_CONFLICT)  # a number
    assert not matches(r'jsonPayload.missing=~"x"', RUN_REPLACE_OK)
    assert not matches(r'jsonPayload.missing!~"x"', RUN_REPLACE_OK)
    assert not matches(r'timestamp=~"^2024"', RUN_REPLACE_OK)  # a Timestamp, not a string
    assert not matches(r'severity=~"NOTICE"', RUN_REPLACE_OK)  # an enum


# --- field presence, missing and defaulted fields -------------------------------------------


def test_exists_operator():
    assert matches("operation.first:*", INSTANCE_INSERT_FIRST)
    assert matches("operation:*", INSTANCE_INSERT_FIRST)
    assert not matches("operation.last:*", INSTANCE_INSERT_FIRST)
    assert not matches("operation:*", RUN_REPLACE_OK)  # Cloud Run v1: no operation at all
    assert matches('labels."compute.googleapis.com/root_trigger_id":*', INSTANCE_INSERT_FIRST)
    assert not matches('labels."compute.googleapis.com/root_trigger_id":*', FIREWALL_INSERT)
    assert matches("protoPayload.response:*", RUN_REPLACE_OK)
    assert not matches("protoPayload.response:*", RUN_REPLACE_CONFLICT)


def test_quoted_path_segments_compare_label_values():
    assert matches('labels."compute.googleapis.com/root_trigger_id"="uuid"', INSTANCE_INSERT_FIRST)
    entry = {"logName": "l", "jsonPayload": {"a.b": {"c": 1}}}
    assert matches('jsonPayload."a.b".c=1', entry)
    assert not matches("jsonPayload.a.b.c=1", entry)


def test_missing_payload_fields_fail_every_comparison_but_not_negation():
    assert not matches('jsonPayload.nearest_store="x"', RUN_REPLACE_OK)
    assert not matches('jsonPayload.nearest_store!="x"', RUN_REPLACE_OK)  # Google: FALSE
    assert matches('NOT jsonPayload.nearest_store="x"', RUN_REPLACE_OK)  # Google: TRUE
    assert not matches('labels.env:"prod"', RUN_REPLACE_OK)


def test_logentry_fields_are_defaulted_when_absent():
    # operation.first/last are LogEntry booleans: absent means false, not missing.
    assert matches("operation.last=false", INSTANCE_INSERT_FIRST)
    assert matches("operation.last!=true", RUN_REPLACE_OK)
    assert matches('operation.producer=""', RUN_REPLACE_OK)
    assert matches("operation.first=true OR operation.last=true", INSTANCES_STOP_LAST)
    no_severity = like(RUN_REPLACE_OK, severity=_DELETE)
    assert matches("severity=DEFAULT", no_severity)
    assert not matches("severity>=DEBUG", no_severity)


def test_protopayload_field_names_ignore_case_but_struct_and_label_keys_do_not():
    assert matches('protoPayload.methodname="google.cloud.run.v1.Services.ReplaceService"', RUN_REPLACE_OK)
    assert matches('PROTOPAYLOAD.AuthenticationInfo.PrincipalEmail:"masatonaka"', RUN_REPLACE_OK)
    assert matches('protoPayload.request.region="asia-northeast1"', RUN_REPLACE_OK)
    assert not matches('protoPayload.request.Region="asia-northeast1"', RUN_REPLACE_OK)  # Struct key
    assert not matches('resource.labels.Location="asia-northeast1"', RUN_REPLACE_OK)  # map key
    assert matches('resource.labels.location="asia-northeast1"', RUN_REPLACE_OK)


def test_null_value():
    entry = {"logName": "l", "jsonPayload": {"gone": None, "here": "x"}}
    assert matches("jsonPayload.gone = NULL_VALUE", entry)
    assert not matches("NOT jsonPayload.gone = NULL_VALUE", entry)
    assert matches("jsonPayload.here != NULL_VALUE", entry)
    assert not matches('jsonPayload.gone = "null"', entry)
    assert not matches("jsonPayload.absent = NULL_VALUE", entry)


# --- arrays, numbers, booleans, severity ------------------------------------------------------


def test_arrays_match_when_any_element_matches():
    assert matches('protoPayload.resourceLocation.currentLocations="europe-west2"', PUBSUB_CREATE_TOPIC)
    assert matches('protoPayload.authorizationInfo.permission="compute.networks.updatePolicy"', FIREWALL_INSERT)
    assert matches('protoPayload.request.alloweds.ports="80"', FIREWALL_INSERT)
    assert not matches('protoPayload.authorizationInfo.permission="compute.firewalls.delete"', FIREWALL_INSERT)
    # each element is compared and the results ORed, so != holds when one element differs
    assert matches('protoPayload.authorizationInfo.permission!="compute.firewalls.create"', FIREWALL_INSERT)


def test_numbers_compare_as_numbers():
    assert matches("protoPayload.status.code=10", RUN_REPLACE_CONFLICT)
    assert matches('protoPayload.status.code="10.0"', RUN_REPLACE_CONFLICT)
    assert matches("protoPayload.status.code>9 protoPayload.status.code<=10", RUN_REPLACE_CONFLICT)
    assert matches("protoPayload.status.code:10", RUN_REPLACE_CONFLICT)
    assert not matches("protoPayload.status.code=ten", RUN_REPLACE_CONFLICT)  # conversion fails
    assert not matches("protoPayload.status.code!=ten", RUN_REPLACE_CONFLICT)
    assert matches("protoPayload.request.service.metadata.generation>=22", RUN_REPLACE_OK)


def test_booleans_accept_true_and_false_in_any_case():
    assert matches("protoPayload.authorizationInfo.granted=TRUE", FIREWALL_INSERT)
    assert matches('protoPayload.authorizationInfo.granted="True"', FIREWALL_INSERT)
    assert not matches("protoPayload.authorizationInfo.granted=false", FIREWALL_INSERT)
    assert not matches("protoPayload.authorizationInfo.granted=yes", FIREWALL_INSERT)
    assert matches("operation.first=true", INSTANCE_INSERT_FIRST)


def test_severity_compares_by_level():
    assert matches("severity>=ERROR", RUN_REPLACE_CONFLICT)
    assert not matches("severity>=ERROR", RUN_REPLACE_OK)  # NOTICE
    assert matches("severity>info severity<warning", RUN_REPLACE_OK)
    assert matches("severity=(NOTICE OR ERROR)", RUN_REPLACE_OK)
    assert matches("severity=300", RUN_REPLACE_OK)


def test_int64_logentry_fields_compare_as_numbers_even_as_json_strings():
    entry = {"logName": "l", "httpRequest": {"status": 503, "responseSize": "2048", "latency": "0.25s"}}
    assert matches("httpRequest.status>=500", entry)
    assert matches("httpRequest.responseSize>999", entry)  # "2048" > "999" would be false as text
    assert matches('httpRequest.latency>"200ms" httpRequest.latency<"1s"', entry)
    assert matches("httpRequest.requestSize=0", entry)  # defaulted


# --- timestamps -------------------------------------------------------------------------------


def test_timestamp_ranges_for_backfill():
    window = 'timestamp>="2020-08-05T21:00:00Z" AND timestamp<"2020-08-05T22:00:00Z"'
    assert matches(window, IMAGES_INSERT_FIRST)  # 21:59:26.456Z
    assert not matches(window, INSTANCES_STOP_LAST)  # 16:56:40.428Z
    assert matches('timestamp>="2026-11-22T00:00:00Z"', like(RUN_REPLACE_OK, timestamp="2026-11-22T00:00:00Z"))
    just_before = like(RUN_REPLACE_OK, timestamp="2026-11-21T23:59:59.999999999Z")
    assert not matches('timestamp>="2026-11-22T00:00:00Z"', just_before)


def test_timestamps_compare_as_instants_not_as_text():
    # As text, "...26Z" > "...26.456Z" ('Z' sorts after '.'); as instants it is earlier.
    assert matches('timestamp>"2020-08-05T21:59:26Z"', IMAGES_INSERT_FIRST)
    assert matches('timestamp="2020-08-05T14:59:26.456-07:00"', IMAGES_INSERT_FIRST)
    assert matches('timestamp<"2020-08-06T00:00:00.000000001+02:00"', IMAGES_INSERT_FIRST)
    assert matches('timestamp>"2020-08-05" timestamp<"2020-08-06"', IMAGES_INSERT_FIRST)  # date = midnight UTC
    assert matches('receiveTimestamp>"2020-08-05T21:59:27.822546977Z"', IMAGES_INSERT_FIRST)  # nanoseconds


def test_bad_timestamps_fail_the_comparison_without_error():
    assert not matches('timestamp>="yesterday"', IMAGES_INSERT_FIRST)
    assert not matches('timestamp>="2020-02-30T00:00:00Z"', IMAGES_INSERT_FIRST)
    assert not matches('timestamp>="2020-01-01T00:00:00Z"', like(IMAGES_INSERT_FIRST, timestamp="garbage"))


# --- functions, comments, empty filters ---------------------------------------------------------


def test_log_id_function():
    assert matches('log_id("cloudaudit.googleapis.com/activity")', FIREWALL_INSERT)
    assert matches('log_id("cloudaudit.googleapis.com%2Factivity")', FIREWALL_INSERT)
    assert not matches('log_id("cloudaudit.googleapis.com/data_access")', FIREWALL_INSERT)
    assert matches('LOG_ID("cloudaudit.googleapis.com/activity") protoPayload.methodName:firewalls', FIREWALL_INSERT)


def test_comments_are_ignored_to_the_end_of_the_line():
    text = '-- header\nresource.type = "gce_firewall_rule" -- trailing\n-- resource.type = "nope"\n'
    assert matches(text, FIREWALL_INSERT)


@pytest.mark.parametrize("text", ["", "   \n\t", "-- only a comment"])
def test_empty_filter_matches_everything(text):
    assert all(parse(text).matches(entry) for entry in ENTRIES.values())


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, position, fragment", [
    ('logName:"x" protoPayload.methodName=', 36, "expected a value after '='"),
    ('protoPayload.methodName=("a" OR "b"', 24, "never closed"),
    ('logName:"x")', 11, "no matching '('"),
    ('logName:"abc', 8, "never closed"),
    ('"The cat in the hat"', 0, "global restriction"),
    ('insertId = "ABC-1" OR "ABC-2"', 22, "global restriction"),
    ('logName:"x" and severity=ERROR', 12, "lowercase 'and'"),
    ("thud=1", 0, "unknown field 'thud'"),
    ("operation.thud=1", 10, "unknown field 'operation.thud'"),
    ("textPayload.thud=1", 12, "has no field 'thud'"),
    ("insertId = abc:def", 14, "unexpected ':'"),
    ("labels.compute.googleapis.com/x=1", 26, 'labels."compute.googleapis.com/x"'),
    ("labels.a/b=1", 7, "quote it"),
    ("protoPayload.methodName", 0, "comparison operator"),
    ("logName:x AND", 13, "expected a comparison"),
    ("AND logName:x", 0, "expected a comparison"),
    ("logName:x OR OR logName:y", 13, "expected a comparison"),
    ("logName=*", 8, "field:*"),
    ("logName='x'", 8, "double quotes"),
    ("!logName:x", 0, "'!' must be followed"),
    ("logName=+x", 8, "must be quoted"),
    ("logName=~\"(a\"", 9, "not valid"),
    ("logName=~\"(?<=a)b\"", 9, "lookaround"),
    (r'logName=~"(a)\\1"', 9, "backreferences"),  # in a filter string "\1" is an octal escape
    ("search(\"x\")", 0, "function 'search' is not supported"),
    ("logName:x\n  AND protoPayload.x=()", 32, "expected a value"),
    ('logName:"\\u12"', 9, "hexadecimal"),
    ("jsonPayload..a=1", 12, "empty"),
])
def test_syntax_errors_point_at_the_bad_spot(text, position, fragment):
    with pytest.raises(FilterSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert error.position == position, error.message
    assert fragment in error.message
    line = text.count("\n", 0, position) + 1
    assert f"at line {line}, column " in error.message
    # the message quotes the line of the bad spot with a caret under it
    bad_line = text.splitlines()[line - 1] if text.strip() else ""
    assert bad_line.strip()[:30] in error.message


def test_errors_report_line_and_column_of_multi_line_filters():
    text = 'logName:"cloudaudit.googleapis.com%2Factivity"\nprotoPayload.methodName=("a" OR )\n'
    with pytest.raises(FilterSyntaxError) as caught:
        parse(text)
    assert caught.value.position == text.index(")")
    assert "at line 2, column 33" in str(caught.value)
    assert "    protoPayload.methodName=(\"a\" OR )\n" + " " * 36 + "^" in str(caught.value)


def test_limits_are_clear_errors():
    with pytest.raises(FilterSyntaxError, match="at most 20000"):
        parse("logName:x " * 2_001)
    with pytest.raises(FilterSyntaxError, match="nested more than"):
        parse("(" * 150 + "logName:x" + ")" * 150)
    with pytest.raises(FilterSyntaxError, match="must be text"):
        parse(None)  # type: ignore[arg-type]


def test_syntax_error_is_a_value_error_with_message_and_position():
    with pytest.raises(ValueError):
        parse("(")
    error = FilterSyntaxError("boom", 3)
    assert (error.message, error.position, str(error)) == ("boom", 3, "boom")


# --- properties ---------------------------------------------------------------------------------

_PIECES = [
    "logName", "protoPayload.methodName", "protoPayload.status.code", "labels.\"a/b\"", "timestamp",
    "severity", "operation.first", "jsonPayload.x", "resource", "thud", "log_id", "NULL_VALUE",
    "=", "!=", ":", "<", "<=", ">", ">=", "=~", "!~", ":*", "*", "AND", "OR", "NOT", "-", "and",
    "(", ")", "\"v1.compute.routers.patch\"", "\"2020-08-05T21:59:26Z\"", "\"(a|b\"", "\"\\\\d+\"",
    "10", "-3.5", "true", "ERROR", "x", ".", "\"", "\\", "--", "\n", "'", "!", "~", ",", "\"\\u00e9\"",
]
_SOUP = st.lists(st.sampled_from(_PIECES), max_size=25).flatmap(
    lambda parts: st.lists(st.sampled_from(["", " ", "\n"]), min_size=len(parts), max_size=len(parts)).map(
        lambda seps: "".join(p + s for p, s in zip(parts, seps))))
_ANY_TEXT = st.one_of(st.text(max_size=200), _SOUP)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_ANY_TEXT)
def test_parse_raises_nothing_but_filter_syntax_error(text):
    try:
        compiled = parse(text)
    except FilterSyntaxError as error:
        assert 0 <= error.position <= len(text)
        return
    for entry in ENTRIES.values():  # and a filter that parses never fails while matching
        assert compiled.matches(entry) in (True, False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_SOUP)
def test_canonical_form_reparses_to_the_same_filter(text):
    try:
        compiled = parse(text)
    except FilterSyntaxError:
        return
    again = parse(compiled.canonical)
    assert again.canonical == compiled.canonical
    negated = parse(f"NOT (\n{text}\n)") if compiled.canonical else None
    for entry in ENTRIES.values():
        assert again.matches(entry) == compiled.matches(entry)
        if negated is not None:
            assert negated.matches(entry) == (not compiled.matches(entry))
