"""IAM routes: custom roles (IAM v1) and the IAM policies of projects, folders and organizations
(Resource Manager v3), the reads doctor makes; plus control routes that seed them.

GET  /iam/v1/{projects|organizations}/ID/roles/ROLE              iam.*.roles.get
GET  /iam/v1/{projects|organizations}/ID/roles[?view=FULL]        iam.*.roles.list
POST /cloudresourcemanager/v3/{projects|folders|organizations}/ID:getIamPolicy
GET  /pubsub/v1/projects/P/topics/T:getIamPolicy, POST ...:setIamPolicy   (the Pub/Sub emulator has no IAM)
PUT  /_localcloud/iam/roles       {name, permissions, title?, description?, deleted?}  create or replace a role
POST /_localcloud/iam/bindings    {resource, role, member}   add a binding (DELETE removes it)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localcloud.errors import invalid
from localcloud.routing import Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services

DEFAULT_PAGE_SIZE = 300  # ListRolesRequest.pageSize: "The default is 300, and the maximum is 1,000"


def routes(app: "Services") -> list[Route]:
    iam = app.iam

    def get_role(call: Call) -> Result:
        kind = call.path.split("/")[3]
        return Result(iam.get_role(f"{kind}/{call.params['parent']}/roles/{call.params['role']}"))

    def list_roles(call: Call) -> Result:
        kind = call.path.split("/")[3]
        view = call.query.get("view", "BASIC")
        if view not in ("BASIC", "FULL"):
            raise invalid(f"Invalid value for enum type 'google.iam.admin.v1.RoleView': \"{view}\"")
        roles = iam.list_roles(f"{kind}/{call.params['parent']}", view=view,
                               show_deleted=call.query.get("showDeleted", "false") == "true")
        size = int(call.query.get("pageSize") or DEFAULT_PAGE_SIZE)
        start = int(call.query.get("pageToken") or 0)
        out: dict[str, Any] = {"roles": roles[start:start + size]} if roles[start:start + size] else {}
        if start + size < len(roles):
            out["nextPageToken"] = str(start + size)
        return Result(out)

    def get_policy(call: Call) -> Result:
        kind = call.path.split("/")[3]
        return Result(iam.get_policy(f"{kind}/{call.params['id']}"))

    def topic(call: Call) -> str:
        return f"projects/{call.params['project']}/topics/{call.params['topic']}"

    def get_topic_policy(call: Call) -> Result:
        return Result(iam.topic_policy(topic(call)))

    def set_topic_policy(call: Call) -> Result:
        return Result(iam.set_topic_policy(topic(call), (call.body or {}).get("policy") or {}))

    topic_path = "/pubsub/v1/projects/{project}/topics/{topic}"
    out: list[Route] = [
        Route("GET", f"{topic_path}:getIamPolicy", "pubsub.v1", "pubsub.projects.topics.getIamPolicy", get_topic_policy),
        Route("POST", f"{topic_path}:setIamPolicy", "pubsub.v1", "pubsub.projects.topics.setIamPolicy", set_topic_policy),
    ]
    for kind in ("projects", "organizations"):
        out += [Route("GET", f"/iam/v1/{kind}/{{parent}}/roles/{{role}}", "iam.v1", f"iam.{kind}.roles.get", get_role),
                Route("GET", f"/iam/v1/{kind}/{{parent}}/roles", "iam.v1", f"iam.{kind}.roles.list", list_roles)]
    for kind in ("projects", "folders", "organizations"):
        out.append(Route("POST", f"/cloudresourcemanager/v3/{kind}/{{id}}:getIamPolicy", "cloudresourcemanager.v3",
                         f"cloudresourcemanager.{kind}.getIamPolicy", get_policy))
    return out


def control_routes(app: "Services") -> list[Route]:
    iam = app.iam

    def put_role(call: Call) -> Result:
        body = call.body if isinstance(call.body, dict) else {}
        if not isinstance(body.get("name"), str) or not isinstance(body.get("permissions"), list):
            raise invalid('a role is {"name": "projects/P/roles/R", "permissions": [...], "title"?, "deleted"?}')
        return Result(iam.put_role(body["name"], body["permissions"], title=str(body.get("title", "")),
                                   description=str(body.get("description", "")), deleted=bool(body.get("deleted"))))

    def binding(call: Call) -> Result:
        body = call.body if isinstance(call.body, dict) else {}
        if not all(isinstance(body.get(k), str) for k in ("resource", "role", "member")):
            raise invalid('a binding is {"resource": "projects/P", "role": "...", "member": "serviceAccount:..."}')
        change = iam.add_binding if call.http_method == "POST" else iam.remove_binding
        return Result(change(body["resource"], body["role"], body["member"]))

    base = "/_localcloud/iam"
    return [Route("PUT", f"{base}/roles", "", "localcloud.iam.roles.put", put_role),
            Route("POST", f"{base}/bindings", "", "localcloud.iam.bindings.post", binding),
            Route("DELETE", f"{base}/bindings", "", "localcloud.iam.bindings.delete", binding)]
