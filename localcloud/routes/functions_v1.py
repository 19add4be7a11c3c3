"""Cloud Functions v1 (1st gen) URL routes, under the ``/cloudfunctions`` prefix localcloud serves the API at.

URL templates from the discovery document (``cloudfunctions.v1.json``): the functions of a location,
the global ``operations/ID`` of v1's long-running operations, and a function's IAM policy, which
``gcloud functions deploy --no-gen2`` reads to keep a new HTTP function private. Handlers only
convert between calls and the backend (``backends/functions_v1.py``); those both generations share
are ``routes.functions.function_routes``; the source upload URL is served
by ``server.py``, as for 2nd gen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localcloud.backends.functions_v1 import FunctionsV1Backend
from localcloud.routing import Call, Result, Route
from localcloud.routes.functions import function_routes

if TYPE_CHECKING:
    from localcloud.services import Services

API = "cloudfunctions.v1"


def method_name(verb: str) -> str:
    """The audit methodName (docs/gcp-facts.md §12.2, Google's audit-logging page for Cloud Functions)."""
    return f"google.cloud.functions.v1.CloudFunctionsService.{verb}Function"


def routes(app: "Services") -> list[Route]:
    backend: FunctionsV1Backend = app.functions_v1

    def start_create(call: Call, fail_with):
        return backend.create(call.params["project"], call.params["location"], call.body or {}, fail_with=fail_with)

    def created_name(call: Call) -> str:  # v1's create names its function in the body, not the query
        return str((call.body or {}).get("name", "")).rsplit("/", 1)[-1]

    def get_iam_policy(call: Call) -> Result:
        # Nobody but its owner may invoke a new function: an empty policy (bindings are not emulated).
        backend.get(call.params["project"], call.params["location"], call.params["function"])
        return Result({"version": 1, "etag": "BwAAAAAAAAA="})

    def get_operation(call: Call) -> Result:
        return Result(backend.operation(f"operations/{call.params['operation']}").snapshot())

    functions = "/cloudfunctions/v1/projects/{project}/locations/{location}/functions"
    m = "cloudfunctions.projects.locations"
    return [  # getIamPolicy before the shared ``functions/{function}``, which would take its name too
        Route("GET", f"{functions}/{{function}}:getIamPolicy", API, f"{m}.functions.getIamPolicy", get_iam_policy),
        Route("GET", "/cloudfunctions/v1/operations/{operation}", API, "cloudfunctions.operations.get", get_operation),
        *function_routes(app, backend, API, method_name, created_name, start_create),
    ]
