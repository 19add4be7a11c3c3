"""Cloud Run's two views of one resource: the v1 Knative objects and the v2 resources (pure functions).

localcloud keeps every service and job as its v2 resource (``backends/run.py``). A v1 write is
converted here into v2 fields plus the v1-only details v2 has no field for (system annotations
and labels such as ``run.googleapis.com/client-name``, kept in a "sidecar" so a gcloud
read-modify-write round-trips); a v1 read renders the v2 resource back into Knative form.

The v1 annotations that are v2 fields (docs/gcp-facts.md §5; Cloud Run v1 reference, ObjectMeta):
service ``run.googleapis.com/ingress`` <-> ``ingress``, ``run.googleapis.com/launch-stage`` <->
``launchStage``, ``run.googleapis.com/client-name|client-version`` <-> ``client|clientVersion``,
``run.googleapis.com/description`` <-> ``description``; revision/execution template
``run.googleapis.com/vpc-access-connector`` <-> ``vpcAccess.connector``,
``run.googleapis.com/vpc-access-egress`` <-> ``vpcAccess.egress``,
``run.googleapis.com/network-interfaces`` <-> ``vpcAccess.networkInterfaces``,
``run.googleapis.com/execution-environment`` <-> ``executionEnvironment``,
``autoscaling.knative.dev/minScale|maxScale`` <-> ``scaling.min|maxInstanceCount``,
``run.googleapis.com/cpu-throttling`` <-> ``resources.cpuIdle``,
``run.googleapis.com/startup-cpu-boost`` <-> ``resources.startupCpuBoost``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from localcloud.errors import ApiError

# Annotation/label key prefixes Cloud Run reserves ("system annotations"); v2 refuses them.
SYSTEM_PREFIXES = ("run.googleapis.com/", "autoscaling.knative.dev/", "serving.knative.dev/",
                   "client.knative.dev/", "features.knative.dev/", "cloud.googleapis.com/")

CONNECTOR = "run.googleapis.com/vpc-access-connector"
EGRESS = "run.googleapis.com/vpc-access-egress"
NETWORK_INTERFACES = "run.googleapis.com/network-interfaces"
EXECUTION_ENVIRONMENT = "run.googleapis.com/execution-environment"
MIN_SCALE = "autoscaling.knative.dev/minScale"
MAX_SCALE = "autoscaling.knative.dev/maxScale"
CPU_THROTTLING = "run.googleapis.com/cpu-throttling"
STARTUP_CPU_BOOST = "run.googleapis.com/startup-cpu-boost"
INGRESS = "run.googleapis.com/ingress"
INGRESS_STATUS = "run.googleapis.com/ingress-status"
LAUNCH_STAGE = "run.googleapis.com/launch-stage"
CLIENT_NAME = "run.googleapis.com/client-name"
CLIENT_VERSION = "run.googleapis.com/client-version"
DESCRIPTION = "run.googleapis.com/description"
CREATOR = "serving.knative.dev/creator"
LAST_MODIFIER = "serving.knative.dev/lastModifier"
URLS = "run.googleapis.com/urls"
LOCATION_LABEL = "cloud.googleapis.com/location"

# Output-only v1 annotations the server writes; a client sending them back changes nothing.
_SERVER_ANNOTATIONS = frozenset({CREATOR, LAST_MODIFIER, URLS, INGRESS_STATUS, "run.googleapis.com/operation-id"})

EGRESS_V1_TO_V2 = {"all-traffic": "ALL_TRAFFIC", "all": "ALL_TRAFFIC", "private-ranges-only": "PRIVATE_RANGES_ONLY"}
EGRESS_V2_TO_V1 = {"ALL_TRAFFIC": "all-traffic", "PRIVATE_RANGES_ONLY": "private-ranges-only"}
INGRESS_V1_TO_V2 = {"all": "INGRESS_TRAFFIC_ALL", "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
                    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
                    "none": "INGRESS_TRAFFIC_NONE"}
INGRESS_V2_TO_V1 = {v: k for k, v in INGRESS_V1_TO_V2.items()}
ENVIRONMENT_V1_TO_V2 = {"gen1": "EXECUTION_ENVIRONMENT_GEN1", "gen2": "EXECUTION_ENVIRONMENT_GEN2"}
ENVIRONMENT_V2_TO_V1 = {v: k for k, v in ENVIRONMENT_V1_TO_V2.items()}

# Fields of a container both APIs spell the same way.
_SAME_CONTAINER_FIELDS = ("name", "image", "command", "args", "workingDir")
_PROBE_FIELDS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "failureThreshold")


def invalid(message: str) -> ApiError:
    return ApiError(400, message, status="INVALID_ARGUMENT", reason="badRequest")


def is_system_key(key: str) -> bool:
    return key.startswith(SYSTEM_PREFIXES)


def split_system(mapping: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(user entries, system entries) of an annotations or labels map."""
    user, system = {}, {}
    for key, value in (mapping or {}).items():
        (system if is_system_key(key) else user)[key] = value
    return user, system


