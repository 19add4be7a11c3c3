"""Request and response bodies checked against Google's own discovery documents.

localcloud answers a body the real API would refuse with the same 400, so a client that works
against localcloud sends nothing Google would reject. The schemas come from the discovery
documents that google-api-python-client ships (``googleapiclient/discovery_cache/documents``);
no schema is written by hand, only the enum numbers the documents cannot express.

Every request passes through here, so the work is done once: a document is loaded the first time
its API is used, a schema is compiled into checking functions the first time it is named, and a
check walks the body once, building error paths only when something is wrong.

What Google's JSON parser (protobuf's ProtoStreamObjectWriter behind ESF) does, and we copy:
unknown names and wrong types are rejected at any depth, with its error texts; int64/uint64 accept
a JSON number or a decimal string, every integer type accepts a decimal string; ``null`` means
"not set"; output-only fields are parsed (type-checked) and then ignored, so gcloud can send back
a whole router it has just read.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping, get_args

API = Literal["compute.v1", "vpcaccess.v1", "vpcaccess.v1beta1", "run.v1", "run.v2", "logging.v2", "cloudfunctions.v2",
              "serviceusage.v1", "cloudresourcemanager.v1", "cloudbuild.v1", "iam.v1", "cloudresourcemanager.v3",
              "secretmanager.v1", "pubsub.v1", "appengine.v1", "cloudasset.v1"]
APIS: tuple[str, ...] = get_args(API)

# The protobuf package behind each document: used to name message types in error texts and to
# find the schema an ``Any`` value names with its ``@type``.
_PROTO_PACKAGE: Mapping[str, str] = {
    "compute.v1": "google.cloud.compute.v1",
    "vpcaccess.v1": "google.cloud.vpcaccess.v1",
    "vpcaccess.v1beta1": "google.cloud.vpcaccess.v1beta1",
    "run.v1": "google.cloud.run.v1",
    "run.v2": "google.cloud.run.v2",
    "logging.v2": "google.logging.v2",
    "cloudfunctions.v2": "google.cloud.functions.v2",
    "serviceusage.v1": "google.api.serviceusage.v1",
    "cloudresourcemanager.v1": "google.cloudresourcemanager.v1",
    "cloudbuild.v1": "google.devtools.cloudbuild.v1",
    "iam.v1": "google.iam.admin.v1",
    "cloudresourcemanager.v3": "google.cloud.resourcemanager.v3",
    "secretmanager.v1": "google.cloud.secretmanager.v1",
    "pubsub.v1": "google.pubsub.v1",
    "appengine.v1": "google.appengine.v1",
    "cloudasset.v1": "google.cloud.asset.v1",
}

# Schema-name prefixes that discovery uses for messages from other protobuf packages.
_FOREIGN_PREFIXES: tuple[tuple[str, str], ...] = (
    ("GoogleCloudRunV2", "google.cloud.run.v2"),
    ("GoogleCloudRunV1", "google.cloud.run.v1"),
    ("GoogleCloudFunctionsV2", "google.cloud.functions.v2"),
    ("GoogleDevtoolsCloudbuildV1", "google.devtools.cloudbuild.v1"),
    ("GoogleIamV1", "google.iam.v1"),
    ("GoogleLongrunning", "google.longrunning"),
    ("GoogleRpc", "google.rpc"),
    ("GoogleType", "google.type"),
)

# Enum numbers: discovery lists enum values in declaration order, which is their proto number
# only when the proto enum is dense and declared in number order. These proto enums are not
# (numbers checked against the installed protos by tests/unit/test_discovery.py). Keyed by the
# enum's first (zero) value, which names the proto enum.
_PROTO_ENUM_NUMBERS: Mapping[str, Mapping[str, int]] = {
    # google.api.LaunchStage: UNIMPLEMENTED and PRELAUNCH were added after DEPRECATED.
    "LAUNCH_STAGE_UNSPECIFIED": {
        "LAUNCH_STAGE_UNSPECIFIED": 0, "UNIMPLEMENTED": 6, "PRELAUNCH": 7, "EARLY_ACCESS": 1,
        "ALPHA": 2, "BETA": 3, "GA": 4, "DEPRECATED": 5,
    },
    # google.cloud.run.v2.Condition.CommonReason: 2 (ROUTE_MISSING) and 5 (BUILD_STEP_FAILED) were removed.
    "COMMON_REASON_UNDEFINED": {
        "COMMON_REASON_UNDEFINED": 0, "UNKNOWN": 1, "REVISION_FAILED": 3, "PROGRESS_DEADLINE_EXCEEDED": 4,
        "CONTAINER_MISSING": 6, "CONTAINER_PERMISSION_DENIED": 7, "CONTAINER_IMAGE_UNAUTHORIZED": 8,
        "CONTAINER_IMAGE_AUTHORIZATION_CHECK_FAILED": 9, "ENCRYPTION_KEY_PERMISSION_DENIED": 10,
        "ENCRYPTION_KEY_CHECK_FAILED": 11, "SECRETS_ACCESS_CHECK_FAILED": 12, "WAITING_FOR_OPERATION": 13,
        "IMMEDIATE_RETRY": 14, "POSTPONED_RETRY": 15, "INTERNAL": 16, "VPC_NETWORK_NOT_FOUND": 17,
    },
}

# UNCONFIRMED: the first segment of Google's error location. The real parser names the request
# message field the body binds to (e.g. 'service' for run v2 CreateService); for compute that
# field is 'firewall_resource', yet localcloud says 'firewall' (the schema name, as the design
# asks). A request schema named *Request is the whole request message (body "*"): no root segment.
_WHOLE_REQUEST_SUFFIX = "Request"

# Deliberate deviation: Google's parser takes a single value (or object) sent for a repeated
# field as a one-element list. localcloud refuses it, so backends can rely on lists.
_SCALAR_FOR_LIST_ACCEPTED = False

_INT_RANGES: Mapping[str, tuple[int, int, str]] = {
    "int32": (-(2**31), 2**31 - 1, "TYPE_INT32"),
    "uint32": (0, 2**32 - 1, "TYPE_UINT32"),
    "int64": (-(2**63), 2**63 - 1, "TYPE_INT64"),
    "uint64": (0, 2**64 - 1, "TYPE_UINT64"),
}
_FLOAT32_MAX = 3.4028234663852886e38
_DECIMAL = re.compile(r"-?\d+")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
_DURATION = re.compile(r"-?\d+(?:\.\d{1,9})?s")
_WELL_KNOWN_STRINGS: Mapping[str, tuple[re.Pattern[str] | None, str]] = {
    "google-datetime": (_TIMESTAMP, "type.googleapis.com/google.protobuf.Timestamp"),
    "google-duration": (_DURATION, "type.googleapis.com/google.protobuf.Duration"),
    "google-fieldmask": (None, "type.googleapis.com/google.protobuf.FieldMask"),
}


# ---- public types ------------------------------------------------------------------------------
class SchemaError(ValueError):
    """A body the real API would refuse with 400 INVALID_ARGUMENT.

    ``path`` locates the offending value in the body as sent (JSON names, e.g.
    ``allowed[0].ports[1]``; "" for the root); ``message`` (also ``str()``) is Google's text;
    ``field`` is the location Google puts in a ``google.rpc.BadRequest`` field violation.
    """

    def __init__(self, message: str, *, path: str = "", field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.field = field

    def __str__(self) -> str:
        return self.message

    @property
    def field_violation(self) -> dict[str, str]:
        """The entry Google puts in ``error.details[].fieldViolations`` for this error."""
        violation = {"description": self.message}
        if self.field:
            violation = {"field": self.field, **violation}
        return violation


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" or "query"
    type: str
    required: bool = False
    repeated: bool = False
    format: str | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class MethodInfo:
    api: str
    id: str
    http_method: str
    path: str  # the method's template relative to service_path, e.g. "v2/{+parent}/services"
    flat_path: str  # the same with one {name} per segment
    request_schema: str | None
    response_schema: str | None
    parameters: Mapping[str, Parameter] = field(compare=False, hash=False)
    parameter_order: tuple[str, ...] = ()
    service_path: str = ""  # e.g. "compute/v1/" (empty for the APIs that put the version in path)


# ---- documents ---------------------------------------------------------------------------------
def documents_dir() -> str:
    """Where google-api-python-client keeps its static discovery documents."""
    import googleapiclient

    return os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")


_Check = Callable[[Any, bool], None]  # (value, enums_as_int) -> None, raises _Invalid
_Codec = Callable[[Any], Any]


class _Api:
    """One discovery document and everything compiled from it (built lazily, kept forever)."""

    def __init__(self, name: str, doc: Mapping[str, Any]) -> None:
        self.name = name
        self.schemas: Mapping[str, Mapping[str, Any]] = doc.get("schemas", {})
        self.service_path: str = doc.get("servicePath", "")
        self.methods: dict[str, MethodInfo] = {}
        self._collect_methods(doc)
        self._lock = threading.RLock()
        # Compiled objects become visible to other threads only once the whole graph they
        # reference is complete (compiling runs under the lock, lookups do not).
        self._messages: dict[str, _Message] = {}
        self._ready: dict[str, _Message] = {}
        self._codecs: dict[tuple[str, bool], _CodecMessage] = {}
        self._codecs_ready: dict[tuple[str, bool], _CodecMessage] = {}
        self._with_enums: frozenset[str] | None = None
        self._type_urls: dict[str, str] | None = None
        self._routes: dict[tuple[str, int], list[tuple[re.Pattern[str], MethodInfo]]] | None = None

    # -- methods --
    def _collect_methods(self, node: Mapping[str, Any]) -> None:
        for raw in node.get("methods", {}).values():
            params = {
                name: Parameter(
                    name=name, location=p.get("location", "query"), type=p.get("type", "string"),
                    required=bool(p.get("required", False)), repeated=bool(p.get("repeated", False)),
                    format=p.get("format"), enum=tuple(p["enum"]) if "enum" in p else None,
                    pattern=p.get("pattern"), default=p.get("default"),
                )
                for name, p in raw.get("parameters", {}).items()
            }
            info = MethodInfo(
                api=self.name, id=raw["id"], http_method=raw["httpMethod"], path=raw["path"],
                flat_path=raw.get("flatPath", raw["path"]),
                request_schema=raw.get("request", {}).get("$ref"),
                response_schema=raw.get("response", {}).get("$ref"),
                parameters=MappingProxyType(params), parameter_order=tuple(raw.get("parameterOrder", ())),
                service_path=self.service_path,
            )
            self.methods[info.id] = info
        for child in node.get("resources", {}).values():
            self._collect_methods(child)

    def find_method(self, http_method: str, path: str) -> MethodInfo | None:
        if self._routes is None:
            with self._lock:
                if self._routes is None:
                    self._routes = self._build_routes()
        path = path.lstrip("/")
        for regex, info in self._routes.get((http_method.upper(), path.count("/")), ()):
            if regex.fullmatch(path):
                return info
        return None

    def _build_routes(self) -> dict[tuple[str, int], list[tuple[re.Pattern[str], MethodInfo]]]:
        routes: dict[tuple[str, int], list[tuple[int, re.Pattern[str], MethodInfo]]] = {}
        for info in self.methods.values():
            template = self.service_path + info.flat_path
            if "{+" in template:  # a multi-segment variable: no fixed segment count
                continue
            pattern, literal = "", 0
            for part in re.split(r"(\{[^}]+\})", template):
                if part.startswith("{"):
                    pattern += r"[^/]+?"
                else:
                    pattern += re.escape(part)
                    literal += len(part)
            key = (info.http_method, template.count("/"))
            routes.setdefault(key, []).append((literal, re.compile(pattern), info))
        # The most specific template wins (".../operations/{op}" over ".../{resource}").
        return {key: [(r, i) for _, r, i in sorted(v, key=lambda t: -t[0])] for key, v in routes.items()}

    # -- validation --
    def message(self, name: str) -> _Message:
        found = self._ready.get(name)
        if found is not None:
            return found
        if name not in self.schemas:
            raise KeyError(f"{self.name} has no schema {name!r}")
        with self._lock:
            compiled = self._message(name)
            self._ready.update(self._messages)
        return compiled

    def _message(self, name: str) -> _Message:
        found = self._messages.get(name)
        if found is None:
            found = self._messages[name] = _Message(self.full_name(name))  # registered first: schemas recurse
            found.fields = {k: self._compile(p, k) for k, p in self.schemas[name].get("properties", {}).items()}
        return found

    def _compile(self, schema: Mapping[str, Any], name: str) -> _Check:
        """A checking function for one property schema (``name`` names it in error texts)."""
        if "$ref" in schema:
            return self._message(schema["$ref"]).check
        kind = schema.get("type")
        if kind == "array":
            items = schema.get("items", {})
            return _array_check(self._compile(items, name), self._label(items, name))
        if kind == "object":
            if "properties" in schema:  # an inline message (compute declares some in place)
                inline = _Message(self._inline_name(name))
                inline.fields = {k: self._compile(p, k) for k, p in schema["properties"].items()}
                return inline.check
            values = schema.get("additionalProperties")
            if _is_any(schema):
                return self._any_check()
            if isinstance(values, Mapping):
                return _map_check(self._compile(values, name))
            return _object_check
        if kind == "any":
            return _accept
        if "enum" in schema:
            names = frozenset(schema["enum"])
            numbers = frozenset(_enum_numbers(tuple(schema["enum"])).values())
            return _enum_check(names, numbers)
        fmt = schema.get("format")
        if kind == "integer" or fmt in ("int64", "uint64"):
            return _integer_check(*_INT_RANGES.get(fmt or "int32", _INT_RANGES["int64"]))
        if kind == "number":
            return _number_check(fmt == "float")
        if kind == "boolean":
            return _bool_check
        if kind == "string":
            if fmt == "byte":
                return _bytes_check
            if fmt in _WELL_KNOWN_STRINGS:
                return _string_check(*_WELL_KNOWN_STRINGS[fmt])
            return _string_check(None, "TYPE_STRING")
        return _accept  # a type this module does not know: let it through rather than refuse valid bodies

    def _inline_name(self, field_name: str) -> str:
        # The proto message behind an inline schema is named after its field (Firewall.allowed
        # is google.cloud.compute.v1.Allowed).
        return f"{_PROTO_PACKAGE[self.name]}.{field_name[:1].upper()}{field_name[1:]}"

    def _label(self, schema: Mapping[str, Any], field_name: str) -> str:
        """The type Google names when a value of this schema is wrong."""
        if "$ref" in schema:
            return "type.googleapis.com/" + self.full_name(schema["$ref"])
        if schema.get("type") == "object":
            return "type.googleapis.com/" + self._inline_name(field_name)
        if "enum" in schema:
            return "TYPE_ENUM"
        fmt, kind = schema.get("format"), schema.get("type")
        if fmt in _INT_RANGES:
            return _INT_RANGES[fmt][2]
        if fmt in _WELL_KNOWN_STRINGS:
            return _WELL_KNOWN_STRINGS[fmt][1]
        return {"number": "TYPE_FLOAT" if fmt == "float" else "TYPE_DOUBLE", "boolean": "TYPE_BOOL",
                "integer": "TYPE_INT32"}.get(kind or "", "TYPE_BYTES" if fmt == "byte" else "TYPE_STRING")

    def _any_check(self) -> _Check:
        def check_any(value: Any, ints: bool) -> None:
            if type(value) is not dict:
                raise _Invalid.wrong(value, "type.googleapis.com/google.protobuf.Any")
            target = self.schema_for_type_url(value.get("@type"))
            if target is not None:
                self.message(target).check({k: v for k, v in value.items() if k != "@type"}, ints)

        return check_any

    # -- names --
    def full_name(self, schema_name: str) -> str:
        for prefix, package in _FOREIGN_PREFIXES:
            if schema_name.startswith(prefix) and len(schema_name) > len(prefix):
                return f"{package}.{schema_name[len(prefix):]}"
        return f"{_PROTO_PACKAGE[self.name]}.{schema_name}"

    def schema_for_type_url(self, type_url: Any) -> str | None:
        """The schema an ``Any``'s ``@type`` names, when this document defines it."""
        if type(type_url) is not str:
            return None
        if self._type_urls is None:
            self._type_urls = {self.full_name(n): n for n in self.schemas}
        return self._type_urls.get(type_url.rpartition("/")[2])

    # -- enum codec --
    def codec(self, name: str, encode: bool) -> _CodecMessage:
        key = (name, encode)
        found = self._codecs_ready.get(key)
        if found is not None:
            return found
        if name not in self.schemas:
            raise KeyError(f"{self.name} has no schema {name!r}")
        with self._lock:
            compiled = self._codec_message(name, encode)
            self._codecs_ready.update(self._codecs)
        return compiled

    def _codec_message(self, name: str, encode: bool) -> _CodecMessage:
        found = self._codecs.get((name, encode))
        if found is None:
            found = self._codecs[(name, encode)] = _CodecMessage()
            for key, prop in self.schemas[name].get("properties", {}).items():
                codec = self._codec(prop, encode)
                if codec is not None:
                    found.fields[key] = codec
        return found

    def _codec(self, schema: Mapping[str, Any], encode: bool) -> _Codec | None:
        """A function converting the enums inside values of ``schema``; None when there are none."""
        if "$ref" in schema:
            return self._codec_message(schema["$ref"], encode).apply if schema["$ref"] in self.with_enums() else None
        kind = schema.get("type")
        if kind == "array":
            inner = self._codec(schema.get("items", {}), encode)
            return None if inner is None else (lambda v: [inner(x) for x in v] if type(v) is list else v)
        if kind == "object":
            if "properties" in schema:
                inline = _CodecMessage()
                for key, prop in schema["properties"].items():
                    codec = self._codec(prop, encode)
                    if codec is not None:
                        inline.fields[key] = codec
                return inline.apply if inline.fields else None
            values = schema.get("additionalProperties")
            if _is_any(schema):
                return lambda v: self._any_codec(v, encode)
            if isinstance(values, Mapping):
                inner = self._codec(values, encode)
                if inner is None:
                    return None
                return lambda v: {k: inner(x) for k, x in v.items()} if type(v) is dict else v
            return None
        if "enum" in schema:
            numbers = _enum_numbers(tuple(schema["enum"]))
            if encode:
                return lambda v: numbers.get(v, v) if type(v) is str else v
            names = {n: name for name, n in numbers.items()}
            return lambda v: names.get(v, v) if type(v) is int else v
        return None

    def _any_codec(self, value: Any, encode: bool) -> Any:
        if type(value) is not dict:
            return value
        target = self.schema_for_type_url(value.get("@type"))
        return value if target is None else self.codec(target, encode).apply(value)

    def with_enums(self) -> frozenset[str]:
        """The schemas with an enum somewhere inside (a fixpoint: schemas refer to each other)."""
        if self._with_enums is None:
            refs: dict[str, set[str]] = {}
            found: set[str] = set()
            for name, schema in self.schemas.items():
                refs[name] = set()
                stack = [schema]
                while stack:
                    node = stack.pop()
                    if "enum" in node:
                        found.add(name)
                    if "$ref" in node:
                        refs[name].add(node["$ref"])
                    if _is_any(node):
                        found.add(name)  # an Any may hold a message with enums
                    stack.extend(node.get("properties", {}).values())
                    for key in ("items", "additionalProperties"):
                        if isinstance(node.get(key), Mapping):
                            stack.append(node[key])
            changed = True
            while changed:
                changed = False
                for name, targets in refs.items():
                    if name not in found and targets & found:
                        found.add(name)
                        changed = True
            self._with_enums = frozenset(found)
        return self._with_enums


