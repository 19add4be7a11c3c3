"""IAM as doctor reads it: custom roles of projects and organizations, and the IAM policies of
projects, folders and organizations (Resource Manager's getIamPolicy).

State only, no HTTP (routes: ``localcloud/routes/iam.py``). The local stack seeds what ``infra/``
creates (``localcloud/stack.py``): a custom role per function and its binding. A project, folder or
organization nobody seeded does not exist here; Resource Manager answers a policy read of one
with 403, as Google does for a resource that does not exist or that the caller cannot see (it
never says which).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from localcloud.errors import ApiError, invalid, not_found
from localcloud.world import World

_ROLE_NAME = re.compile(r"^(projects/[a-z][-a-z0-9]{4,28}[a-z0-9]|organizations/\d+)/roles/([A-Za-z0-9_.]{3,64})$")
_RESOURCE = re.compile(r"^(projects/[a-z][-a-z0-9]{4,28}[a-z0-9]|folders/\d+|organizations/\d+)$")
_PERMISSION = re.compile(r"^[a-z][a-zA-Z0-9]*\.[a-zA-Z0-9]+\.[a-zA-Z0-9]+$")
ROLES, POLICIES = "iam_roles", "iam_policies"


def _etag(body: Any) -> str:
    return base64.b64encode(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()[:8]).decode()


def permission_denied(resource: str, permission: str) -> ApiError:
    return ApiError(403, f"The caller does not have permission", reason="forbidden",
                    details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                              "domain": "iam.googleapis.com",
                              "metadata": {"permission": permission, "resource": resource}}])


class IamBackend:
    def __init__(self, world: World) -> None:
        self.world = world
        # Kept here, not in world.tables: like the sinks, the deployment is configured once (as
        # Terraform would) and survives ``POST /_localcloud/reset`` between test scenarios.
        self._tables: dict[str, dict[str, Any]] = {ROLES: {}, POLICIES: {}}

    def table(self, kind: str) -> dict[str, Any]:
        return self._tables[kind]

    # ---- custom roles ---------------------------------------------------------------------------------
    def put_role(self, name: str, permissions: list[str], *, title: str = "", description: str = "",
                 stage: str = "GA", deleted: bool = False) -> dict[str, Any]:
        """Create or replace a custom role (the control API; Terraform's google_*_iam_custom_role)."""
        if not _ROLE_NAME.match(name):
            raise invalid(f"role name {name!r} is not projects/P/roles/R or organizations/O/roles/R")
        bad = [p for p in permissions if not isinstance(p, str) or not _PERMISSION.match(p)]
        if bad:
            raise invalid(f"Permission {bad[0]} is not valid.")
        body: dict[str, Any] = {"name": name, "title": title or name.rsplit("/", 1)[-1],
                                "description": description, "includedPermissions": sorted(set(permissions)),
                                "stage": stage}
        if deleted:
            body["deleted"] = True
        body["etag"] = _etag(body)
        with self.world.lock:
            self.table(ROLES)[name] = body
            self._known(name.split("/roles/")[0])
        return dict(body)

    def get_role(self, name: str) -> dict[str, Any]:
        if not _ROLE_NAME.match(name):
            raise invalid(f"The role name must be in the format roles/{{role}}, organizations/{{organization_id}}/roles/"
                          f"{{role}}, or projects/{{project_id}}/roles/{{role}}.")
        with self.world.lock:
            found = self.table(ROLES).get(name)
        if found is None:
            raise ApiError(404, f"The role named {name} was not found.", reason="notFound")
        return dict(found)

    def list_roles(self, parent: str, *, view: str = "BASIC", show_deleted: bool = False) -> list[dict[str, Any]]:
        with self.world.lock:
            roles = [dict(r) for n, r in sorted(self.table(ROLES).items()) if n.startswith(f"{parent}/roles/")]
        roles = [r for r in roles if show_deleted or not r.get("deleted")]
        if view != "FULL":
            for role in roles:
                role.pop("includedPermissions", None)
        return roles

    # ---- IAM policies -----------------------------------------------------------------------------------
    def _known(self, resource: str) -> None:
        table = self.table(POLICIES)
        if resource not in table:
            table[resource] = {"version": 1, "bindings": []}

    def add_binding(self, resource: str, role: str, member: str) -> dict[str, Any]:
        if not _RESOURCE.match(resource):
            raise invalid(f"resource {resource!r} is not projects/P, folders/F or organizations/O")
        with self.world.lock:
            self._known(resource)
            policy = self.table(POLICIES)[resource]
            binding = next((b for b in policy["bindings"] if b["role"] == role), None)
            if binding is None:
                binding = {"role": role, "members": []}
                policy["bindings"].append(binding)
            if member not in binding["members"]:
                binding["members"] = sorted(binding["members"] + [member])
            return self.get_policy(resource)

    def remove_binding(self, resource: str, role: str, member: str) -> dict[str, Any]:
        with self.world.lock:
            policy = self.table(POLICIES).get(resource)
            if policy is None:
                raise not_found(resource)
            for binding in policy["bindings"]:
                if binding["role"] == role and member in binding["members"]:
                    binding["members"] = [m for m in binding["members"] if m != member]
            policy["bindings"] = [b for b in policy["bindings"] if b["members"]]
            return self.get_policy(resource)

    # ---- Pub/Sub topics' IAM policies ------------------------------------------------------------------
    # The official Pub/Sub emulator answers IAM calls with 501, so localcloud keeps topics' policies
    # (the sink writer's publisher grant, doctor's read). It cannot see the emulator's topics: a
    # topic nobody granted anything on has an empty policy, whether it exists or not.
    def topic_policy(self, topic: str) -> dict[str, Any]:
        with self.world.lock:
            stored = self.table(POLICIES).get(topic) or {"version": 1, "bindings": []}
            body: dict[str, Any] = {"version": stored["version"]}
            if stored["bindings"]:
                body["bindings"] = [dict(b, members=list(b["members"])) for b in stored["bindings"]]
        body["etag"] = _etag(body)
        return body

    def set_topic_policy(self, topic: str, policy: dict[str, Any]) -> dict[str, Any]:
        bindings = policy.get("bindings") or []
        for binding in bindings:
            if not binding.get("role") or not binding.get("members"):
                raise invalid("Invalid policy: every binding needs a role and at least one member.")
        with self.world.lock:
            self.table(POLICIES)[topic] = {"version": 1, "bindings": [
                {"role": b["role"], "members": sorted(set(b["members"]))} for b in bindings]}
        return self.topic_policy(topic)

    def get_policy(self, resource: str) -> dict[str, Any]:
        with self.world.lock:
            policy = self.table(POLICIES).get(resource)
            if policy is None:
                raise permission_denied(resource, f"resourcemanager.{resource.split('/')[0]}.getIamPolicy")
            body = {"version": policy["version"], "bindings": [dict(b, members=list(b["members"]))
                                                              for b in sorted(policy["bindings"], key=lambda b: b["role"])]}
        body["etag"] = _etag(body)
        return body
