"""Secret Manager routes: secret and version metadata (doctor's reads), and the version state changes.

GET  /secretmanager/v1/projects/P/secrets/S                  secretmanager.projects.secrets.get
GET  /secretmanager/v1/projects/P/secrets/S/versions         secretmanager.projects.secrets.versions.list
POST /secretmanager/v1/projects/P/secrets/S/versions/V:{disable|enable|destroy}
POST /_localcloud/secrets   {project, secret, versions: N}   create a secret with N enabled versions
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localcloud.errors import invalid
from localcloud.routing import Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services

_STATES = {"disable": "DISABLED", "enable": "ENABLED", "destroy": "DESTROYED"}


def routes(app: "Services") -> list[Route]:
    secrets = app.secretmanager
    base = "/secretmanager/v1/projects/{project}/secrets/{secret}"

    def get(call: Call) -> Result:
        return Result(secrets.get(call.params["project"], call.params["secret"]))

    def list_versions(call: Call) -> Result:
        versions = secrets.list_versions(call.params["project"], call.params["secret"])
        wanted = call.query.get("filter", "")
        if wanted:  # the one filter form worth supporting: state:ENABLED
            key, _, value = wanted.partition(":")
            if key.strip() != "state":
                raise invalid(f"Invalid filter: {wanted}")
            versions = [v for v in versions if v["state"] == value.strip().upper()]
        out: dict[str, Any] = {"totalSize": len(versions)}
        if versions:
            out["versions"] = versions
        return Result(out)

    def change(verb: str):
        def handler(call: Call) -> Result:
            return Result(secrets.set_state(call.params["project"], call.params["secret"], call.params["version"],
                                            _STATES[verb]))
        return handler

    out = [Route("GET", base, "secretmanager.v1", "secretmanager.projects.secrets.get", get),
           Route("GET", f"{base}/versions", "secretmanager.v1", "secretmanager.projects.secrets.versions.list",
                 list_versions)]
    for verb in _STATES:
        out.append(Route("POST", f"{base}/versions/{{version}}:{verb}", "secretmanager.v1",
                         f"secretmanager.projects.secrets.versions.{verb}", change(verb)))
    return out


def control_routes(app: "Services") -> list[Route]:
    secrets = app.secretmanager

    def create(call: Call) -> Result:
        body = call.body if isinstance(call.body, dict) else {}
        project, secret, count = body.get("project"), body.get("secret"), body.get("versions", 1)
        if not isinstance(project, str) or not isinstance(secret, str) or not isinstance(count, int) or count < 0:
            raise invalid('a secret is {"project": "P", "secret": "S", "versions": N (enabled versions, default 1)}')
        created = secrets.create(project, secret)
        for _ in range(count):
            secrets.add_version(project, secret)
        return Result(created)

    return [Route("POST", "/_localcloud/secrets", "", "localcloud.secrets.post", create)]