def _is_any(schema: Mapping[str, Any]) -> bool:
    """A google.protobuf.Any: discovery shows it as a map of anything "with field @type"."""
    values = schema.get("additionalProperties")
    return (isinstance(values, Mapping) and values.get("type") == "any"
            and "@type" in values.get("description", "") + schema.get("description", ""))


_apis: dict[str, _Api] = {}
_apis_lock = threading.Lock()


def _api(api: str) -> _Api:
    found = _apis.get(api)
    if found is not None:
        return found
    if api not in APIS:
        raise ValueError(f"unknown API {api!r}; expected one of {', '.join(APIS)}")
    with _apis_lock:
        if api not in _apis:
            with open(os.path.join(documents_dir(), f"{api}.json"), encoding="utf-8") as f:
                _apis[api] = _Api(api, json.load(f))
        return _apis[api]


# ---- checking functions --------------------------------------------------------------------------
class _Invalid(Exception):
    """Raised deep inside a check; each enclosing level adds its segment on the way out, so a
    body that passes never pays for paths."""

    __slots__ = ("kind", "name", "label", "value", "segments")

    def __init__(self, kind: str, *, name: str = "", label: str = "", value: Any = None) -> None:
        self.kind = kind  # unknown | value | not_repeating | object_on_scalar
        self.name = name
        self.label = label
        self.value = value
        self.segments: list[str | int | _Key] = []  # innermost first

    @staticmethod
    def wrong(value: Any, label: str) -> _Invalid:
        if type(value) is list:
            return _Invalid("not_repeating")
        if type(value) is dict:
            return _Invalid("object_on_scalar")
        return _Invalid("value", label=label, value=value)


