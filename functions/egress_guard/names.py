"""Names taken from events and policy, validated before they reach any URL.

Every name that egress-guard puts into an API path comes through here first. Each part is
matched against Google's own pattern for it, so that a path trick (``..``, ``/``, ``%2F``,
whitespace, non-ASCII look-alikes) can never change which resource a call touches. Failures
raise ``InvalidName`` (a ``PermanentError``) that names the field and says what is wrong.

Parsed names are small frozen values (``ConnectorName``, ``RunServiceName``, ``RouterName``, ...)
that know their relative resource name (``.relative``), their Compute self-link where they have
one (``.self_link``), and their ``findings.ResourceRef`` (``.ref``).

Accepted input forms:

- Compute links: ``https://www.googleapis.com/compute/v1/projects/P/...`` (also ``beta``/``alpha``,
  ``compute.googleapis.com``), the same path on any ``http(s)://host:port`` (gcloud and the
  clients pointed at localcloud send ``http://127.0.0.1:PORT/compute/v1/projects/...``),
  ``//compute.googleapis.com/projects/...``, ``projects/P/...``, ``global/...`` / ``regions/R/...``
  (project from the caller) and a bare name (project and region from the caller). The host of
  a link is never used: only the path is kept.
- Connectors: ``projects/P/locations/R/connectors/C`` (P may be a project number, as Cloud Run v2
  allows), ``//vpcaccess.googleapis.com/projects/...``, or a bare name (Cloud Run v1 annotations).
- Cloud Run: ``projects/P/locations/R/services/S`` (v2), ``namespaces/P/services/S`` (v1; the
  region comes from elsewhere in the entry), or a bare name; the same with ``jobs``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, ClassVar, Union

from .errors import InvalidName
from .findings import ResourceRef

COMPUTE_BASE_URL = "https://www.googleapis.com/compute/v1"

# Google's patterns (resource-name rules of Resource Manager, Compute Engine and Cloud Run).
_PROJECT_ID = r"[a-z][-a-z0-9]{4,28}[a-z0-9]"
# Domain-scoped project ids look like "example.com:my-project".
_DOMAIN = r"(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
PROJECT_ID_RE = re.compile(rf"(?:{_DOMAIN}:)?{_PROJECT_ID}")
PROJECT_NUMBER_RE = re.compile(r"[1-9][0-9]{0,19}")
# Regions: "us-central1", "europe-west10", "northamerica-northeast1".
REGION_RE = re.compile(r"[a-z]{2,}(?:-[a-z]+)+[0-9]{1,2}")
# Compute Engine (RFC 1035) names; also Cloud Run service/job names and network tags.
COMPUTE_NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
# Cloud Run documents 49 characters for services and 63 for jobs. We accept up to 63 for both:
# the pattern is what keeps URLs safe, and the API itself rejects longer service names.
RUN_NAME_RE = COMPUTE_NAME_RE
# App Engine service and version ids: lowercase letters, digits and hyphens, at most 63 characters.
APP_ENGINE_ID_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
# Serverless VPC Access: a Compute name "less than 21 characters long, and hyphens (-) count as
# two characters" (docs/gcp-facts.md §1.2). So len(name) + name.count("-") must be at most 20.
CONNECTOR_NAME_MAX_WEIGHT = 20
NETWORK_TAG_RE = COMPUTE_NAME_RE
LABEL_KEY_RE = re.compile(r"[a-z][-_a-z0-9]{0,62}")
LABEL_VALUE_RE = re.compile(r"[-_a-z0-9]{0,63}")

_MAX_INPUT = 2048


# --------------------------------------------------------------------------- single parts


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# Printable ASCII without what a name or path never holds (%, backslash, ?, #): the common case,
# checked by one regex; anything else goes through the character loop below for its precise reason.
# (A sweep checks half a million names; the loop was a tenth of its time.)
_PLAIN_PATH = re.compile(r'[!"$&->@-\[\]-~]+')
_PLAIN_NAME = re.compile(r'[!"$&-.0->@-\[\]-~]+')  # and no "/"


def _check_text(value: object, field: str, *, path: bool) -> str:
    """Reject what is never part of a name or a path we accept, with a precise reason."""
    if type(value) is str and len(value) <= _MAX_INPUT and ".." not in value and \
            (_PLAIN_PATH if path else _PLAIN_NAME).fullmatch(value) is not None:
        return value
    if not isinstance(value, str):
        raise InvalidName(f"{field}: expected a string, got {type(value).__name__}", field=field)
    if not value:
        raise InvalidName(f"{field}: is empty", field=field)
    if len(value) > _MAX_INPUT:
        raise InvalidName(f"{field}: is {len(value)} characters long, too long for a resource name", field=field)
    for ch in value:
        if ord(ch) > 0x7E:
            raise InvalidName(f"{field}: {_show(value)} contains the non-ASCII character U+{ord(ch):04X}", field=field)
        if ord(ch) <= 0x20 or ch == "\x7f":
            raise InvalidName(f"{field}: {_show(value)} contains whitespace or a control character", field=field)
    if "%" in value:
        raise InvalidName(f"{field}: {_show(value)} contains percent-encoding, which names never do", field=field)
    if ".." in value:
        raise InvalidName(f"{field}: {_show(value)} contains '..'", field=field)
    for bad, what in (("\\", "a backslash"), ("?", "a query ('?')"), ("#", "a fragment ('#')")):
        if bad in value:
            raise InvalidName(f"{field}: {_show(value)} contains {what}", field=field)
    if not path and "/" in value:
        raise InvalidName(f"{field}: {_show(value)} contains '/', a name is a single path segment", field=field)
    return value


def _full(regex: re.Pattern[str], value: str) -> bool:
    return regex.fullmatch(value) is not None


def validate_project(value: object, field: str = "project", *, allow_number: bool = False) -> str:
    """A project id (``my-project``, ``example.com:my-project``), or a number when allowed."""
    text = _check_text(value, field, path=False)
    if _full(PROJECT_ID_RE, text) or (allow_number and _full(PROJECT_NUMBER_RE, text)):
        return text
    expected = "a project id or number" if allow_number else "a project id"
    raise InvalidName(
        f"{field}: {_show(text)} is not {expected} (6-30 characters: lowercase letters, digits and hyphens, "
        "starting with a letter, not ending with a hyphen)", field=field)


def validate_region(value: object, field: str = "region") -> str:
    text = _check_text(value, field, path=False)
    if _full(REGION_RE, text) and len(text) <= 63:
        return text
    raise InvalidName(f"{field}: {_show(text)} is not a region name like 'europe-west2'", field=field)


def validate_compute_name(value: object, field: str = "name") -> str:
    text = _check_text(value, field, path=False)
    if _full(COMPUTE_NAME_RE, text):
        return text
    raise InvalidName(
        f"{field}: {_show(text)} is not a Compute Engine name (1-63 characters: lowercase letters, digits "
        "and hyphens, starting with a letter, not ending with a hyphen)", field=field)


def validate_run_name(value: object, field: str = "name") -> str:
    text = _check_text(value, field, path=False)
    if _full(RUN_NAME_RE, text):
        return text
    raise InvalidName(
        f"{field}: {_show(text)} is not a Cloud Run name (lowercase letters, digits and hyphens, starting "
        "with a letter, not ending with a hyphen, at most 63 characters)", field=field)


def validate_connector_name(value: object, field: str = "connector") -> str:
    text = _check_text(value, field, path=False)
    weight = len(text) + text.count("-")
    if _full(COMPUTE_NAME_RE, text) and weight <= CONNECTOR_NAME_MAX_WEIGHT:
        return text
    if _full(COMPUTE_NAME_RE, text):
        raise InvalidName(
            f"{field}: {_show(text)} is too long for a connector: it counts {weight} characters (hyphens "
            f"count twice) and connector names must be under {CONNECTOR_NAME_MAX_WEIGHT + 1}", field=field)
    raise InvalidName(
        f"{field}: {_show(text)} is not a connector name (lowercase letters, digits and hyphens, starting "
        "with a letter, not ending with a hyphen)", field=field)


def validate_network_tag(value: object, field: str = "tag") -> str:
    text = _check_text(value, field, path=False)
    if _full(NETWORK_TAG_RE, text):
        return text
    raise InvalidName(f"{field}: {_show(text)} is not a network tag (a Compute Engine name)", field=field)


def validate_label_key(value: object, field: str = "label key") -> str:
    text = _check_text(value, field, path=False)
    if _full(LABEL_KEY_RE, text):
        return text
    raise InvalidName(f"{field}: {_show(text)} is not a label key (lowercase letters, digits, '-' and '_', "
                      "starting with a letter, at most 63 characters)", field=field)


def validate_label_value(value: object, field: str = "label value") -> str:
    if value == "":
        return ""
    text = _check_text(value, field, path=False)
    if _full(LABEL_VALUE_RE, text):
        return text
    raise InvalidName(f"{field}: {_show(text)} is not a label value (lowercase letters, digits, '-' and '_', "
                      "at most 63 characters)", field=field)


def _project_part(allow_number: bool) -> Callable[[object, str], str]:
    return lambda value, field: validate_project(value, field, allow_number=allow_number)


# --------------------------------------------------------------------------- typed names


class _Named:
    """What every typed name offers: its finding reference and its relative name as text."""

    TYPE: ClassVar[str] = ""

    @property
    def relative(self) -> str:
        raise NotImplementedError

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(type=self.TYPE, name=self.relative)

    def __str__(self) -> str:
        return self.relative


class _ComputeNamed(_Named):
    @property
    def self_link(self) -> str:
        return f"{COMPUTE_BASE_URL}/{self.relative}"



@dataclass(frozen=True)
class ConnectorName(_Named):
    """A Serverless VPC Access connector: ``projects/P/locations/R/connectors/C``."""

    project: str
    region: str
    name: str
    TYPE: ClassVar[str] = "vpcaccess.connector"

    def __post_init__(self) -> None:
        validate_project(self.project, "connector project", allow_number=True)
        validate_region(self.region, "connector region")
        validate_connector_name(self.name, "connector name")

    @property
    def relative(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/connectors/{self.name}"

    @property
    def network_tag(self) -> str:
        """The connector's unique network tag (docs/gcp-facts.md §1.4): ``vpc-connector-REGION-NAME``."""
        return f"vpc-connector-{self.region}-{self.name}"

    @property
    def aet_prefix(self) -> str:
        """Prefix of Google's automatic rules for this connector, e.g. ``aet-europewest2-my--conn``.

        INFERENCE (docs/gcp-facts.md §1.2, 4 observed names): region without hyphens, connector name with
        every hyphen doubled; the rule name is this prefix + ``-`` + a suffix (``hcfw``, ``sbntfw``...).
        """
        return f"aet-{self.region.replace('-', '')}-{self.name.replace('-', '--')}"



