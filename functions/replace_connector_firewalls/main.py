"""replace_connector_firewalls: replace a connector's broad VPC access with narrow, tagged managed rules.

Trigger: audit entries of connector creations and firewall rule changes (README.md), as a Pub/Sub or
Eventarc CloudEvent. The logic lives in egress_guard.guardrails.connector_firewalls; this file only
wires it to the Functions Framework.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from egress_guard.guardrails.connector_firewalls import GUARDRAIL
from egress_guard.runner import Context, handle

# Built once per instance; a bad setting or policy fails the cold start with a message naming it.
CONTEXT = Context.from_env(remember_decisions=True)  # a repeat of a decided change costs no call


@functions_framework.cloud_event
def replace_connector_firewalls(cloud_event: CloudEvent) -> None:
    # Returns for every permanent outcome (acknowledged); raises TransientError so the platform retries.
    handle(cloud_event, GUARDRAIL, CONTEXT)