class _Key(str):
    """A map key in an error path, rendered ``labels["key"]`` (UNCONFIRMED: how Google's parser
    locates a map value is not documented; this is the form it uses for names that are not
    identifiers)."""


class _Message:
    __slots__ = ("label", "fields")

    def __init__(self, full_name: str) -> None:
        self.label = "type.googleapis.com/" + full_name  # how Google names the type in error texts
        self.fields: dict[str, _Check] = {}

    def check(self, value: Any, ints: bool) -> None:
        if type(value) is not dict:
            if type(value) is list:
                raise _Invalid("not_repeating")
            raise _Invalid("value", label=self.label, value=value)
        fields = self.fields
        for key, item in value.items():
            check = fields.get(key)
            if check is None:
                raise _Invalid("unknown", name=key)
            if item is None:  # JSON null: the field is not set
                continue
            try:
                check(item, ints)
            except _Invalid as error:
                error.segments.append(key)
                raise


class _CodecMessage:
    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, _Codec] = {}

    def apply(self, value: Any) -> Any:
        if type(value) is not dict or not self.fields:
            return value
        out = None
        for key, codec in self.fields.items():
            if key in value and value[key] is not None:
                new = codec(value[key])
                if new is not value[key]:
                    if out is None:
                        out = dict(value)
                    out[key] = new
        return value if out is None else out


