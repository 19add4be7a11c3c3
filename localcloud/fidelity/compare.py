"""Structural comparison of localcloud's answer with the recorded one.

Both bodies first get the recorder's normalisation (NOTES.md §0): ids, timestamps, fingerprints,
etags, the caller (``user``), subnet ``gatewayAddress``, external ``address``... become the same
fixed values on both sides; localcloud's concrete names, project, project number and numeric
resource ids become the recorder's placeholders. What is left to differ is what a client sees:

- the HTTP status code and the content type;
- field names at every level (a key missing from, or extra in, localcloud's answer);
- JSON types;
- enum values (``RUNNING``, ``INGRESS``, ``PRIVATE_NAT``...), the operation lifecycle (``kind``,
  ``operationType``, ``status``, ``progress``, ``done``, ``@type``, ``httpErrorStatusCode``,
  generations) and the error envelope (``code``, ``reason``, ``domain``, canonical ``status``);
- the shape of links (host, API version, collections: ``targetLink`` and every other URL).

Those differences are *structural*. Any other value that differs (an error message's wording, a
description, a number) is reported too, as a *value* difference, for reading; the gate is structural.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from localcloud.fidelity.replay import SENT, Names, Step

# ---- the recorder's normalisation (NOTES.md §0), applied to both sides --------------------------
TIMESTAMP = "2024-04-01T12:34:56.123456Z"
_NORMALISED_FIELDS: Mapping[str, str] = {
    "id": "000000000000000000000",
    "creationTimestamp": TIMESTAMP, "insertTime": TIMESTAMP, "startTime": TIMESTAMP, "endTime": TIMESTAMP,
    "createTime": TIMESTAMP, "updateTime": TIMESTAMP, "deleteTime": TIMESTAMP, "expireTime": TIMESTAMP,
    "lastTransitionTime": "2025-01-01T00:00:00Z",
    "user": "user@example.com", "creator": "${creatorID}", "lastModifier": "${creatorID}",
    "fingerprint": "abcdef0123A=", "labelFingerprint": "abcdef0123A=", "etag": "abcdef0123A=",
    "gatewayAddress": "10.0.0.1",
    "uid": "111111111111111111111",
}
# Normalised only in the bodies of these kinds (an ``address`` elsewhere is not an external IP).
_NORMALISED_BY_KIND: Mapping[str, Mapping[str, str]] = {"compute#address": {"address": "8.8.8.8"}}
# Values newer recordings write in place of real ones; where the recorded side shows one, the same
# field of localcloud's answer takes it too.
_RECORDER_TOKENS = frozenset({"12345678901234", "${creatorID}"})

# ---- what makes a difference structural -----------------------------------------------------------
LIFECYCLE_FIELDS = frozenset({
    "kind", "operationType", "status", "progress", "done", "@type", "httpErrorStatusCode", "httpErrorMessage",
    "reconciling", "generation", "observedGeneration", "state", "type",
})
ERROR_FIELDS = frozenset({"code", "reason", "domain", "status"})
_ENUM = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
_LINK = re.compile(r"^(?:https?://[^/\s]+/\S*|projects/[^/\s]+/\S+)$")
# Segments after these name a resource (or region); a link's *shape* keeps the collections only.
_NAMED_BY_NEXT = frozenset({
    "projects", "regions", "zones", "locations", "networks", "subnetworks", "firewalls", "routers", "addresses",
    "operations", "connectors", "services", "jobs", "revisions", "executions", "tasks", "workerPools",
    "networkEndpointGroups", "hubs", "spokes", "healthChecks", "backendServices", "urlMaps",
    "targetHttpProxies", "forwardingRules", "namespaces",
})

STATUS, CONTENT_TYPE, MISSING, EXTRA, TYPE, ENUM, LIFECYCLE, ERROR, LINK, ORDER, VALUE, UNREADABLE = (
    "status", "content-type", "missing", "extra", "type", "enum", "lifecycle", "error", "link", "order",
    "value", "unreadable")
STRUCTURAL_KINDS = frozenset({STATUS, CONTENT_TYPE, MISSING, EXTRA, TYPE, ENUM, LIFECYCLE, ERROR, LINK, UNREADABLE})


@dataclass(frozen=True)
class Difference:
    """One difference: where (``body.nats[0].type``), what kind, and both values (normalised)."""

    path: str
    kind: str
    recorded: Any
    actual: Any

    @property
    def structural(self) -> bool:
        return self.kind in STRUCTURAL_KINDS

    def describe(self) -> str:
        return f"{self.path} [{self.kind}]: recorded {_short(self.recorded)} / localcloud {_short(self.actual)}"


def _short(value: Any, limit: int = 160) -> str:
    text = "<absent>" if value is ABSENT else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


# ---- normalisation ------------------------------------------------------------------------------------
class Normaliser:
    """Both sides as the recorder would have written them."""

    def __init__(self, names: Names) -> None:
        self._reverse = names.reverse()
        self._ids = dict(names.ids)

    def recorded(self, body: Any) -> Any:
        return _normalise(copy.deepcopy(body), None)

    def actual(self, body: Any, recorded: Any = None) -> Any:
        body = self._placeholders(copy.deepcopy(body), "")
        body = _normalise(body, None)
        if recorded is not None:
            _align_tokens(recorded, body)
        return body

    def _placeholders(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: self._placeholders(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._placeholders(v, key) for v in value]
        if isinstance(value, str):
            return self._text(value)
        return value

    def _text(self, text: str) -> str:
        for numeric, placeholder in self._ids.items():
            if numeric in text:
                text = text.replace(numeric, placeholder)
        for concrete, placeholder in self._reverse:
            if concrete and concrete in text:
                text = text.replace(concrete, placeholder)
        return text


def _normalise(value: Any, kind: str | None) -> Any:
    if isinstance(value, dict):
        kind = value.get("kind") if isinstance(value.get("kind"), str) else kind
        by_kind = _NORMALISED_BY_KIND.get(kind or "", {})
        out = {}
        for key, item in value.items():
            token = by_kind.get(key) or _NORMALISED_FIELDS.get(key)
            if token is not None and isinstance(item, (str, int)) and not isinstance(item, bool):
                out[key] = token
            else:
                out[key] = _normalise(item, kind)
        return out
    if isinstance(value, list):
        return [_normalise(item, kind) for item in value]
    return value


def _align_tokens(recorded: Any, actual: Any) -> None:
    """Where the recorded side shows a recorder token, localcloud's value of that field takes it."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        for key, value in recorded.items():
            if key not in actual:
                continue
            if isinstance(value, str) and value in _RECORDER_TOKENS and isinstance(actual[key], (str, int)):
                actual[key] = value
            else:
                _align_tokens(value, actual[key])
    elif isinstance(recorded, list) and isinstance(actual, list):
        for r, a in zip(recorded, actual):
            _align_tokens(r, a)