# ---- v1 -> v2 ---------------------------------------------------------------------------------------
def v1_service_to_v2(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Knative Service body -> (v2 Service user fields, sidecar of v1-only details)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    template = spec.get("template") or {}
    annotations = dict(meta.get("annotations") or {})
    labels, system_labels = split_system(meta.get("labels"))
    system_labels.pop(LOCATION_LABEL, None)
    out: dict[str, Any] = {}
    if labels:
        out["labels"] = labels
    ingress = annotations.pop(INGRESS, None)
    if ingress is not None:
        if ingress not in INGRESS_V1_TO_V2:
            raise invalid(f"Annotation {INGRESS} must be one of {', '.join(INGRESS_V1_TO_V2)}; got '{ingress}'.")
        out["ingress"] = INGRESS_V1_TO_V2[ingress]
    _pop_common_service_annotations(annotations, out)
    user_annotations, system_annotations = split_system(annotations)
    if user_annotations:
        out["annotations"] = user_annotations
    revision, template_sidecar = _v1_revision_template_to_v2(template)
    out["template"] = revision
    traffic = [_v1_traffic_to_v2(t) for t in spec.get("traffic") or []]
    if traffic:
        out["traffic"] = traffic
    sidecar = {"annotations": _without_server(system_annotations), "labels": system_labels, **template_sidecar}
    return out, sidecar


def v1_job_to_v2(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A v1 Job body -> (v2 Job user fields, sidecar)."""
    meta = body.get("metadata") or {}
    execution = (body.get("spec") or {}).get("template") or {}
    annotations = dict(meta.get("annotations") or {})
    labels, system_labels = split_system(meta.get("labels"))
    system_labels.pop(LOCATION_LABEL, None)
    out: dict[str, Any] = {}
    if labels:
        out["labels"] = labels
    _pop_common_service_annotations(annotations, out)
    user_annotations, system_annotations = split_system(annotations)
    if user_annotations:
        out["annotations"] = user_annotations
    emeta = execution.get("metadata") or {}
    espec = execution.get("spec") or {}
    t_annotations = dict(emeta.get("annotations") or {})
    t_labels, t_system_labels = split_system(emeta.get("labels"))
    task_spec = ((espec.get("template") or {}).get("spec")) or {}
    task: dict[str, Any] = {"containers": [_v1_container_to_v2(c) for c in task_spec.get("containers") or []]}
    if task_spec.get("maxRetries") is not None:
        task["maxRetries"] = int(task_spec["maxRetries"])
    if task_spec.get("timeoutSeconds") is not None:
        task["timeout"] = f"{int(task_spec['timeoutSeconds'])}s"
    if task_spec.get("serviceAccountName"):
        task["serviceAccount"] = task_spec["serviceAccountName"]
    written = _pop_template_annotations(t_annotations, task)
    execution_v2: dict[str, Any] = {"template": task}
    for key in ("parallelism", "taskCount"):
        if espec.get(key) is not None:
            execution_v2[key] = int(espec[key])
    if t_labels:
        execution_v2["labels"] = t_labels
    t_user, t_system = split_system(t_annotations)
    if t_user:
        execution_v2["annotations"] = t_user
    out["template"] = execution_v2
    sidecar = {"annotations": _without_server(system_annotations), "labels": system_labels,
               "template_annotations": t_system, "template_labels": t_system_labels, "written": written,
               "volumes": task_spec.get("volumes") or []}
    return out, sidecar


def _pop_common_service_annotations(annotations: dict[str, str], out: dict[str, Any]) -> None:
    stage = annotations.pop(LAUNCH_STAGE, None)
    if stage:
        out["launchStage"] = stage.upper()
    for key, field in ((CLIENT_NAME, "client"), (CLIENT_VERSION, "clientVersion"), (DESCRIPTION, "description")):
        value = annotations.pop(key, None)
        if value is not None:
            out[field] = value


def _without_server(annotations: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in annotations.items() if k not in _SERVER_ANNOTATIONS}


def _v1_revision_template_to_v2(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    annotations = dict(meta.get("annotations") or {})
    labels, system_labels = split_system(meta.get("labels"))
    revision: dict[str, Any] = {"containers": [_v1_container_to_v2(c) for c in spec.get("containers") or []]}
    if meta.get("name"):
        revision["revision"] = meta["name"]
    if spec.get("containerConcurrency") is not None:
        revision["maxInstanceRequestConcurrency"] = int(spec["containerConcurrency"])
    if spec.get("timeoutSeconds") is not None:
        revision["timeout"] = f"{int(spec['timeoutSeconds'])}s"
    if spec.get("serviceAccountName"):
        revision["serviceAccount"] = spec["serviceAccountName"]
    written = _pop_template_annotations(annotations, revision)
    scaling = {}
    for key, field in ((MIN_SCALE, "minInstanceCount"), (MAX_SCALE, "maxInstanceCount")):
        value = annotations.pop(key, None)
        if value is not None:
            scaling[field] = _int_annotation(key, value)
    if scaling:
        revision["scaling"] = scaling
    for key, field in ((CPU_THROTTLING, "cpuIdle"), (STARTUP_CPU_BOOST, "startupCpuBoost")):
        value = annotations.pop(key, None)
        if value is not None and revision["containers"]:
            flag = _bool_annotation(key, value)
            revision["containers"][0].setdefault("resources", {})[field] = flag
            written[key] = "true" if flag else "false"
    if labels:
        revision["labels"] = labels
    user, system = split_system(annotations)
    if user:
        revision["annotations"] = user
    return revision, {"template_annotations": system, "template_labels": system_labels, "written": written,
                      "volumes": spec.get("volumes") or []}


def _pop_template_annotations(annotations: dict[str, str], template: dict[str, Any]) -> dict[str, str]:
    """Move the VPC and environment annotations into v2 fields; returns the v1 spellings as written."""
    written: dict[str, str] = {}
    vpc: dict[str, Any] = {}
    connector = annotations.pop(CONNECTOR, None)
    if connector:
        vpc["connector"] = connector
        written[CONNECTOR] = connector
    egress = annotations.pop(EGRESS, None)
    if egress is not None:
        if egress not in EGRESS_V1_TO_V2:
            raise invalid(f"Annotation {EGRESS} must be one of all-traffic, private-ranges-only (or the deprecated "
                          f"'all'); got '{egress}'.")
        vpc["egress"] = EGRESS_V1_TO_V2[egress]
        written[EGRESS] = egress
    interfaces = annotations.pop(NETWORK_INTERFACES, None)
    if interfaces:
        try:
            parsed = json.loads(interfaces)
        except ValueError:
            raise invalid(f"Annotation {NETWORK_INTERFACES} must be a JSON list of network interfaces.") from None
        if not isinstance(parsed, list) or not all(isinstance(i, dict) for i in parsed):
            raise invalid(f"Annotation {NETWORK_INTERFACES} must be a JSON list of network interfaces.")
        vpc["networkInterfaces"] = [{k: i[k] for k in ("network", "subnetwork", "tags") if k in i} for i in parsed]
    if vpc:
        template["vpcAccess"] = vpc
    environment = annotations.pop(EXECUTION_ENVIRONMENT, None)
    if environment is not None:
        if environment not in ENVIRONMENT_V1_TO_V2:
            raise invalid(f"Annotation {EXECUTION_ENVIRONMENT} must be gen1 or gen2; got '{environment}'.")
        template["executionEnvironment"] = ENVIRONMENT_V1_TO_V2[environment]
    return written


def _int_annotation(key: str, value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Annotation {key} must be an integer; got '{value}'.") from None


def _bool_annotation(key: str, value: str) -> bool:
    if str(value).lower() not in ("true", "false"):
        raise invalid(f"Annotation {key} must be 'true' or 'false'; got '{value}'.")
    return str(value).lower() == "true"


def _v1_container_to_v2(container: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(container[k]) for k in _SAME_CONTAINER_FIELDS if container.get(k) not in (None, [], "")}
    env = []
    for var in container.get("env") or []:
        item = {"name": var.get("name", "")}
        if "value" in var:
            item["value"] = var["value"]
        ref = ((var.get("valueFrom") or {}).get("secretKeyRef")) or {}
        if ref:
            item["valueSource"] = {"secretKeyRef": {"secret": ref.get("name", ""), "version": ref.get("key", "latest")}}
        env.append(item)
    if env:
        out["env"] = env
    limits = ((container.get("resources") or {}).get("limits")) or {}
    if limits:
        out["resources"] = {"limits": dict(limits)}
    ports = [{k: p[k] for k in ("name", "containerPort") if k in p} for p in container.get("ports") or []]
    if ports:
        out["ports"] = ports
    mounts = [{k: m[k] for k in ("name", "mountPath") if k in m} for m in container.get("volumeMounts") or []]
    if mounts:
        out["volumeMounts"] = mounts
    for probe in ("startupProbe", "livenessProbe"):
        if container.get(probe):
            out[probe] = _probe(container[probe])
    return out


def _probe(probe: dict[str, Any]) -> dict[str, Any]:
    out = {k: probe[k] for k in _PROBE_FIELDS if k in probe}
    if probe.get("tcpSocket") is not None:
        out["tcpSocket"] = {k: v for k, v in probe["tcpSocket"].items() if k == "port"}
    if probe.get("httpGet") is not None:
        out["httpGet"] = {k: v for k, v in probe["httpGet"].items() if k in ("path", "port", "httpHeaders")}
    if probe.get("grpc") is not None:
        out["grpc"] = {k: v for k, v in probe["grpc"].items() if k in ("port", "service")}
    return out


def _v1_traffic_to_v2(target: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if target.get("latestRevision"):
        out["type"] = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    elif target.get("revisionName"):
        out.update(type="TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", revision=target["revisionName"])
    if target.get("percent") is not None:
        out["percent"] = int(target["percent"])
    if target.get("tag"):
        out["tag"] = target["tag"]
    return out


# ---- v2 -> v1 ---------------------------------------------------------------------------------------
def v2_container_to_v1(container: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(container[k]) for k in _SAME_CONTAINER_FIELDS if container.get(k) not in (None, [], "")}
    env = []
    for var in container.get("env") or []:
        item = {"name": var.get("name", "")}
        if "value" in var:
            item["value"] = var["value"]
        ref = ((var.get("valueSource") or {}).get("secretKeyRef")) or {}
        if ref:
            item["valueFrom"] = {"secretKeyRef": {"name": ref.get("secret", ""), "key": ref.get("version", "latest")}}
        env.append(item)
    if env:
        out["env"] = env
    limits = ((container.get("resources") or {}).get("limits")) or {}
    if limits:
        out["resources"] = {"limits": dict(limits)}
    if container.get("ports"):
        out["ports"] = [dict(p) for p in container["ports"]]
    if container.get("volumeMounts"):
        out["volumeMounts"] = [dict(m) for m in container["volumeMounts"]]
    for probe in ("startupProbe", "livenessProbe"):
        if container.get(probe):
            out[probe] = _probe(container[probe])
    return out


def v2_template_annotations(template: dict[str, Any], sidecar: dict[str, Any]) -> dict[str, str]:
    """The v1 revision/execution template annotations for a v2 template (plus the sidecar's)."""
    out = dict(sidecar.get("template_annotations") or {})
    out.update(template.get("annotations") or {})
    task = template.get("template", template)  # jobs keep the VPC fields one level down
    vpc = task.get("vpcAccess") or {}
    written = sidecar.get("written") or {}
    if vpc.get("connector"):
        # Read back as written through v1 (short or full name) while it names the same connector.
        same = written.get(CONNECTOR) and _last(written[CONNECTOR]) == _last(vpc["connector"])
        out[CONNECTOR] = written[CONNECTOR] if same else vpc["connector"]
    if vpc.get("egress") in EGRESS_V2_TO_V1:
        as_written = written.get(EGRESS)
        out[EGRESS] = as_written if as_written and EGRESS_V1_TO_V2.get(as_written) == vpc["egress"] \
            else EGRESS_V2_TO_V1[vpc["egress"]]
    if vpc.get("networkInterfaces"):
        out[NETWORK_INTERFACES] = json.dumps(vpc["networkInterfaces"], separators=(",", ":"))
    if task.get("executionEnvironment") in ENVIRONMENT_V2_TO_V1:
        out[EXECUTION_ENVIRONMENT] = ENVIRONMENT_V2_TO_V1[task["executionEnvironment"]]
    scaling = template.get("scaling") or {}
    if "minInstanceCount" in scaling:
        out[MIN_SCALE] = str(scaling["minInstanceCount"])
    if "maxInstanceCount" in scaling:
        out[MAX_SCALE] = str(scaling["maxInstanceCount"])
    containers = task.get("containers") or []
    resources = (containers[0].get("resources") or {}) if containers else {}
    # cpuIdle is on by default (REAL v2 GET); v1 shows the annotation when set, or when it is off.
    if "cpuIdle" in resources and (CPU_THROTTLING in written or resources["cpuIdle"] is False):
        out[CPU_THROTTLING] = "true" if resources["cpuIdle"] else "false"
    if "startupCpuBoost" in resources:
        out[STARTUP_CPU_BOOST] = "true" if resources["startupCpuBoost"] else "false"
    return out


def v2_service_annotations(resource: dict[str, Any], sidecar: dict[str, Any]) -> dict[str, str]:
    out = dict(sidecar.get("annotations") or {})
    out.update(resource.get("annotations") or {})
    if resource.get("creator"):
        out[CREATOR] = resource["creator"]
    if resource.get("lastModifier"):
        out[LAST_MODIFIER] = resource["lastModifier"]
    for field, key in (("client", CLIENT_NAME), ("clientVersion", CLIENT_VERSION), ("description", DESCRIPTION)):
        if resource.get(field):
            out[key] = resource[field]
    if resource.get("launchStage") and resource["launchStage"] != "GA":
        out[LAUNCH_STAGE] = resource["launchStage"]
    return out


def v2_traffic_to_v1(target: dict[str, Any], latest_ready: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if target.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST":
        out["latestRevision"] = True
        if latest_ready:
            out["revisionName"] = latest_ready
    elif target.get("revision"):
        out["revisionName"] = target["revision"]
    if "percent" in target:
        out["percent"] = target["percent"]
    if target.get("tag"):
        out["tag"] = target["tag"]
    return out


def seconds(duration: str | None, default: int) -> int:
    """``"300s"`` -> 300."""
    if not duration:
        return default
    try:
        return int(float(duration.rstrip("s")))
    except ValueError:
        return default


def _last(name: str) -> str:
    return name.rstrip("/").rpartition("/")[2]


# ---- whole objects, v2 record -> v1 ---------------------------------------------------------------
def _object_meta(record: dict[str, Any], *, project: str, project_number: str, region: str, name: str,
                 self_link: str, extra_annotations: dict[str, str] | None = None) -> dict[str, Any]:
    resource, sidecar = record["resource"], record.get("sidecar") or {}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": project_number,
        "selfLink": self_link,
        "uid": resource["uid"],
        "resourceVersion": resource.get("etag", "").strip('"'),
        "generation": int(resource["generation"]),
        "creationTimestamp": resource["createTime"],
        "labels": {LOCATION_LABEL: region, **(sidecar.get("labels") or {}), **(resource.get("labels") or {})},
        "annotations": {**v2_service_annotations(resource, sidecar), **(extra_annotations or {})},
    }
    if resource.get("deleteTime"):
        meta["deletionTimestamp"] = resource["deleteTime"]
    return meta


def _conditions_v1(resource: dict[str, Any], types: tuple[str, ...]) -> list[dict[str, Any]]:
    terminal = resource.get("terminalCondition") or {}
    state = terminal.get("state")
    status = {"CONDITION_SUCCEEDED": "True", "CONDITION_FAILED": "False"}.get(state, "Unknown")
    when = terminal.get("lastTransitionTime") or resource.get("updateTime")
    out = []
    for kind in types:
        condition: dict[str, Any] = {"type": kind, "status": status, "lastTransitionTime": when}
        if status == "False" and terminal.get("message"):
            condition["message"] = terminal["message"]
        if status == "Unknown":
            condition["reason"] = "Deploying"
        out.append(condition)
    return out


def render_service_v1(record: dict[str, Any], *, project: str, project_number: str, region: str) -> dict[str, Any]:
    """A stored service as the Knative ``serving.knative.dev/v1`` Service that v1 answers with."""
    resource, sidecar = record["resource"], record.get("sidecar") or {}
    name = _last(resource["name"])
    template = resource.get("template") or {}
    ingress = INGRESS_V2_TO_V1.get(resource.get("ingress", ""), "all")
    extra = {INGRESS: ingress, INGRESS_STATUS: ingress}
    if resource.get("urls"):
        extra[URLS] = json.dumps(resource["urls"])
    meta = _object_meta(record, project=project, project_number=project_number, region=region, name=name,
                        self_link=f"/apis/serving.knative.dev/v1/namespaces/{project_number}/services/{name}",
                        extra_annotations=extra)
    template_meta: dict[str, Any] = {
        "labels": {**(sidecar.get("template_labels") or {}), **(template.get("labels") or {})},
        "annotations": v2_template_annotations(template, sidecar),
    }
    if template.get("revision"):
        template_meta["name"] = template["revision"]
    if not template_meta["labels"]:
        del template_meta["labels"]
    revision_spec: dict[str, Any] = {
        "containerConcurrency": template.get("maxInstanceRequestConcurrency", 80),
        "timeoutSeconds": seconds(template.get("timeout"), 300),
        "serviceAccountName": template.get("serviceAccount", ""),
        "containers": [v2_container_to_v1(c) for c in template.get("containers") or []],
    }
    if sidecar.get("volumes"):
        revision_spec["volumes"] = copy.deepcopy(sidecar["volumes"])
    latest_ready = _last(resource["latestReadyRevision"]) if resource.get("latestReadyRevision") else None
    latest_created = _last(resource["latestCreatedRevision"]) if resource.get("latestCreatedRevision") else None
    status: dict[str, Any] = {
        "conditions": _conditions_v1(resource, ("Ready", "ConfigurationsReady", "RoutesReady")),
    }
    if "observedGeneration" in resource:
        status["observedGeneration"] = int(resource["observedGeneration"])
    if latest_ready:
        status["latestReadyRevisionName"] = latest_ready
    if latest_created:
        status["latestCreatedRevisionName"] = latest_created
    if resource.get("trafficStatuses"):
        status["traffic"] = [v2_traffic_to_v1(t, latest_ready) for t in resource["trafficStatuses"]]
    if resource.get("uri"):
        status["url"] = resource["uri"]
        status["address"] = {"url": resource["uri"]}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"template": {"metadata": template_meta, "spec": revision_spec},
                 "traffic": [v2_traffic_to_v1(t, None) for t in resource.get("traffic") or []]},
        "status": status,
    }


def render_job_v1(record: dict[str, Any], *, project: str, project_number: str, region: str) -> dict[str, Any]:
    """A stored job as the ``run.googleapis.com/v1`` Job that v1 answers with."""
    resource, sidecar = record["resource"], record.get("sidecar") or {}
    name = _last(resource["name"])
    execution = resource.get("template") or {}
    task = execution.get("template") or {}
    meta = _object_meta(record, project=project, project_number=project_number, region=region, name=name,
                        self_link=f"/apis/run.googleapis.com/v1/namespaces/{project_number}/jobs/{name}")
    template_meta: dict[str, Any] = {"annotations": v2_template_annotations(execution, sidecar)}
    labels = {**(sidecar.get("template_labels") or {}), **(execution.get("labels") or {})}
    if labels:
        template_meta["labels"] = labels
    task_spec: dict[str, Any] = {
        "containers": [v2_container_to_v1(c) for c in task.get("containers") or []],
        "maxRetries": task.get("maxRetries", 3),
        "timeoutSeconds": str(seconds(task.get("timeout"), 600)),
        "serviceAccountName": task.get("serviceAccount", ""),
    }
    if sidecar.get("volumes"):
        task_spec["volumes"] = copy.deepcopy(sidecar["volumes"])
    execution_spec: dict[str, Any] = {"taskCount": execution.get("taskCount", 1), "template": {"spec": task_spec}}
    if execution.get("parallelism") is not None:
        execution_spec["parallelism"] = execution["parallelism"]
    status: dict[str, Any] = {"conditions": _conditions_v1(resource, ("Ready",))}
    if "observedGeneration" in resource:
        status["observedGeneration"] = int(resource["observedGeneration"])
    if resource.get("executionCount"):
        status["executionCount"] = resource["executionCount"]
    latest = resource.get("latestCreatedExecution") or {}
    if latest.get("name"):
        status["latestCreatedExecution"] = {
            "name": _last(latest["name"]), "creationTimestamp": latest.get("createTime", ""),
            "completionStatus": latest.get("completionStatus", "EXECUTION_SUCCEEDED"),
        }
        if latest.get("completionTime"):
            status["latestCreatedExecution"]["completionTimestamp"] = latest["completionTime"]
    return {
        "apiVersion": "run.googleapis.com/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {"template": {"metadata": template_meta, "spec": execution_spec}},
        "status": status,
    }


def render_revision_v1(record: dict[str, Any], revision: dict[str, Any], *, project: str, project_number: str,
                       region: str) -> dict[str, Any]:
    """One revision of a stored service (Knative Revision)."""
    resource = record["resource"]
    service = _last(resource["name"])
    template = revision["template"]
    sidecar = revision.get("sidecar") or {}
    full = f"{resource['name']}/revisions/{revision['name']}"
    pending = resource.get("reconciling") and resource.get("latestCreatedRevision") == full
    serving = {t.get("revision") for t in resource.get("trafficStatuses") or []} | (
        {resource.get("latestReadyRevision")} if any(t.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
                                                      for t in resource.get("trafficStatuses") or []) else set())
    annotations = v2_template_annotations(template, sidecar)
    annotations[CREATOR] = resource.get("lastModifier", "")
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {
            "name": revision["name"], "namespace": project_number,
            "selfLink": f"/apis/serving.knative.dev/v1/namespaces/{project_number}/revisions/{revision['name']}",
            "generation": 1, "creationTimestamp": revision["createTime"],
            "labels": {LOCATION_LABEL: region, "serving.knative.dev/service": service,
                       "serving.knative.dev/configuration": service,
                       "serving.knative.dev/configurationGeneration": str(revision["generation"]),
                       **(sidecar.get("template_labels") or {}), **(template.get("labels") or {})},
            "annotations": annotations,
        },
        "spec": {
            "containerConcurrency": template.get("maxInstanceRequestConcurrency", 80),
            "timeoutSeconds": seconds(template.get("timeout"), 300),
            "serviceAccountName": template.get("serviceAccount", ""),
            "containers": [v2_container_to_v1(c) for c in template.get("containers") or []],
        },
        "status": {"observedGeneration": 1,
                   "conditions": [{"type": "Ready", "status": "Unknown" if pending else "True",
                                   "lastTransitionTime": revision["createTime"]},
                                  {"type": "Active", "status": "True" if serving & {full, revision["name"]} else "False",
                                   "lastTransitionTime": revision["createTime"], "severity": "Info"}]},
    }


