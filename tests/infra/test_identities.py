"""The local stack's identities (localcloud/identities.py) are the deployment's: the same function
names and service account ids as infra/examples/single-project, so the sink filter rendered from
infra/ excludes on the local stack exactly the writes it excludes in Google Cloud."""

from __future__ import annotations

import pytest

from localcloud import identities, stack
from tests.infra.hcl import example_functions

pytestmark = pytest.mark.infra


def test_each_function_runs_as_its_terraform_service_account() -> None:
    deployed = {name: identities.service_account(function["service_account_id"])
                for name, function in example_functions().items()}
    assert dict(identities.FUNCTION_ACCOUNTS) == deployed


def test_the_stack_starts_each_function_under_that_account() -> None:
    assert {name: spec["sa"] for name, spec in stack.FUNCTIONS.items()} == dict(identities.FUNCTION_ACCOUNTS)
    assert stack.PROJECT == identities.PROJECT
