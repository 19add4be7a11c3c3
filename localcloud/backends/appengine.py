"""App Engine Admin API v1: versions of an app's services, created as long-running operations.

A version is stored as the v1 ``Version`` JSON. A create is checked as the API does for what
egress-guard relies on: a version id, and a ``vpcAccessConnector`` that names an existing, READY
connector by its full name (``projects/P/locations/R/connectors/C``, as ``app.yaml`` writes it; the
connector may be a Shared VPC host's, docs/gcp-facts.md §12.1, §12.4). ``egressSetting`` defaults to
``PRIVATE_IP_RANGES``. The operation completes after ``world.config.appengine_operation_delay_s``.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from localcloud.errors import ApiError
from localcloud.operations import Operation

VERSIONS = "appengine.versions"  # (app, service, version) -> Version JSON
OPERATIONS = "appengine.operations"  # operation name -> "v1"
VERSION_TYPE_URL = "type.googleapis.com/google.appengine.v1.Version"
METADATA_TYPE_URL = "type.googleapis.com/google.appengine.v1.OperationMetadataV1"
CREATE_METHOD = "google.appengine.v1.Versions.CreateVersion"
DEFAULT_EGRESS = "PRIVATE_IP_RANGES"  # the documented default (appengine v1 VpcAccessConnector)
# App Engine ids: lowercase letters, digits and hyphens, at most 63 characters, not starting with "ah-".
_ID = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_CONNECTOR = re.compile(r"projects/([^/]+)/locations/([^/]+)/connectors/([^/]+)")


def invalid(message: str) -> ApiError:
    return ApiError(400, message, status="INVALID_ARGUMENT", reason="badRequest")


def version_name(app: str, service: str, version: str) -> str:
    return f"apps/{app}/services/{service}/versions/{version}"


class AppEngineBackend:
    def __init__(self, world, operations) -> None:
        self.world = world
        self.operations = operations

    def get(self, app: str, service: str, version: str) -> dict[str, Any]:
        with self.world.lock:
            found = self.world.table(VERSIONS).get((app, service, version))
            if found is None:
                raise ApiError(404, f"Version not found: {version_name(app, service, version)}.",
                               status="NOT_FOUND", reason="notFound")
            return copy.deepcopy(found)

    def list(self, app: str, service: str) -> list[dict[str, Any]]:
        with self.world.lock:
            found = [copy.deepcopy(v) for (a, s, _), v in self.world.table(VERSIONS).items() if (a, s) == (app, service)]
        return sorted(found, key=lambda v: v["name"])

    def services(self, app: str) -> list[dict[str, Any]]:
        """The services that have versions (a service exists while one of its versions does)."""
        with self.world.lock:
            ids = sorted({s for (a, s, _) in self.world.table(VERSIONS) if a == app})
        return [{"name": f"apps/{app}/services/{s}", "id": s} for s in ids]

    def operation(self, name: str) -> Operation:
        return self.operations.owned(OPERATIONS, name)

    def create(self, app: str, service: str, body: dict[str, Any], *, principal: str,
               fail_with: ApiError | None) -> Operation:
        version_id = body.get("id")
        if not version_id or not _ID.fullmatch(version_id) or version_id.startswith("ah-"):
            raise invalid(f"Invalid version id '{version_id or ''}'.")
        connector = body.get("vpcAccessConnector")
        version = copy.deepcopy(body)
        if connector:
            version["vpcAccessConnector"] = {**connector, "name": self._check_connector(app, connector.get("name"))}
            version["vpcAccessConnector"].setdefault("egressSetting", DEFAULT_EGRESS)
        key = (app, service, version_id)
        name = version_name(app, service, version_id)
        w = self.world
        with w.lock:
            if key in w.table(VERSIONS):
                raise ApiError(409, f"Version {version_id} of service {service} already exists.",
                               status="ALREADY_EXISTS", reason="alreadyExists")
            version.update(name=name, servingStatus="SERVING", createTime=w.rfc3339(), createdBy=principal,
                           versionUrl=f"https://{version_id}-dot-{service}-dot-{app}.appspot.com")
            w.table(VERSIONS)[key] = version
            op_name = f"apps/{app}/operations/{uuid.uuid4()}"
            w.table(OPERATIONS)[op_name] = "v1"
            metadata = {"@type": METADATA_TYPE_URL, "method": CREATE_METHOD, "insertTime": w.rfc3339(),
                        "user": principal, "target": name}
            op = self.operations.start_lro(name=op_name, metadata=metadata,
                                           delay=w.config.appengine_operation_delay_s,
                                           apply=lambda: {"@type": VERSION_TYPE_URL, **copy.deepcopy(version)},
                                           fail_with=fail_with)
            if fail_with is not None:  # a failed deploy leaves no version behind
                op.on_done.append(lambda _op: self._forget(key))
            return op

    def _forget(self, key: tuple[str, str, str]) -> None:
        with self.world.lock:
            self.world.table(VERSIONS).pop(key, None)

    def _check_connector(self, app: str, value: Any) -> str:
        m = _CONNECTOR.fullmatch(value or "")
        if not m:
            raise invalid(f"Invalid VPC access connector name '{value or ''}': expected "
                          "projects/PROJECT/locations/REGION/connectors/CONNECTOR.")
        project, region, name = m.groups()
        vpcaccess = self.world.backends.get("vpcaccess")
        if project.isdigit() and vpcaccess is not None:
            project = vpcaccess.project_with_number(project) or project
        found = vpcaccess.connector(project, region, name) if vpcaccess else None
        if found is None or found.get("state") != "READY":
            raise invalid(f"VPC access connector {value} does not exist or is not ready, or App Engine does not "
                          "have permission to use it.")
        vpcaccess.mark_connected(project, region, name, app)
        return value

    def reset(self) -> None:
        """World.reset clears the tables; nothing else is kept here."""
