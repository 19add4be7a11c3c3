"""Secret Manager metadata: secrets and their versions' states, never a value.

doctor reads whether the Slack webhook secret exists and has an enabled version; nothing here
stores or returns a payload (``versions.access`` is not emulated: notify_slack receives its
secret through the platform, not through this API). Names are answered with the project number,
as Secret Manager does.
"""

from __future__ import annotations

import re
from typing import Any

from localcloud.backends.vpcaccess import project_number
from localcloud.errors import ApiError, invalid
from localcloud.world import World

SECRETS = "secretmanager_secrets"
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
VERSION_STATES = ("ENABLED", "DISABLED", "DESTROYED")


class SecretManagerBackend:
    def __init__(self, world: World) -> None:
        self.world = world
        # Kept here, not in world.tables: the deployment survives ``POST /_localcloud/reset``.
        self._secrets: dict[tuple[str, str], dict[str, Any]] = {}

    def table(self, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self._secrets

    def _key(self, project: str, secret: str) -> tuple[str, str]:
        return (project_number(project) if not project.isdigit() else project, secret)

    def _number(self, project: str) -> str:
        return project if project.isdigit() else project_number(project)

    def create(self, project: str, secret: str) -> dict[str, Any]:
        if not _SECRET_ID.match(secret):
            raise invalid("Secret id must contain only letters, numbers, underscores and hyphens (at most 255).")
        now = self.world.rfc3339()
        body = {"name": f"projects/{self._number(project)}/secrets/{secret}", "replication": {"automatic": {}},
                "createTime": now, "etag": f'"{now}"'}
        with self.world.lock:
            table = self.table(SECRETS)
            if self._key(project, secret) in table:
                raise ApiError(409, f"Secret [{body['name']}] already exists.", reason="alreadyExists")
            table[self._key(project, secret)] = {"secret": body, "versions": []}
        return dict(body)

    def _entry(self, project: str, secret: str) -> dict[str, Any]:
        found = self.table(SECRETS).get(self._key(project, secret))
        if found is None:
            raise ApiError(404, f"Secret [projects/{self._number(project)}/secrets/{secret}] not found or has no versions.",
                           reason="notFound")
        return found

    def get(self, project: str, secret: str) -> dict[str, Any]:
        with self.world.lock:
            return dict(self._entry(project, secret)["secret"])

    def add_version(self, project: str, secret: str) -> dict[str, Any]:
        """A new ENABLED version (its payload is not kept: only that it exists)."""
        with self.world.lock:
            entry = self._entry(project, secret)
            number = len(entry["versions"]) + 1
            version = {"name": f"{entry['secret']['name']}/versions/{number}", "createTime": self.world.rfc3339(),
                       "state": "ENABLED", "replicationStatus": {"automatic": {}}, "etag": f'"{number}"'}
            entry["versions"].append(version)
            return dict(version)

    def list_versions(self, project: str, secret: str) -> list[dict[str, Any]]:
        with self.world.lock:  # newest first, as Secret Manager lists them
            return [dict(v) for v in reversed(self._entry(project, secret)["versions"])]

    def set_state(self, project: str, secret: str, version: str, state: str) -> dict[str, Any]:
        """versions.disable / enable / destroy."""
        with self.world.lock:
            entry = self._entry(project, secret)
            found = next((v for v in entry["versions"] if v["name"].rsplit("/", 1)[-1] == version), None)
            if found is None:
                raise ApiError(404, f"Secret Version [{entry['secret']['name']}/versions/{version}] not found.",
                               reason="notFound")
            if found["state"] == "DESTROYED" and state != "DESTROYED":
                raise ApiError(400, f"Secret Version [{found['name']}] is in DESTROYED state.", reason="failedPrecondition",
                               status="FAILED_PRECONDITION")
            found["state"] = state
            if state == "DESTROYED":
                found["destroyTime"] = self.world.rfc3339()
            return dict(found)
