"""ensure_nat: make sure the network and region a workload egresses through has a Cloud NAT.

Trigger: audit entries of connector creations, Cloud Run service/job writes and router changes
(README.md), as a Pub/Sub or Eventarc CloudEvent. The logic lives in egress_guard.guardrails.ensure_nat;
this file only wires it to the Functions Framework.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from egress_guard.guardrails.ensure_nat import GUARDRAIL
from egress_guard.runner import Context, handle

# Built once per instance; a bad setting or policy fails the cold start with a message naming it.
CONTEXT = Context.from_env(remember_decisions=True)  # a repeat of a decided change costs no call


@functions_framework.cloud_event
def ensure_nat(cloud_event: CloudEvent) -> None:
    # Returns for every permanent outcome (acknowledged); raises TransientError so the platform retries.
    handle(cloud_event, GUARDRAIL, CONTEXT)
