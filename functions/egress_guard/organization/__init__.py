"""``egress-guard sweep --organization | --folder``: every project under a scope, found with Cloud
Asset Inventory and decided by the per-project sweep (``sweep``). Modules: ``discovery`` (the
search, ``ASSET_TYPES``), ``snapshot`` (a project's ``Inventory`` from the search's results), ``run``
(``OrganizationSweep``: judge each project from its snapshot, sweep live those with something to
do), ``report`` (progress lines, the table, ``--json``)."""

from __future__ import annotations

from .discovery import ASSET_PAGE_SIZE, ASSET_TYPES, Discovery, Scope, discover
from .run import LIVE, PROJECTS_AT_ONCE, SNAPSHOT, DiscoveryFailed, OrganizationReport, OrganizationSweep, ProjectResult

__all__ = ["ASSET_PAGE_SIZE", "ASSET_TYPES", "LIVE", "PROJECTS_AT_ONCE", "SNAPSHOT", "Discovery", "DiscoveryFailed",
           "OrganizationReport", "OrganizationSweep", "ProjectResult", "Scope", "discover"]
