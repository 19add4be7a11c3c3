"""The project facts gcloud reads around a deploy: whether an API is enabled, the project's number, the
default Cloud Build service account. Reads only, one answer each, checked against the discovery
documents like every other route; no state of their own (a project exists when it is named, as
everywhere in localcloud, and every API is enabled). A project's ``parent`` is the resource
hierarchy's (``backends/resourcemanager.py``), when one was seeded.

``gcloud functions deploy`` asks all three before it creates a function (gcloud 528,
``command_lib/functions/v2/deploy/command.py``: ``PromptToEnableApiIfDisabled`` for run, cloudbuild
and artifactregistry, then ``ValidateDefaultBuildServiceAccountAndPromptWarning``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localcloud.backends.functions import check_location
from localcloud.backends.vpcaccess import project_number
from localcloud.routing import Call, Result, Route

if TYPE_CHECKING:
    from localcloud.services import Services


def routes(app: "Services") -> list[Route]:
    def service(call: Call) -> Result:
        owner = call.params["owner"]
        number = project_number(owner) if not owner.isdigit() else owner
        return Result({"name": f"projects/{number}/services/{call.params['service']}",
                       "parent": f"projects/{number}", "state": "ENABLED"})

    def project(call: Call) -> Result:
        p = call.params["project"]
        check_location(p, "europe-west2")
        body = {"projectId": p, "projectNumber": project_number(p), "name": p, "lifecycleState": "ACTIVE"}
        parent = app.resourcemanager.parent_of(p)  # seeded through /_localcloud/resourcemanager/projects
        if parent:
            kind, _, number = parent.partition("/")
            body["parent"] = {"type": kind.removesuffix("s"), "id": number}
        return Result(body)

    def build_account(call: Call) -> Result:
        p, r = call.params["project"], call.params["location"]
        # Not the Compute default account: gcloud then skips reading the project's IAM policy.
        email = f"{project_number(p)}@cloudbuild.gserviceaccount.com"
        return Result({"name": f"projects/{p}/locations/{r}/defaultServiceAccount",
                       "serviceAccountEmail": f"projects/{p}/serviceAccounts/{email}"})

    return [
        Route("GET", "/serviceusage/v1/{kind}/{owner}/services/{service}", "serviceusage.v1",
              "serviceusage.services.get", service),
        Route("GET", "/cloudresourcemanager/v1/projects/{project}", "cloudresourcemanager.v1",
              "cloudresourcemanager.projects.get", project),
        Route("GET", "/cloudbuild/v1/projects/{project}/locations/{location}/defaultServiceAccount", "cloudbuild.v1",
              "cloudbuild.projects.locations.getDefaultServiceAccount", build_account),
    ]
