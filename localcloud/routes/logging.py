"""Cloud Logging routes: ``entries.list`` for backfill and tests, plus the sink control API.

The audit writer and the sinks (built by ``localcloud.services``) are read here.

POST /logging/v2/entries:list          logging.entries.list (google-cloud-logging's HTTP client)
GET  /logging/v2/{projects|organizations|folders}/ID/sinks[/NAME]   sinks.list / sinks.get: the sinks
                                       below, in Logging v2's LogSink shape (doctor reads them)
GET  /_localcloud/entries              every stored entry, in write order
GET  /_localcloud/sinks                the sinks with their counters
POST /_localcloud/sinks                {name, filter, destination | eventarc_target, pubsub_emulator_host?,
                                        parent? (default projects/<the topic's project>), include_children?}
DELETE /_localcloud/sinks/{name}       stop and remove one sink

``POST /_localcloud/reset`` clears the entries but keeps the sinks running: a local stack
configures its sinks once (like Terraform) and tests reset the world between scenarios.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Iterable

from localcloud.auditlog import filter as logging_filter
from localcloud.auditlog.writer import StoredEntry
from localcloud.errors import ApiError, invalid
from localcloud.routing import Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services

DEFAULT_PAGE_SIZE = 50  # "Default is 50" (ListLogEntriesRequest.pageSize)
MAX_PAGE_SIZE = 1000  # Google caps pageSize at 1000
# resourceNames Logging accepts: a parent, or a log view under it.
_RESOURCE_NAME = re.compile(
    r"^(projects|organizations|folders|billingAccounts)/([^/]+)(/locations/[^/]+/buckets/[^/]+/views/[^/]+)?$")


def routes(app: "Services") -> list[Route]:
    audit = app.logging.audit

    def list_entries(call: Call) -> Result:
        return Result(list_page(audit.stored(), call.body or {}))

    sinks = app.logging.sinks

    def sink_parent(call: Call) -> str:
        kind = call.path.split("/")[3]  # /logging/v2/{kind}/{id}/sinks...
        return f"{kind}/{call.params['parent']}"

    def get_sink(call: Call) -> Result:
        parent = sink_parent(call)
        found = next((c for c in sinks.configs(parent) if c.name == call.params["sink"]), None)
        if found is None:
            raise ApiError(404, f"Sink {call.params['sink']} does not exist", reason="notFound")
        return Result(found.log_sink())

    def list_sinks(call: Call) -> Result:
        configs = sinks.configs(sink_parent(call))
        page_size = _query_int(call, "pageSize", DEFAULT_SINK_PAGE_SIZE) or DEFAULT_SINK_PAGE_SIZE
        start = _query_int(call, "pageToken", 0) if call.query.get("pageToken") else 0
        page = configs[start:start + page_size]
        out: dict[str, Any] = {"sinks": [c.log_sink() for c in page]} if page else {}
        if start + page_size < len(configs):
            out["nextPageToken"] = str(start + page_size)
        return Result(out)

    out = [Route("POST", "/logging/v2/entries:list", "logging.v2", "logging.entries.list", list_entries)]
    for kind in ("projects", "organizations", "folders"):
        out += [Route("GET", f"/logging/v2/{kind}/{{parent}}/sinks/{{sink}}", "logging.v2",
                      f"logging.{kind}.sinks.get", get_sink),
                Route("GET", f"/logging/v2/{kind}/{{parent}}/sinks", "logging.v2", f"logging.{kind}.sinks.list",
                      list_sinks)]
    return out


DEFAULT_SINK_PAGE_SIZE = 100


def _query_int(call: Call, name: str, default: int) -> int:
    value = call.query.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"Invalid value at '{name}' (TYPE_INT32), \"{value}\"") from None
    if number < 0:
        raise invalid(f"{name} must not be negative")
    return number


def control_routes(app: "Services") -> list[Route]:
    state = app.logging

    def entries(call: Call) -> Result:
        return Result({"entries": state.audit.entries()})

    def list_sinks(call: Call) -> Result:
        return Result({"sinks": state.sinks.list()})

    def create_sink(call: Call) -> Result:
        return Result(state.sinks.add(call.body), status=200)

    def delete_sink(call: Call) -> Result:
        return Result(state.sinks.remove(call.params["name"]))

    base = "/_localcloud"
    return [
        Route("GET", f"{base}/entries", "", "localcloud.entries.get", entries),
        Route("GET", f"{base}/sinks", "", "localcloud.sinks.get", list_sinks),
        Route("POST", f"{base}/sinks", "", "localcloud.sinks.post", create_sink),
        Route("DELETE", f"{base}/sinks/{{name}}", "", "localcloud.sinks.delete", delete_sink),
    ]


# ---- entries.list -----------------------------------------------------------------------------
def list_page(stored: list[StoredEntry], body: dict[str, Any]) -> dict[str, Any]:
    """One page of ``entries.list``: parents, filter, order, page size and token, as Google."""
    parents = _parents(body)
    filter_text = body.get("filter") or ""
    try:
        filter_ = logging_filter.parse(filter_text)
    except logging_filter.FilterSyntaxError as exc:
        raise invalid(f"Unparseable filter: {exc.message}") from None
    order = " ".join(str(body.get("orderBy") or "timestamp asc").lower().split())
    if order not in ("timestamp asc", "timestamp desc"):
        raise invalid('Invalid orderBy: only "timestamp asc" and "timestamp desc" are supported')
    page_size = body.get("pageSize") or DEFAULT_PAGE_SIZE
    if not isinstance(page_size, int) or page_size < 0:
        raise invalid("pageSize must not be negative")
    page_size = min(page_size, MAX_PAGE_SIZE)
    query_key = hashlib.sha256(json.dumps([sorted(parents), filter_text, order]).encode()).hexdigest()[:16]
    after = _decode_token(body.get("pageToken"), query_key)
    descending = order == "timestamp desc"

    # The writer gives every entry a strictly later timestamp than the one before, so write order
    # is timestamp order (ties, which Google breaks by insertId, cannot happen) and a page token
    # is just the timestamp of the last entry returned.
    times = [s.timestamp_ns for s in stored]
    if descending:
        end = bisect.bisect_left(times, after) if after is not None else len(stored)
        candidates: Iterable[StoredEntry] = (stored[i] for i in range(end - 1, -1, -1))
    else:
        start = bisect.bisect_right(times, after) if after is not None else 0
        candidates = (stored[i] for i in range(start, len(stored)))
    page: list[StoredEntry] = []
    more = False
    for s in candidates:
        if not _in_parents(s.entry, parents) or not filter_.matches(s.entry):
            continue
        if len(page) == page_size:
            more = True
            break
        page.append(s)
    out: dict[str, Any] = {}
    if page:
        out["entries"] = [copy.deepcopy(s.entry) for s in page]
    if more:
        out["nextPageToken"] = _encode_token(page[-1].timestamp_ns, query_key)
    return out


def _parents(body: dict[str, Any]) -> list[str]:
    names = list(body.get("resourceNames") or []) + [f"projects/{p}" for p in body.get("projectIds") or []]
    if not names:
        raise invalid("resourceNames: at least one resource name is required (e.g. projects/PROJECT_ID)")
    parents = []
    for name in names:
        match = _RESOURCE_NAME.match(str(name))
        if not match:
            raise invalid(f"Invalid resource name {name!r}: expected projects/P, organizations/O, folders/F "
                          "or billingAccounts/B")
        parents.append(f"{match.group(1)}/{match.group(2)}")
    return parents


def _in_parents(entry: dict[str, Any], parents: list[str]) -> bool:
    log_name = str(entry.get("logName", ""))
    return any(log_name.startswith(f"{parent}/logs/") for parent in parents)


def _encode_token(timestamp_ns: int, query_key: str) -> str:
    raw = json.dumps({"t": timestamp_ns, "q": query_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: Any, query_key: str) -> int | None:
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(str(token) + "=" * (-len(str(token)) % 4)))
        timestamp_ns = int(raw["t"])
        if raw["q"] != query_key:
            raise ApiError(400, "pageToken does not belong to this query (resourceNames, filter and orderBy "
                                "must not change between pages)")
        return timestamp_ns
    except ApiError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid("Invalid pageToken") from None
