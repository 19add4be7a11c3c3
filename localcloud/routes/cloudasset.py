"""Cloud Asset Inventory (v1) and the resource hierarchy it searches under.

GET  /cloudasset/v1/{projects|folders|organizations}/ID:searchAllResources   cloudasset.searchAllResources
     ?assetTypes=T (repeated; exact or RE2)&pageSize=&pageToken=&readMask=&query= (empty only)
PUT  /_localcloud/resourcemanager/organizations  {name: "organizations/N", displayName?}
PUT  /_localcloud/resourcemanager/folders        {name: "folders/N", parent: "organizations/N"|"folders/M", displayName?}
PUT  /_localcloud/resourcemanager/projects       {project: "P", parent: "folders/N"|"organizations/N"}
POST /_localcloud/resourcemanager/deny           {scope: "folders/N"|"organizations/N", principal: EMAIL|"*"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localcloud.errors import invalid
from localcloud.routing import Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services


def routes(app: "Services") -> list[Route]:
    assets = app.cloudasset

    def search(call: Call) -> Result:
        size = call.query.get("pageSize") or "0"
        if not size.lstrip("-").isdigit():
            raise invalid(f"Invalid value at 'page_size' (TYPE_INT32), \"{size}\"")
        return Result(assets.search(
            f"{call.params['kind']}/{call.params['id']}", principal=call.principal,
            asset_types=tuple(call.query_lists.get("assetTypes", ())), query=call.query.get("query", ""),
            page_size=int(size), page_token=call.query.get("pageToken", ""), read_mask=call.query.get("readMask", ""),
            order_by=call.query.get("orderBy", "")))

    return [Route("GET", "/cloudasset/v1/{kind}/{id}:searchAllResources", "cloudasset.v1",
                  "cloudasset.searchAllResources", search)]


def control_routes(app: "Services") -> list[Route]:
    hierarchy = app.resourcemanager

    def body(call: Call, *keys: str) -> dict[str, str]:
        given = call.body if isinstance(call.body, dict) else {}
        if not all(isinstance(given.get(k), str) for k in keys):
            raise invalid(f"{call.path} takes {{{', '.join(keys)}}} (strings)")
        return given

    def organization(call: Call) -> Result:
        b = body(call, "name")
        return Result(hierarchy.put_organization(b["name"], str(b.get("displayName", ""))))

    def folder(call: Call) -> Result:
        b = body(call, "name", "parent")
        return Result(hierarchy.put_folder(b["name"], b["parent"], str(b.get("displayName", ""))))

    def project(call: Call) -> Result:
        b = body(call, "project", "parent")
        return Result(hierarchy.put_project(b["project"], b["parent"]))

    def deny(call: Call) -> Result:
        b = body(call, "scope", "principal")
        hierarchy.deny(b["scope"], b["principal"])
        return Result({})

    base = "/_localcloud/resourcemanager"
    return [Route("PUT", f"{base}/organizations", "", "localcloud.resourcemanager.organizations.put", organization),
            Route("PUT", f"{base}/folders", "", "localcloud.resourcemanager.folders.put", folder),
            Route("PUT", f"{base}/projects", "", "localcloud.resourcemanager.projects.put", project),
            Route("POST", f"{base}/deny", "", "localcloud.resourcemanager.deny", deny)]