def render_execution_v1(execution: dict[str, Any], *, project_number: str, region: str) -> dict[str, Any]:
    """A v2 Execution as the ``run.googleapis.com/v1`` Execution (gcloud polls its conditions)."""
    short = _last(execution["name"])
    task = execution.get("template") or {}
    status: dict[str, Any] = {"observedGeneration": 1, "startTime": execution["startTime"], "conditions": []}
    for condition in execution.get("conditions") or []:
        state = condition.get("state")
        item = {"type": condition["type"],
                "status": {"CONDITION_SUCCEEDED": "True", "CONDITION_FAILED": "False"}.get(state, "Unknown"),
                "lastTransitionTime": condition.get("lastTransitionTime", execution["startTime"])}
        if condition.get("message"):
            item["message"] = condition["message"]
        status["conditions"].append(item)
    for field in ("completionTime", "succeededCount", "runningCount", "failedCount"):
        if execution.get(field):
            status[field] = execution[field]
    spec: dict[str, Any] = {"taskCount": execution.get("taskCount", 1), "template": {"spec": {
        "containers": [v2_container_to_v1(c) for c in task.get("containers") or []],
        "maxRetries": task.get("maxRetries", 3),
        "timeoutSeconds": str(seconds(task.get("timeout"), 600)),
        "serviceAccountName": task.get("serviceAccount", ""),
    }}}
    if execution.get("parallelism"):
        spec["parallelism"] = execution["parallelism"]
    return {
        "apiVersion": "run.googleapis.com/v1",
        "kind": "Execution",
        "metadata": {
            "name": short, "namespace": project_number,
            "selfLink": f"/apis/run.googleapis.com/v1/namespaces/{project_number}/executions/{short}",
            "uid": execution["uid"], "generation": 1, "creationTimestamp": execution["createTime"],
            "labels": {LOCATION_LABEL: region, "run.googleapis.com/job": execution["job"]},
            "annotations": {CREATOR: execution.get("creator", "")},
        },
        "spec": spec,
        "status": status,
    }