def _accept(value: Any, ints: bool) -> None:
    return None


def _object_check(value: Any, ints: bool) -> None:
    if type(value) is not dict:
        raise _Invalid.wrong(value, "type.googleapis.com/google.protobuf.Struct")


def _array_check(element: _Check, element_label: str) -> _Check:
    def check_array(value: Any, ints: bool) -> None:
        if type(value) is not list:
            if _SCALAR_FOR_LIST_ACCEPTED:
                element(value, ints)
                return
            if type(value) is dict:
                raise _Invalid("object_on_scalar" if not element_label.startswith("type.") else "value",
                               label=element_label, value=value)
            raise _Invalid("value", label=element_label, value=value)
        for index, item in enumerate(value):
            try:
                if item is None:
                    raise _Invalid("value", label=element_label, value=None)
                element(item, ints)
            except _Invalid as error:
                error.segments.append(index)
                raise

    return check_array


def _map_check(values: _Check) -> _Check:
    def check_map(value: Any, ints: bool) -> None:
        if type(value) is not dict:
            raise _Invalid.wrong(value, "map")
        for key, item in value.items():
            if item is None:
                continue
            try:
                values(item, ints)
            except _Invalid as error:
                error.segments.append(_Key(key))
                raise

    return check_map


def _string_check(pattern: re.Pattern[str] | None, label: str) -> _Check:
    if pattern is None:
        def check_string(value: Any, ints: bool) -> None:
            if type(value) is not str:
                raise _Invalid.wrong(value, label)
        return check_string

    fullmatch = pattern.fullmatch

    def check_formatted(value: Any, ints: bool) -> None:
        if type(value) is not str or fullmatch(value) is None:
            raise _Invalid.wrong(value, label)

    return check_formatted


