"""The whole local stack for end-to-end tests: Pub/Sub emulator, localcloud, the three functions
under the real Functions Framework (3 instances each, one request at a time, as deployed), the
Slack receiver; every port picked free, every process
stopped by PID when the module's tests end."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from localcloud.control_client import LocalCloudControl
from localcloud.stack import FINDINGS_TOPIC, PROJECT, Stack

ROOT = Path(__file__).resolve().parents[2]
# Both guardrails enforce, connectors may reach tag db on tcp:5432, broad auto rules disabled:
# the policy that exercises every write the functions can make.
ENFORCE_POLICY = ROOT / "examples" / "policy" / "demo.yaml"
# Each function as deployed: 3 instances (infra/examples' default max) at concurrency 1.
DEPLOYED_INSTANCES = 3


class RunningStack:
    def __init__(self, stack: Stack, env: dict[str, str]) -> None:
        self.stack = stack
        self.env = env
        self.url = env["LOCALCLOUD_URL"]
        self.control = LocalCloudControl(self.url)
        self.project = PROJECT

    def gcloud(self, *args: str, check: bool = True):
        import subprocess

        proc = subprocess.run(["gcloud", *args], env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=180)
        if check and proc.returncode != 0:
            raise AssertionError(f"gcloud {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def gcloud_json(self, *args: str) -> Any:
        return json.loads(self.gcloud(*args, "--format=json").stdout or "null")

    def pull_findings(self, max_messages: int = 100) -> list[dict[str, Any]]:
        """Findings published so far (drained from the findings-watch subscription)."""
        from google.cloud import pubsub_v1

        os.environ["PUBSUB_EMULATOR_HOST"] = self.env["PUBSUB_EMULATOR_HOST"]
        subscriber = pubsub_v1.SubscriberClient()
        path = subscriber.subscription_path(self.project, f"{FINDINGS_TOPIC}-watch")
        out: list[dict[str, Any]] = []
        while True:
            response = subscriber.pull(request={"subscription": path, "max_messages": max_messages},
                                       timeout=5, retry=None)
            if not response.received_messages:
                return out
            out.extend(json.loads(m.message.data) for m in response.received_messages)
            subscriber.acknowledge(request={"subscription": path,
                                            "ack_ids": [m.ack_id for m in response.received_messages]})

    def slack_messages(self) -> list[dict[str, Any]]:
        return requests.get(self.env["SLACK_RECEIVER_URL"] + "/_messages", timeout=5).json()


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.2) -> Any:
    """Poll until check() returns a truthy value (not a timed assertion: the bound only stops a hang)."""
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    return last


def _start(tmp_path_factory, name: str, policy: Path | None,
           instances: int = DEPLOYED_INSTANCES, function_settings: dict[str, str] | None = None) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp(name)
    stack = Stack(state_dir=state, guardrails=True, policy=str(policy) if policy else None, fixed_ports=False,
                  log=lambda line: None, instances=instances, function_settings=dict(function_settings or {}))
    env = stack.up()
    try:
        yield RunningStack(stack, env)
    finally:
        stack.down(quiet=True)


@pytest.fixture(scope="module")
def stack_enforce(tmp_path_factory) -> Iterator[RunningStack]:
    yield from _start(tmp_path_factory, "stack-enforce", ENFORCE_POLICY)


@pytest.fixture(scope="module")
def stack_default(tmp_path_factory) -> Iterator[RunningStack]:
    yield from _start(tmp_path_factory, "stack-default", None)
