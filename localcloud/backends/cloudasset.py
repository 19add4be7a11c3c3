"""Cloud Asset Inventory's ``searchAllResources`` over what the other backends hold (compute,
vpcaccess, run, functions), within a project, a folder or an organization of the hierarchy
(``resourcemanager``). State: none of its own; no HTTP (routes: ``localcloud/routes/cloudasset.py``).

What it answers, per the ``cloudasset.v1`` discovery document (``ResourceSearchResult``): the full
resource name (``//SERVICE/RELATIVE``), ``assetType``, ``project`` (``projects/NUMBER``), ``folders``,
``organization``, ``displayName``, ``location``, ``state`` where the resource has one, ``labels``,
``parentFullResourceName`` / ``parentAssetType`` (the project), and ``versionedResources`` (the
resource as its own API's JSON, ``{"version", "resource"}``) only when the read mask asks for it,
as Google's does. Results are sorted by name and cut into pages from an offset; Google's order is
not documented, so nothing may rely on it.

Not emulated, loudly: a non-empty ``query`` (501) and ``orderBy`` (501).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from localcloud.backends.resourcemanager import ResourceManagerBackend, permission_denied
from localcloud.backends.vpcaccess import project_number
from localcloud.errors import ApiError, invalid
from localcloud.world import World

PERMISSION = "cloudasset.assets.searchAllResources"
MAX_PAGE_SIZE = 500  # "Page size is capped at 500 even if a larger value is given" (discovery)
DEFAULT_PAGE_SIZE = 100
_CURSORS = 64  # searches whose next page is kept  # "server will pick an appropriate default": not documented; ours

# The fields returned without a read mask (discovery, readMask), and every field a mask may name.
DEFAULT_FIELDS = ("name", "assetType", "project", "folders", "organization", "displayName", "description",
                  "location", "labels", "tags", "effectiveTags", "networkTags", "kmsKeys", "createTime", "updateTime",
                  "state", "additionalAttributes", "parentFullResourceName", "parentAssetType")
ALL_FIELDS = DEFAULT_FIELDS + ("versionedResources", "attachedResources", "relationships", "tagKeys", "tagValues",
                               "tagValueIds", "kmsKey", "sccSecurityMarks", "enrichments")


@dataclass(frozen=True)
class Asset:
    asset_type: str
    service: str  # e.g. compute.googleapis.com
    project: str
    location: str
    relative: str  # projects/P/...
    resource: dict[str, Any]  # the resource as its API returns it
    version: str
    state: str = ""
    labels: dict[str, str] | None = None
    # The resource as its API returns it, from what the backend stores (a copy): made only for the
    # results of the page answered.
    shape: Callable[[dict[str, Any]], dict[str, Any]] = copy.deepcopy


class CloudAssetBackend:
    """Registered as ``world.backends["cloudasset"]``."""

    def __init__(self, world: World, hierarchy: ResourceManagerBackend) -> None:
        self.world = world
        self.hierarchy = hierarchy
        self._cursors: dict[str, list[Asset]] = {}  # next page token -> the search's listing
        # asset type -> every asset of that type in the world (all projects)
        self.kinds: dict[str, Callable[[], Iterator[Asset]]] = {
            "vpcaccess.googleapis.com/Connector": self._connectors,
            "compute.googleapis.com/Subnetwork": lambda: self._compute("compute.subnetworks", "Subnetwork"),
            "compute.googleapis.com/Router": lambda: self._compute("compute.routers", "Router"),
            "compute.googleapis.com/Firewall": lambda: self._compute("compute.firewalls", "Firewall"),
            "run.googleapis.com/Service": lambda: self._run("SERVICE"),
            "run.googleapis.com/Job": lambda: self._run("JOB"),
            "run.googleapis.com/WorkerPool": lambda: self._run("WORKER_POOL"),
            "cloudfunctions.googleapis.com/Function": self._functions,
            "appengine.googleapis.com/Version": self._app_engine_versions,
        }

    def reset(self) -> None:
        self._cursors.clear()

    # ---- the search -------------------------------------------------------------------------------
    def search(self, scope: str, *, principal: str, asset_types: tuple[str, ...], query: str, page_size: int,
               page_token: str, read_mask: str, order_by: str = "") -> dict[str, Any]:
        if query.strip():
            raise ApiError(501, "localcloud emulates searchAllResources without a query only", status="UNIMPLEMENTED")
        if order_by.strip():
            raise ApiError(501, "localcloud does not emulate orderBy", status="UNIMPLEMENTED")
        fields = _mask(read_mask)
        types = self._types(asset_types)
        projects = self._projects_in(scope, principal)
        size = MAX_PAGE_SIZE if page_size > MAX_PAGE_SIZE else (page_size if page_size > 0 else DEFAULT_PAGE_SIZE)
        signature = hashlib.sha256(json.dumps([scope, sorted(types), query, read_mask]).encode()).hexdigest()[:12]
        start = _offset(page_token, signature)
        inside: dict[str, bool] = {}  # project -> in the scope (asked once per project, not per resource)
        with self.world.lock:
            # A later page continues the first page's listing (a search reads an index, not the live
            # state), so the scope is filtered and sorted once per search, not once per page.
            found = self._cursors.pop(page_token, None) if page_token else None
            if found is None:
                found = sorted((a for t in types for a in self.kinds[t]()
                                if inside.setdefault(a.project, projects(a.project))),
                               key=lambda a: (f"//{a.service}/{a.relative}"))
            page = [self._result(a, fields) for a in found[start:start + size]]
        body: dict[str, Any] = {}
        if page:
            body["results"] = page
        if start + size < len(found):
            token = base64.urlsafe_b64encode(f"{signature}:{start + size}".encode()).decode()
            body["nextPageToken"] = token
            with self.world.lock:
                self._cursors[token] = found
                while len(self._cursors) > _CURSORS:
                    self._cursors.pop(next(iter(self._cursors)))
        return body

    def _types(self, asset_types: tuple[str, ...]) -> list[str]:
        if not asset_types:
            return list(self.kinds)
        chosen: list[str] = []
        for wanted in asset_types:
            if wanted in self.kinds:
                matched = [wanted]
            else:
                try:
                    pattern = re.compile(wanted)
                except re.error:
                    raise invalid(f"Invalid asset type regular expression: {wanted}") from None
                matched = [t for t in self.kinds if pattern.fullmatch(t)]
            if not matched:
                raise invalid(f"Asset type {wanted} is not supported or does not match any supported asset type.")
            chosen += [t for t in matched if t not in chosen]
        return chosen

    def _projects_in(self, scope: str, principal: str) -> Callable[[str], bool]:
        kind, _, ident = scope.partition("/")
        if kind == "projects":
            project = ident if not ident.isdigit() else self._project_with_number(ident)
            return lambda p: p == project
        if kind in ("folders", "organizations") and ident.isdigit():
            if not self.hierarchy.readable(scope, principal):
                raise permission_denied(scope, PERMISSION)
            return lambda p: scope in self.hierarchy.ancestors(p)
        raise invalid(f"Invalid scope: {scope}. The allowed values are projects/{{PROJECT_ID}}, "
                      "projects/{PROJECT_NUMBER}, folders/{FOLDER_NUMBER} and organizations/{ORGANIZATION_NUMBER}.")

    def _project_with_number(self, number: str) -> str | None:
        projects = {a.project for kind in self.kinds.values() for a in kind()}
        return next((p for p in sorted(projects) if project_number(p) == number), None)

    def _result(self, asset: Asset, fields: frozenset[str]) -> dict[str, Any]:
        ancestors = self.hierarchy.ancestors(asset.project)
        number = project_number(asset.project)
        full: dict[str, Any] = {
            "name": f"//{asset.service}/{asset.relative}", "assetType": asset.asset_type,
            "project": f"projects/{number}", "displayName": asset.relative.rpartition("/")[2],
            "parentFullResourceName": f"//cloudresourcemanager.googleapis.com/projects/{number}",
            "parentAssetType": "cloudresourcemanager.googleapis.com/Project",
            "versionedResources": [{"version": asset.version, "resource": asset.shape(asset.resource)}],
        }
        folders = [a for a in ancestors if a.startswith("folders/")]
        if folders:
            full["folders"] = folders
        organization = next((a for a in ancestors if a.startswith("organizations/")), None)
        if organization:
            full["organization"] = organization
        if asset.location:
            full["location"] = asset.location
        if asset.state:
            full["state"] = asset.state
        if asset.labels:
            full["labels"] = dict(asset.labels)
        return {k: v for k, v in full.items() if k in fields}

    # ---- what the other backends hold -------------------------------------------------------------
    def _connectors(self) -> Iterator[Asset]:
        from localcloud.backends.vpcaccess import CONNECTORS, view

        for (project, region, _), stored in self.world.table(CONNECTORS).items():
            yield Asset("vpcaccess.googleapis.com/Connector", "vpcaccess.googleapis.com", project, region,
                        stored["name"], stored, "v1", state=str(stored.get("state", "")),
                        shape=lambda c: view(c, "v1"))

    def _compute(self, table: str, kind: str) -> Iterator[Asset]:
        for key, stored in self.world.table(table).items():
            project, name = key[0], key[-1]
            region = key[1] if len(key) == 3 else "global"
            relative = (f"projects/{project}/global/firewalls/{name}" if kind == "Firewall" else
                        f"projects/{project}/regions/{region}/{kind.lower()}s/{name}")
            yield Asset(f"compute.googleapis.com/{kind}", "compute.googleapis.com", project, region, relative,
                        stored, "v1")

    def _run(self, kind: str) -> Iterator[Asset]:
        from localcloud.backends.run import RESOURCES

        asset_type = {"SERVICE": "Service", "JOB": "Job", "WORKER_POOL": "WorkerPool"}[kind]
        for (k, project, region, _), record in self.world.table(RESOURCES).items():
            if k != kind:
                continue
            resource = record["resource"]
            yield Asset(f"run.googleapis.com/{asset_type}", "run.googleapis.com", project, region,
                        resource["name"], resource, "v2", labels=resource.get("labels"))

    def _functions(self) -> Iterator[Asset]:
        from localcloud.backends.functions import FUNCTIONS

        for (project, region, _), function in self.world.table(FUNCTIONS).items():
            yield Asset("cloudfunctions.googleapis.com/Function", "cloudfunctions.googleapis.com", project, region,
                        function["name"], function, "v2", state=str(function.get("state", "")),
                        labels=function.get("labels"))


    def _app_engine_versions(self) -> Iterator[Asset]:
        from localcloud.backends.appengine import VERSIONS

        # "The location field might not be populated for App Engine assets" (asset types page): none here.
        for (app, _, _), version in self.world.table(VERSIONS).items():
            yield Asset("appengine.googleapis.com/Version", "appengine.googleapis.com", app, "", version["name"],
                        version, "v1", state=str(version.get("servingStatus", "")))


def _mask(read_mask: str) -> frozenset[str]:
    if not read_mask.strip():
        return frozenset(DEFAULT_FIELDS)
    fields = [f.strip() for f in read_mask.split(",") if f.strip()]
    if fields == ["*"]:
        return frozenset(ALL_FIELDS)
    unknown = [f for f in fields if f not in ALL_FIELDS]
    if unknown:
        raise invalid(f"Invalid field path in read_mask: {unknown[0]}")
    return frozenset(fields)


def _offset(token: str, signature: str) -> int:
    if not token:
        return 0
    try:
        sig, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if sig == signature and offset.isdigit():
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise invalid("Invalid page token: it must come from a previous call with the same parameters.")
