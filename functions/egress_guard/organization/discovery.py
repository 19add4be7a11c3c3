"""Discovery: every resource a sweep decides on, in every project under an organization or folder,
from Cloud Asset Inventory's ``searchAllResources`` (docs/gcp-facts.md §17).

One search per scope, all asset types at once, ``ASSET_PAGE_SIZE`` results a page: the calls grow
with pages, never with projects. Each result is kept with its ``versionedResources`` (the resource
as its own API's JSON), so the snapshot (``snapshot.py``) can be planned without another read. The
search reads everything before anything is decided, so a scope that cannot be read (403: it does
not exist or the caller may not search it) stops the run before any change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import api
from ..errors import InvalidName

if TYPE_CHECKING:
    from ..clients import Clients

# What a sweep decides on, one asset type each (docs/gcp-facts.md §17.2). The one list: to cover a
# new kind of workload, add its type here and its parser in snapshot.ASSET_PARSERS.
ASSET_TYPES: tuple[str, ...] = (
    "vpcaccess.googleapis.com/Connector",
    "compute.googleapis.com/Subnetwork",
    "compute.googleapis.com/Router",
    "compute.googleapis.com/Firewall",
    "run.googleapis.com/Service",
    "run.googleapis.com/Job",
    "run.googleapis.com/WorkerPool",
    "cloudfunctions.googleapis.com/Function",
    "appengine.googleapis.com/Version",
)
# Sent as one RE2 alternation, not as a list: Google answers INVALID_ARGUMENT when an asset type
# "does not match any supported asset type", so one type it does not support (worker pools, 2nd gen
# functions: UNCONFIRMED, docs/gcp-facts.md §17.2) would fail the whole search as a list item, while
# in an alternation it simply matches nothing.
ASSET_TYPES_PATTERN = "(" + "|".join(t.replace(".", "\\.") for t in ASSET_TYPES) + ")"
# "Page size is capped at 500 even if a larger value is given" (cloudasset v1 discovery document).
ASSET_PAGE_SIZE = 500
# The fields read: where each resource is, and the resource itself (not returned without asking).
READ_MASK = "name,assetType,project,folders,organization,location,versionedResources"
SEARCH_METHOD = "cloudasset.searchAllResources"

_SCOPE = re.compile(r"^(organizations|folders)/(\d{1,19})$")
_FULL_NAME = re.compile(r"^//[a-z.]+\.googleapis\.com/((?:projects|apps)/([^/]+)/.+)$")


@dataclass(frozen=True)
class Scope:
    """Where to search: ``organizations/N``, ``folders/N`` or ``projects/P``."""

    name: str

    @classmethod
    def parse(cls, kind: str, value: str) -> "Scope":
        """``kind`` is ``organizations``, ``folders`` or ``projects``; the value is the number (or
        ``KIND/NUMBER``) or, for a project, its id."""
        from ..names import validate_project

        text = str(value).strip()
        if kind == "projects":
            return cls(f"projects/{validate_project(text.removeprefix('projects/'), '--project')}")
        candidate = text if text.startswith(f"{kind}/") else f"{kind}/{text}"
        if not _SCOPE.match(candidate) or not candidate.startswith(kind):
            flag = "--organization" if kind == "organizations" else "--folder"
            raise InvalidName(f"{flag}: {value!r} is not a number or {kind}/NUMBER")
        return cls(candidate)


@dataclass(frozen=True)
class Asset:
    """One search result: where it is and the resource as its API's JSON (None when the result
    carried no version of it)."""

    asset_type: str
    project: str  # the project id, from the full resource name
    location: str
    folders: tuple[str, ...]
    version: str
    resource: Mapping[str, Any] | None


@dataclass
class Discovery:
    """Every asset found, by project, and the calls it took."""

    assets: dict[str, list[Asset]] = field(default_factory=dict)  # project id -> its assets
    pages: int = 0
    unnamed: int = 0  # results whose full name names no project (not decidable; counted, not dropped silently)

    def add(self, asset: Asset) -> None:
        self.assets.setdefault(asset.project, []).append(asset)

    def folders_of(self, project: str) -> tuple[str, ...]:
        return next((a.folders for a in self.assets.get(project, ()) if a.folders), ())

    def of_type(self, asset_type: str, projects: Iterable[str] | None = None) -> list[Asset]:
        chosen = self.assets.keys() if projects is None else projects
        return [a for p in chosen for a in self.assets.get(p, ()) if a.asset_type == asset_type]


def discover(clients: "Clients", scopes: Iterable[Scope], *, on_page: Any = None) -> Discovery:
    """Search each scope for ``ASSET_TYPES``, every page. Raises ``PermanentError`` (403: the scope
    does not exist or may not be searched; 400) or ``TransientError`` before anything is decided."""
    from google.cloud import asset_v1

    found = Discovery()
    for scope in scopes:
        request = asset_v1.SearchAllResourcesRequest(scope=scope.name, asset_types=[ASSET_TYPES_PATTERN],
                                                      page_size=ASSET_PAGE_SIZE, read_mask=READ_MASK)
        with api.classified(f"{SEARCH_METHOD} {scope.name}"):
            pager = clients.assets.search_all_resources(request=request, **api.read_options())
            for page in pager.pages:
                found.pages += 1
                for result in page.results:
                    asset = _asset(result)
                    if asset is None:
                        found.unnamed += 1
                    else:
                        found.add(asset)
                if on_page is not None:
                    on_page(found.pages)
    return found


def _asset(result: Any) -> Asset | None:
    """A ``ResourceSearchResult`` as an ``Asset``; None when its name names no project. The project is
    read from the full resource name (ids: ``project`` itself is a number, docs/gcp-facts.md §17.3)."""
    from google.protobuf.json_format import MessageToDict

    matched = _FULL_NAME.match(result.name or "")
    if matched is None:
        return None
    project = matched.group(2)
    version, resource = "", None
    for versioned in result.versioned_resources:
        version = versioned.version
        resource = MessageToDict(versioned._pb.resource) if versioned._pb.HasField("resource") else None
        break
    return Asset(asset_type=result.asset_type, project=project, location=result.location or "",
                 folders=tuple(result.folders), version=version, resource=resource)