# ---- comparison ---------------------------------------------------------------------------------------
def compare_step(step: Step, normaliser: Normaliser) -> list[Difference]:
    """Differences between the recorded answer and localcloud's, for an exchange that was sent."""
    if step.outcome != SENT or step.exchange.response is None:
        return []
    recorded = step.exchange.response
    diffs: list[Difference] = []
    if recorded.status != step.status:
        diffs.append(Difference("status", STATUS, recorded.status, step.status))
    want_type = recorded.headers.get("Content-Type")
    if want_type and step.content_type and _media(want_type) != _media(step.content_type):
        diffs.append(Difference("header.Content-Type", CONTENT_TYPE, want_type, step.content_type))
    if recorded.body_text.strip() and recorded.body is None:
        return diffs + [Difference("body", UNREADABLE, recorded.body_text[:200], step.body)]
    want = normaliser.recorded(recorded.body)
    got = normaliser.actual(step.body, want)
    diffs.extend(compare_bodies(want, got))
    return diffs


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def compare_bodies(recorded: Any, actual: Any, path: str = "body") -> list[Difference]:
    out: list[Difference] = []
    _walk(recorded, actual, path, "", False, out)
    return out


def _walk(rec: Any, act: Any, path: str, key: str, in_error: bool, out: list[Difference]) -> None:
    if isinstance(rec, dict) and isinstance(act, dict):
        for k in sorted(set(rec) | set(act)):
            sub = f"{path}.{k}"
            if k not in act:
                out.append(Difference(sub, MISSING, rec[k], ABSENT))
            elif k not in rec:
                out.append(Difference(sub, EXTRA, ABSENT, act[k]))
            else:
                _walk(rec[k], act[k], sub, k, in_error or k == "error", out)
        return
    if isinstance(rec, list) and isinstance(act, list):
        if any(isinstance(x, (dict, list)) for x in rec + act):
            for i in range(max(len(rec), len(act))):
                sub = f"{path}[{i}]"
                if i >= len(act):
                    out.append(Difference(sub, MISSING, rec[i], ABSENT))
                elif i >= len(rec):
                    out.append(Difference(sub, EXTRA, ABSENT, act[i]))
                else:
                    _walk(rec[i], act[i], sub, key, in_error, out)
            return
        _scalar_lists(rec, act, path, out)
        return
    if _json_type(rec) != _json_type(act):
        out.append(Difference(path, TYPE, rec, act))
        return
    if rec == act:
        return
    out.append(Difference(path, _scalar_kind(rec, act, key, in_error), rec, act))


def _scalar_lists(rec: list[Any], act: list[Any], path: str, out: list[Difference]) -> None:
    if rec == act:
        return
    if sorted(map(_key, rec)) == sorted(map(_key, act)):
        out.append(Difference(path, ORDER, rec, act))
        return
    items = rec + act
    if any(isinstance(x, str) and _ENUM.match(x) for x in items):
        kind = ENUM
    elif any(isinstance(x, str) and _LINK.match(x) for x in items):
        kind = LINK if sorted(map(_shape_key, rec)) != sorted(map(_shape_key, act)) else VALUE
    elif {_json_type(x) for x in rec} != {_json_type(x) for x in act} and rec and act:
        kind = TYPE
    else:
        kind = VALUE
    out.append(Difference(path, kind, rec, act))


def _scalar_kind(rec: Any, act: Any, key: str, in_error: bool) -> str:
    if in_error and key in ERROR_FIELDS:
        return ERROR
    if key in LIFECYCLE_FIELDS:
        return LIFECYCLE
    if any(isinstance(x, str) and _ENUM.match(x) for x in (rec, act)):
        return ENUM
    if any(isinstance(x, str) and _LINK.match(x) for x in (rec, act)):
        return LINK if link_shape(str(rec)) != link_shape(str(act)) else VALUE
    return VALUE


def link_shape(link: str) -> str:
    """A link with every resource name replaced by ``*``: host, API version and collections remain."""
    m = re.match(r"^(https?://[^/]+)?/?(.*)$", link)
    host, rest = (m.group(1) or ""), (m.group(2) if m else link)
    segments = rest.split("/")
    shaped = [("*" if i > 0 and segments[i - 1] in _NAMED_BY_NEXT else s) for i, s in enumerate(segments)]
    return host + "/" + "/".join(shaped)


def _shape_key(value: Any) -> str:
    return link_shape(value) if isinstance(value, str) else _key(value)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def structural(diffs: Iterable[Difference]) -> list[Difference]:
    return [d for d in diffs if d.structural]
