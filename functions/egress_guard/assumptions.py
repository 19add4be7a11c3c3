"""The registry of Google behaviours egress-guard relies on but could not confirm (UNCONFIRMED).

Each is one constant, with why it was chosen and where the gap is recorded (docs/gcp-facts.md).
The code, the test fixtures and localcloud all read the choice from here, so when Google's real
behaviour is learnt there is one line to change and the tests follow it. The trigger methods
whose audit ``methodName`` is unconfirmed are marked ``confirmed=False`` in ``events.TRIGGERS``.
"""

from __future__ import annotations

# resource.type of Serverless VPC Access audit entries (docs/gcp-facts.md §3.2: "vpcaccess entry
# shape (resource.type, request/response body): UNCONFIRMED, no sample found"). Chosen: the
# monitored-resource type Cloud Monitoring has for connectors, as Cloud Run (cloud_run_revision)
# and Compute (gce_router, gce_firewall_rule) use their own types in their audit entries.
# localcloud's audit entries use it; egress-guard's parser accepts any type.
VPCACCESS_RESOURCE_TYPE = "vpc_access_connector"

# resource.type of Cloud Run job audit entries (docs/gcp-facts.md §3.2: ``cloud_run_job``?).
RUN_JOB_RESOURCE_TYPE = "cloud_run_job"

# Whether VPC Access and Cloud Run v2 write an ``operation.last`` entry after the
# ``operation.first`` one (docs/gcp-facts.md §3.3). Unknown, so every entry of a long-running
# create is handled alike and whichever arrives must be enough: the guardrail re-reads the
# resource and acts on what it needs as soon as that is known (Cloud Run's template and a
# connector's network and subnet or range are there from the create call on: ensure_nat acts while
# they are CREATING). What exists only later (a connector's aet-* rules, at READY) makes the
# guardrail raise TransientError while the resource is not READY, and the platform redelivers
# until it is. Both converge with one entry; with two, the second finds the work done and reports
# compliant (same finding id: notify_slack posts it once).
NOT_READY_IS_TRANSIENT = True
