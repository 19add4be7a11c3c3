"""Cloud Run v2 ``updateMask`` in the localcloud backend: only the named paths change."""

from __future__ import annotations

import pytest

from localcloud.backends.run import REQUEST_LABEL, SERVICE, Target, Write
from localcloud.errors import ApiError
from localcloud.services import Services
from localcloud.world import World

WEB = Target(SERVICE, "proj-1", "europe-west2", "web")
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"


@pytest.fixture
def run():
    backend = Services.build(World()).run
    body = {"template": {"containers": [{"image": IMAGE}]}, "labels": {"team": "a"}, "description": "first"}
    backend.create(Write(WEB, body, {}, REQUEST_LABEL[("v2", SERVICE, "create")], "dev@example.com"),
                   fail_with=None)
    return backend


def update(run, body, mask):
    existing = run.find(WEB)
    write = Write(WEB, body, existing["sidecar"], REQUEST_LABEL[("v2", SERVICE, "update")], "dev@example.com",
                  update_mask=mask)
    return run.update(write, fail_with=None)[1]["resource"]


def test_only_the_masked_paths_change(run):
    resource = update(run, {"labels": {"team": "b"}, "description": "second",
                            "template": {"containers": [{"image": "elsewhere"}]}}, "labels")
    assert resource["labels"] == {"team": "b"}
    assert resource["description"] == "first"
    assert resource["template"]["containers"][0]["image"] == IMAGE


def test_snake_case_paths_name_camel_case_fields_and_absent_values_clear(run):
    resource = update(run, {"template": {"maxInstanceRequestConcurrency": 5}},
                      "template.max_instance_request_concurrency,description")
    assert resource["template"]["maxInstanceRequestConcurrency"] == 5
    assert "description" not in resource
    assert resource["labels"] == {"team": "a"}


def test_a_path_through_a_scalar_is_refused_and_changes_nothing(run):
    before = run.find(WEB)["resource"]
    with pytest.raises(ApiError) as caught:
        update(run, {"description": {"x": 1}}, "description.x")
    assert caught.value.code == 400
    assert "does not name a message field" in caught.value.message
    assert run.find(WEB)["resource"] == before


def test_a_masked_update_the_backend_refuses_leaves_the_stored_resource_as_it_was(run):
    before = run.find(WEB)["resource"]
    with pytest.raises(ApiError):
        update(run, {"template": {"containers": []}}, "template.containers")
    assert run.find(WEB)["resource"] == before
