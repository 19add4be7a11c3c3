"""What every compute resource kind shares: the world, path-parameter checks, table lookups (a
404 in Google's words when a resource is not there), the get / list / aggregatedList reads every
kind answers alike, links, and the shapes of a list answer and of a planned write (``Mutation``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from localcloud.backends.compute.common import (
    KNOWN_REGIONS,
    _NAME_OR_ID,
    _NAME_OR_ID_TEXT,
    _PROJECT,
    _PROJECT_TEXT,
    _REGION,
    _REGION_TEXT,
    _bad_parameter,
    _field_error,
)
from localcloud.backends.compute.listing import Cursors, Items, ListQuery
from localcloud.errors import not_found


# ---- the plan a write hands to the route --------------------------------------------------------
@dataclass(frozen=True)
class Mutation:
    """A checked write: the route starts a compute operation that runs ``apply`` when it completes."""

    project: str
    region: str | None
    operation_type: str  # as Google writes it: insert, delete, patch, update, setLabels, ...
    target_link: str
    target_id: str
    resource_name: str  # for the audit entry, e.g. projects/P/global/firewalls/N
    resource_type: str  # gce_firewall_rule, gce_router, gce_network, gce_subnetwork, ...
    resource_labels: Mapping[str, str]
    apply: Callable[[], None]
    done_at_once: bool = False  # Google answers setLabels with an operation already DONE (REAL)


class ComputeBase:
    """The world the compute resources live in, the checks every path parameter gets, and the
    shapes every list and write answers with. Each resource kind adds its methods in a mixin."""

    def __init__(self, world) -> None:
        self.world = world
        self.cursors = Cursors()  # lists being paged (listing.py)

    def reset(self) -> None:
        """World.reset clears the tables; the lists being paged go with them."""
        self.cursors.clear()

    # ---- path parameters ----------------------------------------------------------------------
    @staticmethod
    def check_project(project: str) -> None:
        if not _PROJECT.fullmatch(project or ""):
            raise _bad_parameter(project, _PROJECT_TEXT)

    @staticmethod
    def check_region(region: str) -> None:
        if not _REGION.fullmatch(region or ""):
            raise _bad_parameter(region, _REGION_TEXT)
        if region not in KNOWN_REGIONS:
            raise _field_error("region", region, "Unknown region.")

    @staticmethod
    def check_resource_param(value: str) -> None:
        if not _NAME_OR_ID.fullmatch(value or ""):
            raise _bad_parameter(value, _NAME_OR_ID_TEXT)

    def _scope(self, project: str, region: str | None, name: str | None = None) -> None:
        self.check_project(project)
        if region is not None:
            self.check_region(region)
        if name is not None:
            self.check_resource_param(name)

    # ---- generic table access -----------------------------------------------------------------
    def _table(self, kind: str) -> dict[Any, dict[str, Any]]:
        return self.world.table(kind)

    def _find(self, kind: str, prefix: tuple[str, ...], name_or_id: str) -> tuple[tuple, dict[str, Any]] | None:
        """A resource by name, or by numeric id as Google's paths also allow."""
        table = self._table(kind)
        key = (*prefix, name_or_id)
        if key in table:
            return key, table[key]
        if name_or_id.isdigit():
            for k, body in table.items():
                if k[:-1] == prefix and body.get("id") == name_or_id:
                    return k, body
        return None

    def _existing(self, kind: str, prefix: tuple[str, ...], name_or_id: str) -> tuple[tuple, dict[str, Any]]:
        """``_find``, or Google's 404 naming the resource as the request did."""
        found = self._find(kind, prefix, name_or_id)
        if not found:
            raise not_found(f"{_scope_path(prefix)}/{_collection(kind)}/{name_or_id}")
        return found

    def _stored(self, kind: str, key: tuple, path: str) -> dict[str, Any]:
        """The resource a planned write applies to, still there when its operation completes, or 404."""
        stored = self._table(kind).get(key)
        if stored is None:
            raise not_found(path)
        return stored

    # ---- the reads every kind answers alike (``prefix``: ``(project,)`` or ``(project, region)``) ---
    def _get(self, kind: str, prefix: tuple[str, ...], name_or_id: str) -> dict[str, Any]:
        self._scope(prefix[0], _region(prefix), name_or_id)
        with self.world.lock:
            return copy.deepcopy(self._existing(kind, prefix, name_or_id)[1])

    def _list(self, kind: str, prefix: tuple[str, ...], query: ListQuery) -> dict[str, Any]:
        """One page; the page is copied, not the table (make bench lists 30,000 firewall rules)."""
        self._scope(prefix[0], _region(prefix))
        collection = _collection(kind)
        with self.world.lock:
            def items() -> list[dict[str, Any]]:
                return [v for k, v in self._table(kind).items() if k[:len(prefix)] == prefix]

            return _copy(self._list_body(f"compute#{_singular(collection)}List",
                                         f"{_scope_path(prefix)}/{collection}", items, query))

    def _aggregated_list(self, kind: str, project: str, query: ListQuery) -> dict[str, Any]:
        self._scope(project, None)
        collection = _collection(kind)
        with self.world.lock:
            def items() -> list[dict[str, Any]]:
                return [v for k, v in self._table(kind).items() if k[0] == project]

            return _copy(self._aggregated_body(f"compute#{_singular(collection)}AggregatedList", collection,
                                                       f"projects/{project}/aggregated/{collection}", items, query))

    def _link(self, path: str) -> str:
        return self.world.self_link(path)

    # ---- shared shapes -------------------------------------------------------------------------
    def _mutation(self, project: str, region: str | None, operation_type: str, path: str, target_id: str,
                  apply: Callable[[], None], resource_type: str, labels: Mapping[str, str]) -> Mutation:
        return Mutation(project, region, operation_type, self._link(path), target_id, path, resource_type,
                        dict(labels), apply)

    def _list_body(self, kind: str, path: str, items: Items, query: ListQuery) -> dict[str, Any]:
        page, token = query.page(items, self.cursors)
        body: dict[str, Any] = {"kind": kind, "id": path}
        if page:
            body["items"] = page
        if token:
            body["nextPageToken"] = token
        body["selfLink"] = self._link(path)
        return body

    def _aggregated_body(self, kind: str, collection: str, path: str, items: Items,
                         query: ListQuery) -> dict[str, Any]:
        """Items keyed ``regions/R``; every region without results carries Google's
        NO_RESULTS_ON_PAGE warning, as Compute's aggregatedList answers."""
        page, token = query.page(items, self.cursors)
        scoped: dict[str, dict[str, Any]] = {}
        for item in page:
            region = str(item.get("region", "")).rpartition("/")[2]
            scoped.setdefault(f"regions/{region}", {collection: []})[collection].append(item)
        for region in sorted(KNOWN_REGIONS):
            scope = f"regions/{region}"
            if scope not in scoped:
                scoped[scope] = {"warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": f"There are no results for scope '{scope}' on this page.",
                    "data": [{"key": "scope", "value": scope}]}}
        body: dict[str, Any] = {"kind": kind, "id": path, "items": dict(sorted(scoped.items()))}
        if token:
            body["nextPageToken"] = token
        body["selfLink"] = self._link(path)
        return body


def _copy(body: dict[str, Any]) -> dict[str, Any]:
    """A page's own copy, taken under the lock (JSON in, JSON out: json's C code is several times
    faster than ``copy.deepcopy`` on 500 resources)."""
    return json.loads(json.dumps(body))


def _collection(kind: str) -> str:
    return kind.rpartition(".")[2]  # compute.addresses -> addresses


def _singular(collection: str) -> str:
    return collection[:-2] if collection.endswith("sses") else collection[:-1]


def _region(prefix: tuple[str, ...]) -> str | None:
    return prefix[1] if len(prefix) > 1 else None


def _scope_path(prefix: tuple[str, ...]) -> str:
    return f"projects/{prefix[0]}/global" if len(prefix) == 1 else f"projects/{prefix[0]}/regions/{prefix[1]}"
