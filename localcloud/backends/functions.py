"""Cloud Functions (2nd gen): functions as the v2 API holds them, their operations and source uploads.

A function is stored once, as the v2 ``Function`` JSON. A create or update is checked as the API
does (the name, one Direct VPC interface and not with a connector, the connector must exist, READY,
in the function's region, in its own project or a Shared VPC host: docs/gcp-facts.md §12.1, §12.3),
given the server's defaults, and is visible at once as ``DEPLOYING``; it becomes ``ACTIVE`` when its
long-running operation completes after ``world.config.functions_operation_delay_s``. Deploying
uploads the source first: ``generateUploadUrl`` answers a URL on localcloud (``UPLOAD_PATH``) that
takes the zip, as the signed Cloud Storage URL does for Google.

UNCONFIRMED choices, each once: the upload bucket's name (``UPLOAD_BUCKET``), and whether Google
also logs the function's underlying Cloud Run service (``egress_guard.assumptions.FUNCTIONS_V2_WRITE_RUN_ENTRY``,
chosen False: localcloud writes no such service nor entry; the guardrail's handling of one, should
Google write it, is tested with a labelled service made through the Cloud Run API).
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from typing import Any, Callable

from localcloud.backends.vpcaccess import project_number
from localcloud.errors import ApiError
from localcloud.operations import Operation

FUNCTIONS = "functions.functions"  # (project, region, name) -> Function JSON
OPERATIONS = "functions.operations"  # operation name -> "v2"
UPLOADS = "functions.uploads"  # token -> {"bucket", "object", "size"}: one table for 1st and 2nd gen uploads
# 1st gen functions (backends/functions_v1.py): one name per project and region across both generations.
V1_FUNCTIONS = "functions_v1.functions"

API_PACKAGE = "google.cloud.functions.v2"
FUNCTION_TYPE_URL = f"type.googleapis.com/{API_PACKAGE}.Function"
METADATA_TYPE_URL = f"type.googleapis.com/{API_PACKAGE}.OperationMetadata"
UPLOAD_PATH = "/_upload/cloudfunctions/"  # + token: where localcloud takes a function's source zip
# UNCONFIRMED: the bucket Google names in generateUploadUrl's storageSource (a Google-managed bucket
# per project and region); only its shape matters, nothing reads it back but the function's buildConfig.
UPLOAD_BUCKET = "gcf-v2-uploads-{number}.{region}.cloudfunctions.appspot.com"

# Function ids: lowercase letters, digits and hyphens, starting with a letter, at most 63 characters
# (the v2 API's documented pattern for the function name's last segment).
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_PROJECT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]|\d{6,19}")
_REGION = re.compile(r"[a-z]+(?:-[a-z]+)+[0-9]+")
_CONNECTOR_PATH = re.compile(r"projects/([^/]+)/locations/([^/]+)/connectors/([^/]+)")
_CONNECTOR_NAME = re.compile(r"[a-z][-a-z0-9]{0,23}[a-z0-9]")
# Server defaults of a 2nd gen function (the v2 Function reference's documented defaults).
DEFAULT_SERVICE_CONFIG = {"timeoutSeconds": 60, "availableMemory": "256M", "availableCpu": "0.1666",
                          "maxInstanceCount": 100, "ingressSettings": "ALLOW_ALL",
                          "maxInstanceRequestConcurrency": 1, "allTrafficOnLatestRevision": True}
DEFAULT_CONNECTOR_EGRESS = "PRIVATE_RANGES_ONLY"
DEFAULT_DIRECT_VPC_EGRESS = "VPC_EGRESS_PRIVATE_RANGES_ONLY"
OUTPUT_ONLY = ("name", "state", "stateMessages", "updateTime", "createTime", "environment", "url",
               "satisfiesPzs", "satisfiesPzi", "upgradeInfo")
RUNTIMES = ("python310", "python311", "python312", "python313", "nodejs20", "nodejs22", "go122", "java21")


def invalid(message: str) -> ApiError:
    return ApiError(400, message, status="INVALID_ARGUMENT", reason="badRequest")


def not_found(name: str) -> ApiError:
    return ApiError(404, f"Resource '{name}' was not found", status="NOT_FOUND", reason="notFound")


def check_location(project: str, region: str) -> None:
    if not _PROJECT.fullmatch(project):
        raise invalid(f"Invalid project '{project}'.")
    if not _REGION.fullmatch(region):
        raise invalid(f"Invalid location '{region}'.")


def function_name(project: str, region: str, name: str) -> str:
    return f"projects/{project}/locations/{region}/functions/{name}"


def resolve_connector(world, project: str, region: str, value: str) -> str:
    """A function's connector reference -> its full name (1st and 2nd gen alike): it must exist, READY,
    in the function's region, in the function's project or another (a Shared VPC host, by id or number;
    docs/gcp-facts.md §12.1)."""
    vpcaccess = world.backends.get("vpcaccess")
    m = _CONNECTOR_PATH.fullmatch(value)
    if m:
        owner, where, name = m.groups()
        if owner == project_number(project):
            owner = project
        elif owner.isdigit() and vpcaccess is not None:
            owner = vpcaccess.project_with_number(owner) or owner
        if where != region:
            raise invalid(f"VPC connector '{value}' is in region '{where}'; it must be in the function's "
                          f"region '{region}'.")
    elif "/" not in value:
        owner, name = project, value
    else:
        raise invalid(f"Invalid VPC connector '{value}': expected a connector name or "
                      "projects/PROJECT/locations/REGION/connectors/CONNECTOR.")
    if not _CONNECTOR_NAME.fullmatch(name):
        raise invalid(f"Invalid VPC connector name '{name}'.")
    full = f"projects/{owner}/locations/{region}/connectors/{name}"
    found = vpcaccess.connector(owner, region, name) if vpcaccess else None
    if found is None:
        raise invalid(f"VPC connector {full} does not exist or Cloud Functions does not have permission to "
                      "use it.")
    if found.get("state") != "READY":
        raise invalid(f"VPC connector {full} is not ready (state {found.get('state')}).")
    vpcaccess.mark_connected(owner, region, name, project)
    return full


class FunctionsBackend:
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
        """The functions of a project in one region, or in all ("-")."""
        with self.world.lock:
            found = [copy.deepcopy(f) for (p, r, _), f in self.world.table(FUNCTIONS).items()
                     if p == project and region in ("-", r)]
        return sorted(found, key=lambda f: f["name"])

    def operation(self, name: str) -> Operation:
        return self.operations.owned(OPERATIONS, name)

    # ---- the source upload -----------------------------------------------------------------------
    def upload_url(self, project: str, region: str, base_url: str) -> dict[str, Any]:
        """generateUploadUrl: where to PUT the zip, and the storageSource the function then names."""
        check_location(project, region)
        token = secrets.token_hex(16)
        source = {"bucket": UPLOAD_BUCKET.format(number=project_number(project), region=region),
                  "object": f"{uuid.uuid4()}.zip"}
        with self.world.lock:
            self.world.table(UPLOADS)[token] = {**source, "size": None}
        return {"uploadUrl": f"{base_url}{UPLOAD_PATH}{token}", "storageSource": source}

    def accept_upload(self, token: str, data: bytes) -> bool:
        """The PUT of a source zip to an upload URL; False for a token localcloud never handed out."""
        with self.world.lock:
            found = self.world.table(UPLOADS).get(token)
            if found is None:
                return False
            found["size"] = len(data)
            return True

    # ---- writes ---------------------------------------------------------------------------------
    def create(self, project: str, region: str, function_id: str | None, body: dict[str, Any], *,
               fail_with: ApiError | None) -> Operation:
        check_location(project, region)
        if not function_id or len(function_id) > 63 or not _NAME.fullmatch(function_id):
            raise invalid(f"Invalid function id '{function_id or ''}': it must contain only lowercase letters, "
                          "digits and hyphens, start with a letter, not end with a hyphen, and be at most 63 "
                          "characters long.")
        key = (project, region, function_id)
        full = function_name(project, region, function_id)
        fields = {k: v for k, v in copy.deepcopy(body).items() if k not in OUTPUT_ONLY}
        self._check(project, region, fields)
        w = self.world
        with w.lock:
            if key in w.table(FUNCTIONS) or key in w.table(V1_FUNCTIONS):
                raise ApiError(409, f"Function {function_id} in region {region} in project {project} already exists",
                               status="ALREADY_EXISTS", reason="alreadyExists")
            function = self._with_defaults(project, region, function_id, fields)
            function.update(name=full, state="DEPLOYING", createTime=w.rfc3339(), updateTime=w.rfc3339())
            w.table(FUNCTIONS)[key] = function
            return self._start(key, "create", "CREATE_FUNCTION", function, fail_with)

    def update(self, project: str, region: str, name: str, body: dict[str, Any], update_mask: str | None, *,
               fail_with: ApiError | None) -> Operation:
        check_location(project, region)
        key = (project, region, name)
        w = self.world
        with w.lock:
            current = w.table(FUNCTIONS).get(key)
            if current is None:
                raise not_found(function_name(project, region, name))
            if current["state"] == "DEPLOYING":
                raise ApiError(409, "An operation on function " + function_name(project, region, name) +
                               " is already in progress. Please try again later.", status="ABORTED", reason="aborted")
            merged = _merged(current, {k: v for k, v in copy.deepcopy(body).items() if k not in OUTPUT_ONLY},
                             update_mask)
        self._check(project, region, merged)
        with w.lock:
            function = self._with_defaults(project, region, name, merged)
            function.update(name=current["name"], createTime=current["createTime"], state="DEPLOYING",
                            updateTime=w.rfc3339(), environment=current["environment"])
            w.table(FUNCTIONS)[key] = function
            return self._start(key, "update", "UPDATE_FUNCTION", function, fail_with)

    def delete(self, project: str, region: str, name: str, *, fail_with: ApiError | None) -> Operation:
        check_location(project, region)
        key = (project, region, name)
        with self.world.lock:
            function = self.world.table(FUNCTIONS).get(key)
            if function is None:
                raise not_found(function_name(project, region, name))
            function["state"] = "DELETING"
            return self._start(key, "delete", "DELETE_FUNCTION", function, fail_with)

    # ---- Google's checks --------------------------------------------------------------------------
    def _check(self, project: str, region: str, fields: dict[str, Any]) -> None:
        service = fields.get("serviceConfig") or {}
        connector, interfaces = service.get("vpcConnector"), service.get("directVpcNetworkInterface") or []
        if connector and interfaces:
            raise invalid("Direct VPC egress and a VPC connector cannot be used together: set either "
                          "service_config.vpc_connector or service_config.direct_vpc_network_interface.")
        if len(interfaces) > 1:
            raise invalid("service_config.direct_vpc_network_interface: only one network interface is supported.")
        for interface in interfaces:
            if not interface.get("network") and not interface.get("subnetwork"):
                raise invalid("service_config.direct_vpc_network_interface: give a network or a subnetwork.")
        if connector:
            service["vpcConnector"] = resolve_connector(self.world, project, region, connector)
        runtime = (fields.get("buildConfig") or {}).get("runtime")
        if runtime and runtime not in RUNTIMES:
            raise invalid(f"Invalid runtime '{runtime}'.")

    def _with_defaults(self, project: str, region: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        function = copy.deepcopy(fields)
        function["environment"] = "GEN_2"
        service = {**DEFAULT_SERVICE_CONFIG, **(function.get("serviceConfig") or {})}
        if service.get("vpcConnector") and not _set(service.get("vpcConnectorEgressSettings")):
            service["vpcConnectorEgressSettings"] = DEFAULT_CONNECTOR_EGRESS
        if service.get("directVpcNetworkInterface") and not _set(service.get("directVpcEgress")):
            service["directVpcEgress"] = DEFAULT_DIRECT_VPC_EGRESS
        number = project_number(project)
        service.setdefault("serviceAccountEmail", f"{number}-compute@developer.gserviceaccount.com")
        service["service"] = f"projects/{project}/locations/{region}/services/{name}"
        service["uri"] = f"https://{name}-{number[-6:]}.{region}.run.app"
        function["serviceConfig"] = service
        build = function.setdefault("buildConfig", {})
        build["build"] = f"projects/{number}/locations/{region}/builds/{uuid.uuid4()}"
        build.setdefault("dockerRepository", f"projects/{project}/locations/{region}/repositories/gcf-artifacts")
        function["url"] = f"https://{region}-{project}.cloudfunctions.net/{name}"
        return function

    # ---- operations -------------------------------------------------------------------------------
    def _start(self, key: tuple[str, str, str], verb: str, operation_type: str, function: dict[str, Any],
               fail_with: ApiError | None) -> Operation:
        project, region, name = key
        op_name = f"projects/{project}/locations/{region}/operations/operation-{uuid.uuid4().hex[:24]}"
        metadata = {"@type": METADATA_TYPE_URL, "createTime": self.world.rfc3339(),
                    "target": function_name(project, region, name), "verb": verb, "apiVersion": "v2",
                    "operationType": operation_type,
                    "requestResource": {"@type": FUNCTION_TYPE_URL, **copy.deepcopy(function)}}
        self.world.table(OPERATIONS)[op_name] = "v2"
        finish: Callable[[], dict[str, Any] | None] = (
            (lambda: self._finish_delete(key)) if verb == "delete" else (lambda: self._finish(key)))
        op = self.operations.start_lro(name=op_name, metadata=metadata,
                                       delay=self.world.config.functions_operation_delay_s, apply=finish,
                                       fail_with=fail_with)
        if fail_with is not None and verb != "delete":
            op.on_done.append(lambda _op: self._set_failed(key, fail_with))
        return op

    def _finish(self, key: tuple[str, str, str]) -> dict[str, Any]:
        """Runs under the world lock when the deploy completes."""
        function = self.world.table(FUNCTIONS).get(key)
        if function is None:
            raise not_found(function_name(*key))
        function["state"] = "ACTIVE"
        function["serviceConfig"]["revision"] = f"{key[2]}-{secrets.randbelow(99999) + 1:05d}-" \
                                                f"{secrets.token_hex(2)[:3]}"
        return {"@type": FUNCTION_TYPE_URL, **copy.deepcopy(function)}

    def _finish_delete(self, key: tuple[str, str, str]) -> dict[str, Any]:
        self.world.table(FUNCTIONS).pop(key, None)
        return {"@type": "type.googleapis.com/google.protobuf.Empty"}

    def _set_failed(self, key: tuple[str, str, str], error: ApiError) -> None:
        with self.world.lock:
            function = self.world.table(FUNCTIONS).get(key)
            if function is not None:
                function["state"] = "FAILED"
                function["stateMessages"] = [{"severity": "ERROR", "type": "DeploymentFailed",
                                              "message": error.message}]

    def reset(self) -> None:
        """World.reset clears the tables; nothing else is kept here."""


def _set(value: Any) -> bool:
    return value not in (None, "", 0) and not str(value).endswith("_UNSPECIFIED")


def _merged(current: dict[str, Any], body: dict[str, Any], update_mask: str | None) -> dict[str, Any]:
    """PATCH: the fields the mask names (dotted paths) from the body; without a mask, every field sent."""
    merged = {k: copy.deepcopy(v) for k, v in current.items() if k not in OUTPUT_ONLY}
    if not update_mask:
        for key, value in body.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return merged
    for path in (p.strip() for p in update_mask.split(",") if p.strip()):
        parts = _camel_path(path)
        source: Any = body
        for part in parts:
            source = source.get(part) if isinstance(source, dict) else None
        target = merged
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if source is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = copy.deepcopy(source)
    return merged


def _camel_path(path: str) -> list[str]:
    return [re.sub(r"_([a-z])", lambda m: m.group(1).upper(), part) for part in path.split(".")]