@dataclass(frozen=True)
class _RunName(_Named):
    project: str
    region: str
    name: str
    COLLECTION: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate_project(self.project, f"{self.TYPE} project", allow_number=True)
        validate_region(self.region, f"{self.TYPE} region")
        validate_run_name(self.name, f"{self.TYPE} name")

    @property
    def relative(self) -> str:
        """The v2 resource name, ``projects/P/locations/R/services|jobs/NAME``."""
        return f"projects/{self.project}/locations/{self.region}/{self.COLLECTION}/{self.name}"



@dataclass(frozen=True)
class RunServiceName(_RunName):
    """A Cloud Run service: ``projects/P/locations/R/services/S``."""

    COLLECTION: ClassVar[str] = "services"
    TYPE: ClassVar[str] = "run.service"


@dataclass(frozen=True)
class RunJobName(_RunName):
    """A Cloud Run job: ``projects/P/locations/R/jobs/J``."""

    COLLECTION: ClassVar[str] = "jobs"
    TYPE: ClassVar[str] = "run.job"


@dataclass(frozen=True)
class FunctionName(_Named):
    """A Cloud Function (2nd gen, and 1st gen through the v2 API): ``projects/P/locations/R/functions/F``."""

    project: str
    region: str
    name: str
    TYPE: ClassVar[str] = "cloudfunctions.function"

    def __post_init__(self) -> None:
        validate_project(self.project, "function project", allow_number=True)
        validate_region(self.region, "function region")
        validate_run_name(self.name, "function name")  # same rule: lowercase, digits, '-', at most 63

    @property
    def relative(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/functions/{self.name}"


@dataclass(frozen=True)
class AppEngineVersionName(_Named):
    """An App Engine version: ``apps/P/services/S/versions/V`` (the app id is the project id). Its name
    says no region: its traffic's region comes from its connector."""

    project: str
    service: str
    name: str  # the version id
    TYPE: ClassVar[str] = "appengine.version"

    def __post_init__(self) -> None:
        validate_project(self.project, "app")
        for value, what in ((self.service, "service"), (self.name, "version")):
            if not _full(APP_ENGINE_ID_RE, _check_text(value, f"App Engine {what}", path=False)):
                raise InvalidName(f"App Engine {what}: {_show(value)} is not an App Engine id (lowercase letters, "
                                  "digits and hyphens, at most 63 characters)", field=f"App Engine {what}")

    @property
    def region(self) -> str:
        return ""

    @property
    def relative(self) -> str:
        return f"apps/{self.project}/services/{self.service}/versions/{self.name}"


@dataclass(frozen=True)
class _GlobalComputeName(_ComputeNamed):
    project: str
    name: str
    COLLECTION: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate_project(self.project, f"{self.TYPE} project", allow_number=True)
        validate_compute_name(self.name, f"{self.TYPE} name")

    @property
    def region(self) -> str:
        return ""

    @property
    def relative(self) -> str:
        return f"projects/{self.project}/global/{self.COLLECTION}/{self.name}"



@dataclass(frozen=True)
class _RegionalComputeName(_ComputeNamed):
    project: str
    region: str
    name: str
    COLLECTION: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate_project(self.project, f"{self.TYPE} project", allow_number=True)
        validate_region(self.region, f"{self.TYPE} region")
        validate_compute_name(self.name, f"{self.TYPE} name")

    @property
    def relative(self) -> str:
        return f"projects/{self.project}/regions/{self.region}/{self.COLLECTION}/{self.name}"



@dataclass(frozen=True)
class NetworkName(_GlobalComputeName):
    COLLECTION: ClassVar[str] = "networks"
    TYPE: ClassVar[str] = "compute.network"


@dataclass(frozen=True)
class FirewallName(_GlobalComputeName):
    COLLECTION: ClassVar[str] = "firewalls"
    TYPE: ClassVar[str] = "compute.firewall"


@dataclass(frozen=True)
class SubnetworkName(_RegionalComputeName):
    COLLECTION: ClassVar[str] = "subnetworks"
    TYPE: ClassVar[str] = "compute.subnetwork"


@dataclass(frozen=True)
class RouterName(_RegionalComputeName):
    COLLECTION: ClassVar[str] = "routers"
    TYPE: ClassVar[str] = "compute.router"


@dataclass(frozen=True)
class AddressName(_RegionalComputeName):
    COLLECTION: ClassVar[str] = "addresses"
    TYPE: ClassVar[str] = "compute.address"


ComputeName = Union[NetworkName, FirewallName, SubnetworkName, RouterName, AddressName]
RunName = Union[RunServiceName, RunJobName]
# What an audit event is about (AuditEvent.resource).
ResourceName = Union[ConnectorName, RunServiceName, RunJobName, FunctionName, AppEngineVersionName, RouterName,
                     FirewallName]

_GLOBAL_COLLECTIONS: dict[str, type[_GlobalComputeName]] = {"networks": NetworkName, "firewalls": FirewallName}
_REGIONAL_COLLECTIONS: dict[str, type[_RegionalComputeName]] = {
    "subnetworks": SubnetworkName, "routers": RouterName, "addresses": AddressName}

# --------------------------------------------------------------------------- parsing

# Any http(s) host (Google's, or localcloud's 127.0.0.1:PORT) followed by the Compute API root;
# or the Cloud Asset style "//compute.googleapis.com/".
_COMPUTE_LINK_PREFIX = re.compile(
    r"(?:(?:https?:)?//[A-Za-z0-9.-]+(?::[0-9]{1,5})?/compute/(?:v1|beta|alpha)/|//compute\.googleapis\.com/)")


def _segments(path: str, field: str, value: str) -> list[str]:
    parts = path.split("/")
    if any(part == "" for part in parts):
        raise InvalidName(f"{field}: {_show(value)} has an empty path segment", field=field)
    return parts


def parse_compute_name(
    value: object,
    *,
    field: str,
    collection: str | None = None,
    default_project: str | None = None,
    default_region: str | None = None,
) -> ComputeName:
    """Parse a Compute link or relative name, in any form the module docstring lists.

    ``collection`` ("networks", "subnetworks", "firewalls", "routers", "addresses") is required for
    a bare name and, when given, must match the collection in the link.
    """
    text = _check_text(value, field, path=True)
    known = {**_GLOBAL_COLLECTIONS, **_REGIONAL_COLLECTIONS}
    if collection is not None and collection not in known:
        raise ValueError(f"unknown Compute collection {collection!r}")  # a programming error, not input
    match = _COMPUTE_LINK_PREFIX.match(text)
    if match:
        path = text[match.end():]
    elif "://" in text or text.startswith("//"):
        raise InvalidName(f"{field}: {_show(text)} is not a Compute Engine link (expected .../compute/v1/projects/...)",
                          field=field)
    else:
        path = text
    parts = _segments(path, field, text)

    project: object = default_project
    region: object = default_region
    if len(parts) >= 2 and parts[0] == "projects":
        project, parts = parts[1], parts[2:]
    if len(parts) == 1:
        found, name = collection, parts[0]
        if found is None:
            raise InvalidName(f"{field}: {_show(text)} is a bare name but the collection is unknown", field=field)
    elif len(parts) == 3 and parts[0] == "global":
        found, name = parts[1], parts[2]
    elif len(parts) == 4 and parts[0] == "regions":
        region, found, name = parts[1], parts[2], parts[3]
    else:
        raise InvalidName(
            f"{field}: {_show(text)} is not a Compute resource name (projects/P/global/COLLECTION/NAME or "
            "projects/P/regions/R/COLLECTION/NAME)", field=field)
    if found not in known:
        raise InvalidName(f"{field}: {_show(text)} names the collection {found!r}, not one egress-guard uses",
                          field=field)
    if collection is not None and found != collection:
        raise InvalidName(f"{field}: {_show(text)} is a {found} name, expected {collection}", field=field)
    if project is None:
        raise InvalidName(f"{field}: {_show(text)} does not say which project it is in", field=field)
    project_id = validate_project(project, f"{field} (project)", allow_number=True)
    compute_name = validate_compute_name(name, f"{field} (name)")
    if found in _GLOBAL_COLLECTIONS:
        if len(parts) == 4:
            raise InvalidName(f"{field}: {_show(text)}: {found} are global, not regional", field=field)
        return _GLOBAL_COLLECTIONS[found](project_id, compute_name)
    if len(parts) == 3:
        raise InvalidName(f"{field}: {_show(text)}: {found} are regional, not global", field=field)
    if region is None:
        raise InvalidName(f"{field}: {_show(text)} does not say which region it is in", field=field)
    return _REGIONAL_COLLECTIONS[found](project_id, validate_region(region, f"{field} (region)"), compute_name)


def parse_network(value: object, *, field: str, default_project: str | None = None) -> NetworkName:
    result = parse_compute_name(value, field=field, collection="networks", default_project=default_project)
    assert isinstance(result, NetworkName)
    return result


def parse_subnetwork(value: object, *, field: str, default_project: str | None = None,
                     default_region: str | None = None) -> SubnetworkName:
    result = parse_compute_name(value, field=field, collection="subnetworks", default_project=default_project,
                                default_region=default_region)
    assert isinstance(result, SubnetworkName)
    return result


def parse_router(value: object, *, field: str, default_project: str | None = None,
                 default_region: str | None = None) -> RouterName:
    result = parse_compute_name(value, field=field, collection="routers", default_project=default_project,
                                default_region=default_region)
    assert isinstance(result, RouterName)
    return result


def parse_firewall(value: object, *, field: str, default_project: str | None = None) -> FirewallName:
    result = parse_compute_name(value, field=field, collection="firewalls", default_project=default_project)
    assert isinstance(result, FirewallName)
    return result


def parse_address(value: object, *, field: str, default_project: str | None = None,
                  default_region: str | None = None) -> AddressName:
    result = parse_compute_name(value, field=field, collection="addresses", default_project=default_project,
                                default_region=default_region)
    assert isinstance(result, AddressName)
    return result


_VPCACCESS_PREFIX = re.compile(r"(?://vpcaccess\.googleapis\.com/|https://vpcaccess\.googleapis\.com/v1(?:beta1)?/)")


def parse_connector(value: object, *, field: str, default_project: str | None = None,
                    default_region: str | None = None) -> ConnectorName:
    """``projects/P/locations/R/connectors/C`` (P may be a number) or a bare connector name."""
    text = _check_text(value, field, path=True)
    match = _VPCACCESS_PREFIX.match(text)
    path = text[match.end():] if match else text
    parts = _segments(path, field, text)
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations" and parts[4] == "connectors":
        project: object = parts[1]
        region: object = parts[3]
        name = parts[5]
    elif len(parts) == 1:
        project, region, name = default_project, default_region, parts[0]
        if project is None or region is None:
            raise InvalidName(f"{field}: {_show(text)} is a bare connector name and the project or region "
                              "is unknown", field=field)
    else:
        raise InvalidName(f"{field}: {_show(text)} is not a connector name "
                          "(projects/PROJECT/locations/REGION/connectors/NAME)", field=field)
    return ConnectorName(
        validate_project(project, f"{field} (project)", allow_number=True),
        validate_region(region, f"{field} (region)"),
        validate_connector_name(name, f"{field} (name)"),
    )


def _parse_run(value: object, cls: type[_RunName], *, field: str, default_project: str | None,
               default_region: str | None) -> _RunName:
    text = _check_text(value, field, path=True)
    parts = _segments(text, field, text)
    collection = cls.COLLECTION
    project: object
    region: object
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations" and parts[4] == collection:
        project, region, name = parts[1], parts[3], parts[5]
    elif len(parts) == 4 and parts[0] == "namespaces" and parts[2] == collection:
        # Cloud Run v1 (Knative) names carry no region; the entry says it elsewhere.
        project, region, name = parts[1], default_region, parts[3]
    elif len(parts) == 1:
        project, region, name = default_project, default_region, parts[0]
    else:
        raise InvalidName(f"{field}: {_show(text)} is not a Cloud Run {collection[:-1]} name "
                          f"(projects/P/locations/R/{collection}/NAME or namespaces/P/{collection}/NAME)", field=field)
    if project is None or region is None:
        raise InvalidName(f"{field}: {_show(text)} does not say its project and region", field=field)
    return cls(
        validate_project(project, f"{field} (project)", allow_number=True),
        validate_region(region, f"{field} (region)"),
        validate_run_name(name, f"{field} (name)"),
    )


def parse_run_service(value: object, *, field: str, default_project: str | None = None,
                      default_region: str | None = None) -> RunServiceName:
    result = _parse_run(value, RunServiceName, field=field, default_project=default_project,
                        default_region=default_region)
    assert isinstance(result, RunServiceName)
    return result


def parse_run_job(value: object, *, field: str, default_project: str | None = None,
                  default_region: str | None = None) -> RunJobName:
    result = _parse_run(value, RunJobName, field=field, default_project=default_project,
                        default_region=default_region)
    assert isinstance(result, RunJobName)
    return result


def parse_function(value: object, *, field: str, default_project: str | None = None,
                   default_region: str | None = None) -> FunctionName:
    """``projects/P/locations/R/functions/F`` (or a bare name with defaults) -> ``FunctionName``."""
    text = _check_text(value, field, path=True)
    parts = _segments(text, field, text)
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations" and parts[4] == "functions":
        project, region, name = parts[1], parts[3], parts[5]
    elif len(parts) == 1 and default_project is not None and default_region is not None:
        project, region, name = default_project, default_region, parts[0]
    else:
        raise InvalidName(f"{field}: {_show(text)} is not a Cloud Functions name "
                          "(projects/P/locations/R/functions/NAME)", field=field)
    return FunctionName(validate_project(project, f"{field} (project)", allow_number=True),
                        validate_region(region, f"{field} (region)"), validate_run_name(name, f"{field} (name)"))


def parse_app_engine_version(value: object, *, field: str) -> AppEngineVersionName:
    """``apps/P/services/S/versions/V`` -> ``AppEngineVersionName``."""
    text = _check_text(value, field, path=True)
    parts = _segments(text, field, text)
    if len(parts) == 6 and parts[0] == "apps" and parts[2] == "services" and parts[4] == "versions":
        return AppEngineVersionName(validate_project(parts[1], f"{field} (app)"), parts[3], parts[5])
    raise InvalidName(f"{field}: {_show(text)} is not an App Engine version name (apps/P/services/S/versions/V)",
                      field=field)