def _bytes_check(value: Any, ints: bool) -> None:
    # Google accepts standard and URL-safe base64, padded or not.
    if type(value) is str:
        text = value.rstrip("=")
        try:
            base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
            if len(value) - len(text) <= 2:
                return
        except (binascii.Error, ValueError):
            pass
    raise _Invalid.wrong(value, "TYPE_BYTES")


def _integer_check(low: int, high: int, label: str) -> _Check:
    def check_integer(value: Any, ints: bool) -> None:
        kind = type(value)
        if kind is int:
            if low <= value <= high:
                return
        elif kind is float:
            if value.is_integer() and low <= value <= high:
                return
        elif kind is str:
            if _DECIMAL.fullmatch(value) and low <= int(value) <= high:
                return
        raise _Invalid.wrong(value, label)

    return check_integer


def _number_check(single: bool) -> _Check:
    label = "TYPE_FLOAT" if single else "TYPE_DOUBLE"

    def check_number(value: Any, ints: bool) -> None:
        kind = type(value)
        if kind is int or kind is float:
            number = value
        elif kind is str and value in ("NaN", "Infinity", "-Infinity"):
            return
        elif kind is str:
            try:
                number = float(value)
            except ValueError:
                raise _Invalid.wrong(value, label) from None
            if not math.isfinite(number):
                raise _Invalid.wrong(value, label)
        else:
            raise _Invalid.wrong(value, label)
        if single and abs(number) > _FLOAT32_MAX:
            raise _Invalid.wrong(value, label)

    return check_number


