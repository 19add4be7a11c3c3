"""Shared fixtures: an in-process localcloud on a free loopback port, reset before each test."""

from __future__ import annotations

import os
import threading
from typing import Iterator

import pytest

from localcloud.identities import PROJECT, REGION


@pytest.fixture(scope="session")
def localcloud_server() -> Iterator[str]:
    from localcloud.server import serve

    server = serve("127.0.0.1", 0)
    server.app.world.config.validate_responses = True  # our own answers must match discovery in tests
    thread = threading.Thread(target=server.serve_forever, name="localcloud", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield url
    finally:
        server.shutdown()
        server.app.operations.stop_ticker()
        thread.join(timeout=5)


@pytest.fixture
def localcloud_url(localcloud_server: str) -> str:
    from localcloud.control_client import LocalCloudControl

    control = LocalCloudControl(localcloud_server)
    control.reset()
    control.config(compute_operation_delay_s=0.0, connector_ready_delay_s=0.2, run_operation_delay_s=0.0,
                   connector_broad_rules="visible", validate_responses=True)
    return localcloud_server


@pytest.fixture
def localcloud(localcloud_url: str):
    from localcloud.control_client import LocalCloudControl

    return LocalCloudControl(localcloud_url)


@pytest.fixture
def project() -> str:
    return PROJECT


@pytest.fixture
def region() -> str:
    return REGION


@pytest.fixture(autouse=True)
def _isolate_environment() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
