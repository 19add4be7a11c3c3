"""The resource hierarchy: organizations, folders under them (or under other folders), and the parent
of each project. State only, no HTTP (routes: ``localcloud/routes/cloudasset.py``, which seeds it
through the control API and searches under it).

Elsewhere in localcloud a project exists when it is named; here a project with no parent seeded is
nobody's child, so an organization or folder search never finds it (a project search still does).
A scope can be made unreadable for a caller (``deny``): Google answers a search of a folder or an
organization the caller may not read, or that does not exist, with the same 403 (it never says which).
"""

from __future__ import annotations

import re
from typing import Any

from localcloud.errors import ApiError, invalid
from localcloud.world import World

ORGANIZATIONS, FOLDERS, PARENTS, DENIED = ("rm.organizations", "rm.folders", "rm.project_parents", "rm.denied")
_ORGANIZATION = re.compile(r"^organizations/\d{1,19}$")
_FOLDER = re.compile(r"^folders/\d{1,19}$")
_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")


def permission_denied(scope: str, permission: str) -> ApiError:
    """Google's 403 for a scope that does not exist or that the caller may not read."""
    return ApiError(403, f"The caller does not have permission", reason="forbidden",
                    details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                              "domain": "cloudasset.googleapis.com",
                              "metadata": {"permission": permission, "resource": scope}}])


class ResourceManagerBackend:
    """Registered as ``world.backends["resourcemanager"]``; its tables live in the world, so a reset clears them."""

    def __init__(self, world: World) -> None:
        self.world = world

    # ---- seeding (the control API) ----------------------------------------------------------------
    def put_organization(self, name: str, display_name: str = "") -> dict[str, Any]:
        if not _ORGANIZATION.match(name):
            raise invalid(f"organization {name!r} is not organizations/NUMBER")
        body = {"name": name, "displayName": display_name or name, "state": "ACTIVE"}
        with self.world.lock:
            self.world.table(ORGANIZATIONS)[name] = body
        return dict(body)

    def put_folder(self, name: str, parent: str, display_name: str = "") -> dict[str, Any]:
        if not _FOLDER.match(name):
            raise invalid(f"folder {name!r} is not folders/NUMBER")
        with self.world.lock:
            self._require_container(parent)
            body = {"name": name, "parent": parent, "displayName": display_name or name, "state": "ACTIVE"}
            self.world.table(FOLDERS)[name] = body
        return dict(body)

    def put_project(self, project: str, parent: str) -> dict[str, Any]:
        if not _PROJECT.match(project):
            raise invalid(f"project id {project!r} is not valid")
        with self.world.lock:
            self._require_container(parent)
            self.world.table(PARENTS)[project] = {"project": project, "parent": parent}
        return {"project": project, "parent": parent}

    def deny(self, scope: str, principal: str) -> None:
        """``principal`` ("*" for everyone) may not read ``scope`` (a folder or an organization)."""
        with self.world.lock:
            self._require_container(scope)
            self.world.table(DENIED).setdefault(scope, {"principals": []})["principals"].append(principal)

    def _require_container(self, name: str) -> None:
        if name not in self.world.table(ORGANIZATIONS) and name not in self.world.table(FOLDERS):
            raise invalid(f"parent {name!r} is not a seeded organization or folder")

    # ---- reads ------------------------------------------------------------------------------------
    def ancestors(self, project: str) -> list[str]:
        """The project's folders (nearest first) and its organization; empty without a parent."""
        with self.world.lock:
            found: list[str] = []
            parent = (self.world.table(PARENTS).get(project) or {}).get("parent")
            while parent and parent not in found:
                found.append(parent)
                parent = (self.world.table(FOLDERS).get(parent) or {}).get("parent")
            return found

    def readable(self, scope: str, principal: str) -> bool:
        """Whether ``scope`` (a folder or organization) exists and ``principal`` may read it, or what
        is above it (a deny on an organization covers its folders)."""
        with self.world.lock:
            if scope not in self.world.table(ORGANIZATIONS) and scope not in self.world.table(FOLDERS):
                return False
            chain = [scope]
            parent = (self.world.table(FOLDERS).get(scope) or {}).get("parent")
            while parent and parent not in chain:
                chain.append(parent)
                parent = (self.world.table(FOLDERS).get(parent) or {}).get("parent")
            denied = self.world.table(DENIED)
            return not any(principal in (denied.get(s) or {}).get("principals", ()) or
                           "*" in (denied.get(s) or {}).get("principals", ()) for s in chain)

    def parent_of(self, project: str) -> str | None:
        with self.world.lock:
            return (self.world.table(PARENTS).get(project) or {}).get("parent")