def _bool_check(value: Any, ints: bool) -> None:
    # Google's parser also takes "true"/"false" strings; no real client sends them, and refusing
    # them keeps backends free of string booleans.
    if type(value) is not bool:
        raise _Invalid.wrong(value, "TYPE_BOOL")


def _enum_check(names: frozenset[str], numbers: frozenset[int]) -> _Check:
    def check_enum(value: Any, ints: bool) -> None:
        kind = type(value)
        if kind is str:
            if value in names:
                return
        elif kind is int and ints:
            if value in numbers:
                return
        raise _Invalid.wrong(value, "TYPE_ENUM")

    return check_enum


def _enum_numbers(values: tuple[str, ...]) -> dict[str, int]:
    """Proto numbers of an enum's values (a value missing from a known non-dense enum has none)."""
    known = _PROTO_ENUM_NUMBERS.get(values[0]) if values else None
    if known is not None:
        return {name: known[name] for name in values if name in known}
    return {name: index for index, name in enumerate(values)}


# ---- error texts -----------------------------------------------------------------------------------
def _snake(name: str) -> str:
    """Google's error locations use proto field names: lowerCamel JSON names back to snake_case."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])", r"_\1\2", name).lower()


def _render(segments: list[str | int | _Key], snake: bool) -> str:
    text = ""
    for segment in segments:
        if isinstance(segment, _Key):
            text += "[" + json.dumps(str(segment)) + "]"
        elif isinstance(segment, int):
            text += f"[{segment}]"
        else:
            name = _snake(segment) if snake else segment
            text += f".{name}" if text else name
    return text


def _join(root: str, rest: str) -> str:
    if not root:
        return rest
    if not rest:
        return root
    return root + ("" if rest.startswith("[") else ".") + rest


def _value_text(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _to_schema_error(error: _Invalid, root: str) -> SchemaError:
    segments = list(reversed(error.segments))
    if error.kind == "unknown":
        where = _join(root, _render(segments, snake=True))
        at = f" at '{where}'" if where else ""
        return SchemaError(f'Invalid JSON payload received. Unknown name "{error.name}"{at}: Cannot find field.',
                           path=_render([*segments, error.name], snake=False), field=where)
    path = _render(segments, snake=False)
    if error.kind in ("not_repeating", "object_on_scalar"):
        # Google names the field and locates its parent message.
        fields = [i for i, s in enumerate(segments) if isinstance(s, str) and not isinstance(s, _Key)]
        last = fields[-1] if fields else None
        name = segments[last] if last is not None else ""
        parent = _join(root, _render(segments[:last] if last is not None else segments, snake=True))
        at = f" at '{parent}'" if parent else ""
        if error.kind == "not_repeating":
            message = (f'Invalid JSON payload received. Unknown name "{name}"{at}: '
                       "Proto field is not repeating, cannot start list.")
        else:
            message = f"Invalid value{at} ({_snake(str(name))}), Starting an object on a scalar field"
        return SchemaError(message, path=path, field=parent)
    where = _join(root, _render(segments, snake=True))
    at = f" at '{where}'" if where else ""
    return SchemaError(f"Invalid value{at} ({error.label}), {_value_text(error.value)}", path=path, field=where)


def root_name(schema_name: str) -> str:
    """The first segment of Google's error locations for a body of this schema ("" for a whole
    request message), e.g. Firewall -> firewall, GoogleCloudRunV2Service -> service."""
    if schema_name.endswith(_WHOLE_REQUEST_SUFFIX):
        return ""
    short = schema_name
    for prefix, _ in _FOREIGN_PREFIXES:
        if short.startswith(prefix) and len(short) > len(prefix):
            short = short[len(prefix):]
            break
    return _snake(short[:1].lower() + short[1:])


# ---- public functions ------------------------------------------------------------------------------
def method(api: API | str, method_id: str) -> MethodInfo:
    """The discovery method ``method_id`` of ``api`` (KeyError when the document has none)."""
    found = _api(api).methods.get(method_id)
    if found is None:
        raise KeyError(f"{api} has no method {method_id!r}")
    return found


def methods(api: API | str) -> Mapping[str, MethodInfo]:
    """Every method of ``api`` by id."""
    return MappingProxyType(_api(api).methods)


def find_method(api: API | str, http_method: str, path: str) -> MethodInfo | None:
    """The method a request is for, from its URL path as the real host sees it (service path
    included, e.g. ``compute/v1/projects/p/global/firewalls`` or ``v2/projects/p/locations/r/jobs``;
    no query). None when no method matches."""
    return _api(api).find_method(http_method, path.split("?", 1)[0])


def validate(api: API | str, schema_name: str, body: Any, *, enums_as_int: bool = False,
             root: str | None = None) -> None:
    """Raise SchemaError when Google's JSON parser would refuse ``body`` as a ``schema_name``.

    ``enums_as_int`` accepts enum numbers besides names (``$alt=json;enum-encoding=int``).
    ``root`` overrides the first segment of the error location (default: ``root_name``).
    """
    compiled = _api(api).message(schema_name)
    if type(body) is not dict:
        raise SchemaError('Invalid JSON payload received. Unknown name "": Root element must be a message.')
    try:
        compiled.check(body, enums_as_int)
    except _Invalid as error:
        raise _to_schema_error(error, root_name(schema_name) if root is None else root) from None


def validate_request(api: API | str, method_id: str, body: Any, *, enums_as_int: bool = False) -> None:
    """Check a request body for ``method_id``; no body (None) is an empty message."""
    info = method(api, method_id)
    if info.request_schema is None:
        _refuse_unexpected_body(body)
        return
    validate(api, info.request_schema, {} if body is None else body, enums_as_int=enums_as_int)


def validate_response(api: API | str, method_id: str, body: Any, *, enums_as_int: bool = False) -> None:
    """Check a response body for ``method_id`` (a method without a response schema answers {})."""
    info = method(api, method_id)
    if info.response_schema is None:
        _refuse_unexpected_body(body)
        return
    validate(api, info.response_schema, {} if body is None else body, enums_as_int=enums_as_int)


def _refuse_unexpected_body(body: Any) -> None:
    if body is None or body == {}:
        return
    if type(body) is dict:
        name = next(iter(body))
        raise SchemaError(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.', path=name)
    raise SchemaError('Invalid JSON payload received. Unknown name "": Root element must be a message.')


def decode_enums(api: API | str, schema_name: str, body: Any) -> Any:
    """Enum numbers to names, for request bodies sent with ``$alt=json;enum-encoding=int``.

    Returns a new body (the input is not changed; untouched parts are shared). Values that are
    not enum numbers of their field are left as they are: validate first to refuse them.
    """
    return _api(api).codec(schema_name, encode=False).apply(body)


def encode_enums(api: API | str, schema_name: str, body: Any) -> Any:
    """Enum names to proto numbers, for response bodies to clients that asked for integers.

    Names without a known number (newer than the installed protos) stay names, which those
    clients' JSON parsers skip as unknown values.
    """
    return _api(api).codec(schema_name, encode=True).apply(body)


_output_only_cache: dict[tuple[str, str], frozenset[str]] = {}
_OUTPUT_ONLY = re.compile(r"\[output only\]|^\s*output only\b", re.IGNORECASE)


def output_only_fields(api: API | str, schema_name: str) -> frozenset[str]:
    """Top-level fields of ``schema_name`` that Google fills and ignores in requests."""
    key = (api, schema_name)
    found = _output_only_cache.get(key)
    if found is None:
        schemas = _api(api).schemas
        if schema_name not in schemas:
            raise KeyError(f"{api} has no schema {schema_name!r}")
        found = frozenset(
            name for name, prop in schemas[schema_name].get("properties", {}).items()
            if prop.get("readOnly") or _OUTPUT_ONLY.search(prop.get("description", ""))
        )
        _output_only_cache[key] = found
    return found


def schema(api: API | str, schema_name: str) -> Mapping[str, Any]:
    """The raw discovery schema (read-only use)."""
    schemas = _api(api).schemas
    if schema_name not in schemas:
        raise KeyError(f"{api} has no schema {schema_name!r}")
    return schemas[schema_name]
