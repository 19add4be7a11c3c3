"""Cloud Functions (1st gen): functions as the v1 API holds them, their operations and source uploads.

A function is stored once, as the v1 ``CloudFunction`` JSON (cloudfunctions v1 discovery document).
A create or update is checked as the API does (the name, the runtime, the connector: it must exist,
READY, in the function's region, in its own project or a Shared VPC host, docs/gcp-facts.md §12.1,
§12.2), given the server's defaults, and is visible at once as ``DEPLOY_IN_PROGRESS``; it becomes
``ACTIVE`` when its long-running operation completes after ``world.config.functions_operation_delay_s``.
v1 operations are global (``operations/ID``, ``cloudfunctions.operations.get``) and their metadata is
an ``OperationMetadataV1`` holding the request. Creating a function that exists is accepted and its
operation ends in ``ALREADY_EXISTS`` (the v1 ``create`` method's documented behaviour). A deploy that
fails leaves a new function ``OFFLINE`` and an existing one as it was (its previous version serves on).

Deploying uploads the source first: ``generateUploadUrl`` answers a URL on localcloud (the v2
backend's ``UPLOAD_PATH``, one token table) that takes the zip, as the signed Cloud Storage URL does
for Google; the function then names it in ``sourceUploadUrl``.

UNCONFIRMED choices, each once: the operation name's form (``OPERATION_NAME``), the server defaults
of ``DEFAULTS``, and the service account a function runs as by default (the documented
``{project_id}@appspot.gserviceaccount.com``).
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
import uuid
from typing import Any

from localcloud.backends.functions import (
    FUNCTIONS as V2_FUNCTIONS,
    UPLOAD_PATH,
    UPLOADS,
    V1_FUNCTIONS,
    check_location,
    function_name,
    invalid,
    not_found,
    resolve_connector,
    _merged,
    _set,
)
from localcloud.backends.vpcaccess import project_number
from localcloud.errors import ApiError
from localcloud.operations import Operation

FUNCTIONS = V1_FUNCTIONS  # (project, region, name) -> CloudFunction JSON
OPERATIONS = "functions_v1.operations"  # operation name -> (project, region, name)

API_PACKAGE = "google.cloud.functions.v1"
FUNCTION_TYPE_URL = f"type.googleapis.com/{API_PACKAGE}.CloudFunction"
METADATA_TYPE_URL = f"type.googleapis.com/{API_PACKAGE}.OperationMetadataV1"
# UNCONFIRMED: v1 operation names are ``operations/`` and an opaque id; Google's look like base64 of
# "project/region/function/...", which is what localcloud hands out. Clients only echo the name back.
OPERATION_NAME = "operations/{token}"
UPLOAD_BUCKET = "gcf-upload-{region}-{suffix}"  # as the signed URL's host path shows; nothing reads it

# Function ids of 1st gen: Latin letters, digits, hyphens and underscores, starting with a letter, not
# ending with a hyphen or underscore, at most 63 characters (the pattern gcloud 528 checks for 1st gen).
_NAME = re.compile(r"[A-Za-z](?:[-_A-Za-z0-9]{0,61}[A-Za-z0-9])?")
_FULL_NAME = re.compile(r"projects/([^/]+)/locations/([^/]+)/functions/([^/]+)")
RUNTIMES = ("python38", "python39", "python310", "python311", "python312", "nodejs18", "nodejs20", "go121", "java17")
# Server defaults of a 1st gen function (the v1 CloudFunction reference: 256 MB, 60 s, ALLOW_ALL).
DEFAULTS = {"availableMemoryMb": 256, "timeout": "60s", "ingressSettings": "ALLOW_ALL", "maxInstances": 3000,
            "dockerRegistry": "ARTIFACT_REGISTRY"}
DEFAULT_CONNECTOR_EGRESS = "PRIVATE_RANGES_ONLY"
OUTPUT_ONLY = ("status", "updateTime", "versionId", "buildId", "buildName", "satisfiesPzs", "satisfiesPzi")
INPUT_ONLY = ("sourceToken",)


class FunctionsV1Backend:
    def __init__(self, world, operations) -> None:
        self.world = world
        self.operations = operations

    # ---- reads ----------------------------------------------------------------------------------
    def get(self, project: str, region: str, name: str) -> dict[str, Any]:
        check_location(project, region)
        with self.world.lock:
            found = self.world.table(FUNCTIONS).get((project, region, name))
            if found is None:
                raise not_found(function_name(project, region, name))
            return copy.deepcopy(found)

    def list(self, project: str, region: str) -> list[dict[str, Any]]:
        """The functions of a project in one region, or in all ("-", which v1 documents)."""
        check_location(project, "europe-west2" if region == "-" else region)
        with self.world.lock:
            found = [copy.deepcopy(f) for (p, r, _), f in self.world.table(FUNCTIONS).items()
                     if p == project and region in ("-", r)]
        return sorted(found, key=lambda f: f["name"])

    def operation(self, name: str) -> Operation:
        return self.operations.owned(OPERATIONS, name)

    def upload_url(self, project: str, region: str, base_url: str) -> dict[str, Any]:
        """generateUploadUrl: where to PUT the zip (v1 answers only the URL)."""
        check_location(project, region)
        token = secrets.token_hex(16)
        with self.world.lock:
            self.world.table(UPLOADS)[token] = {"bucket": UPLOAD_BUCKET.format(region=region, suffix=token[:12]),
                                                "object": f"{uuid.uuid4()}.zip", "size": None}
        return {"uploadUrl": f"{base_url}{UPLOAD_PATH}{token}"}

    # ---- writes ---------------------------------------------------------------------------------
    def create(self, project: str, region: str, body: dict[str, Any], *, fail_with: ApiError | None) -> Operation:
        check_location(project, region)
        fields = {k: v for k, v in copy.deepcopy(body).items() if k not in OUTPUT_ONLY + INPUT_ONLY}
        name = self.check_name(project, region, fields.get("name"))
        self._check(project, region, fields, new=True)
        key = (project, region, name)
        w = self.world
        with w.lock:
            exists = key in w.table(FUNCTIONS) or key in w.table(V2_FUNCTIONS)
            if not exists:
                function = self._with_defaults(project, region, name, fields, version=1)
                function.update(status="DEPLOY_IN_PROGRESS", updateTime=w.rfc3339())
                w.table(FUNCTIONS)[key] = function
            else:  # accepted; the operation ends in ALREADY_EXISTS (the v1 create method's description)
                function = {**fields, "name": function_name(project, region, name)}
                fail_with = ApiError(409, f"Function {name} in region {region} in project {project} already "
                                     "exists", status="ALREADY_EXISTS", reason="alreadyExists")
            return self._start(key, "CREATE_FUNCTION", function, fail_with, previous=None, exists=exists)

    def update(self, project: str, region: str, name: str, body: dict[str, Any], update_mask: str | None, *,
               fail_with: ApiError | None) -> Operation:
        check_location(project, region)
        key = (project, region, name)
        w = self.world
        with w.lock:
            current = w.table(FUNCTIONS).get(key)
            if current is None:
                raise not_found(function_name(project, region, name))
            if current["status"] in ("DEPLOY_IN_PROGRESS", "DELETE_IN_PROGRESS"):
                raise ApiError(409, f"An operation on function {function_name(project, region, name)} is already "
                               "in progress. Please try again later.", status="ABORTED", reason="aborted")
            sent = {k: v for k, v in copy.deepcopy(body).items() if k not in OUTPUT_ONLY + INPUT_ONLY}
            merged = _merged({k: v for k, v in current.items() if k not in OUTPUT_ONLY}, sent, update_mask)
        self._check(project, region, merged, new=False)
        with w.lock:
            previous = copy.deepcopy(current)
            function = self._with_defaults(project, region, name, merged, version=int(current["versionId"]) + 1)
            function.update(status="DEPLOY_IN_PROGRESS", updateTime=w.rfc3339())
            w.table(FUNCTIONS)[key] = function
            return self._start(key, "UPDATE_FUNCTION", function, fail_with, previous=previous, exists=False)

    def delete(self, project: str, region: str, name: str, *, fail_with: ApiError | None) -> Operation:
        check_location(project, region)
        key = (project, region, name)
        with self.world.lock:
            function = self.world.table(FUNCTIONS).get(key)
            if function is None:
                raise not_found(function_name(project, region, name))
            function["status"] = "DELETE_IN_PROGRESS"
            return self._start(key, "DELETE_FUNCTION", function, fail_with, previous=None, exists=False)

    # ---- Google's checks ----------------------------------------------------------------------------
    @staticmethod
    def check_name(project: str, region: str, value: Any) -> str:
        """The body's ``name`` must be the function's full name in the URL's project and location."""
        m = _FULL_NAME.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            raise invalid(f"Invalid function name '{value or ''}': expected "
                          "projects/PROJECT/locations/LOCATION/functions/FUNCTION.")
        owner, where, name = m.groups()
        if (owner, where) != (project, region) and (owner, where) != (project_number(project), region):
            raise invalid(f"Function name '{value}' is not in the location projects/{project}/locations/{region}.")
        if not _NAME.fullmatch(name):
            raise invalid(f"Invalid function id '{name}': it must contain only Latin letters, digits, hyphens and "
                          "underscores, start with a letter, not end with a hyphen, and be at most 63 characters long.")
        return name

    def _check(self, project: str, region: str, fields: dict[str, Any], *, new: bool) -> None:
        runtime = fields.get("runtime")
        if new and not runtime:
            raise invalid("The runtime is required when creating a function.")
        if runtime and runtime not in RUNTIMES:
            raise invalid(f"Invalid runtime '{runtime}'.")
        if fields.get("httpsTrigger") is not None and fields.get("eventTrigger") is not None:
            raise invalid("A function has either an HTTPS trigger or an event trigger, not both.")
        if new and fields.get("httpsTrigger") is None and fields.get("eventTrigger") is None:
            raise invalid("A function needs a trigger: httpsTrigger or eventTrigger.")
        if fields.get("vpcConnector") and fields.get("network"):
            raise invalid("vpc_connector and network are mutually exclusive.")
        if fields.get("vpcConnector"):
            fields["vpcConnector"] = resolve_connector(self.world, project, region, fields["vpcConnector"])
        elif _set(fields.get("vpcConnectorEgressSettings")):
            raise invalid("vpc_connector_egress_settings can be set only together with vpc_connector.")
        upload = fields.get("sourceUploadUrl")
        if upload:
            token = str(upload).split(UPLOAD_PATH, 1)[-1] if UPLOAD_PATH in str(upload) else ""
            with self.world.lock:
                found = self.world.table(UPLOADS).get(token)
            if found is None or found["size"] is None:
                raise invalid(f"Invalid sourceUploadUrl '{upload}': nothing was uploaded there "
                              "(call generateUploadUrl and PUT the zip first).")

    def _with_defaults(self, project: str, region: str, name: str, fields: dict[str, Any], *,
                       version: int) -> dict[str, Any]:
        function = {**DEFAULTS, **copy.deepcopy(fields)}
        function["name"] = function_name(project, region, name)
        if function.get("vpcConnector") and not _set(function.get("vpcConnectorEgressSettings")):
            function["vpcConnectorEgressSettings"] = DEFAULT_CONNECTOR_EGRESS
        function.setdefault("entryPoint", name)
        function.setdefault("serviceAccountEmail", f"{project}@appspot.gserviceaccount.com")
        if function.get("httpsTrigger") is not None:
            trigger = dict(function["httpsTrigger"])
            trigger["url"] = f"https://{region}-{project}.cloudfunctions.net/{name}"
            trigger.setdefault("securityLevel", "SECURE_OPTIONAL")
            function["httpsTrigger"] = trigger
        build = str(uuid.uuid4())
        function["versionId"] = str(version)
        function["buildId"] = build
        function["buildName"] = f"projects/{project_number(project)}/locations/{region}/builds/{build}"
        return function

    # ---- operations -------------------------------------------------------------------------------
    def _start(self, key: tuple[str, str, str], operation_type: str, function: dict[str, Any],
               fail_with: ApiError | None, *, previous: dict[str, Any] | None, exists: bool) -> Operation:
        project, region, name = key
        token = base64.urlsafe_b64encode(f"{project}/{region}/{name}/{uuid.uuid4().hex[:16]}".encode()).decode()
        op_name = OPERATION_NAME.format(token=token.rstrip("="))
        metadata = {"@type": METADATA_TYPE_URL, "target": function_name(project, region, name),
                    "type": operation_type, "updateTime": self.world.rfc3339(),
                    "request": {"@type": FUNCTION_TYPE_URL, **copy.deepcopy(function)}}
        if operation_type != "DELETE_FUNCTION" and not exists:
            metadata.update(versionId=function["versionId"], buildId=function["buildId"],
                            buildName=function["buildName"])
        self.world.table(OPERATIONS)[op_name] = key
        if operation_type == "DELETE_FUNCTION":
            def finish() -> dict[str, Any]:
                self.world.table(FUNCTIONS).pop(key, None)
                return {"@type": "type.googleapis.com/google.protobuf.Empty"}
        else:
            def finish() -> dict[str, Any]:
                return self._finish(key)
        op = self.operations.start_lro(name=op_name, metadata=metadata,
                                       delay=self.world.config.functions_operation_delay_s, apply=finish,
                                       fail_with=fail_with)
        if fail_with is not None and not exists and operation_type != "DELETE_FUNCTION":
            op.on_done.append(lambda _op: self._set_failed(key, previous))
        return op

    def _finish(self, key: tuple[str, str, str]) -> dict[str, Any]:
        """Runs under the world lock when the deploy completes."""
        function = self.world.table(FUNCTIONS).get(key)
        if function is None:
            raise not_found(function_name(*key))
        function["status"] = "ACTIVE"
        function["updateTime"] = self.world.rfc3339()
        return {"@type": FUNCTION_TYPE_URL, **copy.deepcopy(function)}

    def _set_failed(self, key: tuple[str, str, str], previous: dict[str, Any] | None) -> None:
        """A failed first deploy leaves the function OFFLINE; a failed update puts the version before back."""
        with self.world.lock:
            if previous is not None:
                self.world.table(FUNCTIONS)[key] = previous
                return
            function = self.world.table(FUNCTIONS).get(key)
            if function is not None:
                function["status"] = "OFFLINE"

    def reset(self) -> None:
        """World.reset clears the tables; nothing else is kept here."""
