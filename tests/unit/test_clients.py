"""The client factory: endpoints and credentials for localcloud, lazy imports, caching. No network."""

from __future__ import annotations

import subprocess
import sys

import pytest

from egress_guard.clients import Clients
from egress_guard.config import Settings
from egress_guard.errors import ConfigError

URL = "http://127.0.0.1:8790"
COMPUTE = ["networks", "subnetworks", "firewalls", "routers", "addresses", "region_operations", "global_operations"]


@pytest.fixture
def clients() -> Clients:
    return Clients(Settings.from_env({"LOCALCLOUD_URL": URL + "/", "GOOGLE_CLOUD_PROJECT": "eg-demo-project"}))


@pytest.mark.parametrize("name", COMPUTE)
def test_clients_compute_points_at_localcloud(clients: Clients, name: str) -> None:
    from google.auth.credentials import AnonymousCredentials

    client = getattr(clients, name)
    assert client._transport._host == URL  # paths are /compute/v1/...
    assert isinstance(client._transport._credentials, AnonymousCredentials)
    assert getattr(clients, name) is client  # built once


@pytest.mark.parametrize("name,host", [
    ("connectors", URL + "/vpcaccess"),
    ("run_services", URL + "/run"),
    ("run_jobs", URL + "/run"),
])
def test_clients_rest_apis_point_at_their_prefix(clients: Clients, name: str, host: str) -> None:
    from google.auth.credentials import AnonymousCredentials

    client = getattr(clients, name)
    assert client._transport._host == host
    assert type(client._transport).__name__.endswith("RestTransport")
    assert isinstance(client._transport._credentials, AnonymousCredentials)


def test_clients_run_builds_v2_urls_under_run_prefix(clients: Clients) -> None:
    transport = clients.run_jobs._transport
    from google.cloud.run_v2.services.jobs.transports.rest_base import _BaseJobsRestTransport

    options = _BaseJobsRestTransport._BaseGetJob._get_http_options()
    assert options[0]["uri"] == "/v2/{name=projects/*/locations/*/jobs/*}"
    assert f"{transport._host}/v2/projects/p/locations/r/jobs/j".startswith(URL + "/run/v2/")


def test_clients_logging_uses_http_and_localcloud(clients: Clients) -> None:
    client = clients.logging
    assert client._connection.API_BASE_URL == URL + "/logging"
    assert client._use_grpc is False
    assert client.project == "eg-demo-project"


def test_clients_logging_needs_a_project_with_localcloud() -> None:
    with pytest.raises(ConfigError, match="needs a project"):
        _ = Clients(Settings.from_env({"LOCALCLOUD_URL": URL})).logging


def test_clients_publisher_honours_pubsub_emulator_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    clients = Clients(Settings.from_env({"LOCALCLOUD_URL": URL, "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"}))
    assert clients.publisher._transport._host == "127.0.0.1:8085"


def test_clients_explicit_credentials_win() -> None:
    from google.auth.credentials import AnonymousCredentials

    credentials = AnonymousCredentials()
    clients = Clients(Settings(localcloud_url=URL), credentials=credentials)
    assert clients.routers._transport._credentials is credentials


def test_importing_egress_guard_does_not_import_heavy_clients() -> None:
    code = (
        "import sys\n"
        "import egress_guard, egress_guard.clients, egress_guard.events, egress_guard.policy, egress_guard.config, "
        "egress_guard.publish, egress_guard.log, egress_guard.errors, egress_guard.names\n"
        "heavy = [m for m in ('google.cloud.compute_v1', 'google.cloud.run_v2', 'google.cloud.vpcaccess_v1', "
        "'google.cloud.pubsub_v1', 'google.cloud.logging') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_clients_compute_operation_waits_use_our_operations_clients(clients: Clients) -> None:
    # compute_v1 would otherwise poll ExtendedOperation.result() at compute.googleapis.com.
    services = clients.routers._transport._extended_operations_services
    assert services["region_operations"] is clients.region_operations
    assert services["global_operations"] is clients.global_operations
    assert clients.firewalls._transport._global_operations_client._transport._host == URL
