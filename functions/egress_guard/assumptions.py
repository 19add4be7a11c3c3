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
# create is handled alike and the first must be enough: each guardrail re-reads the resource and
# acts on what it needs as soon as that is known, which for both is the create call. Cloud Run's
# template, a connector's network and subnet or range, and a connector's network tag
# (``vpc-connector-REGION-NAME``, from its name) exist from the create call on, so ensure_nat adds
# the NAT and replace_connector_firewalls adds the managed rules while the connector is CREATING,
# before its VMs run: nothing waits for READY, nor for Pub/Sub's redelivery backoff (10 s to 600 s).
# Only disabling the broad ``aet-*`` rules (``auto_rules: disable``) needs them to exist; their own
# Compute insert entries (``operation.last`` confirmed for Compute) bring that. A later entry of the
# same change finds the work done (compliant, same finding id: notify_slack posts it once).
WAITS_FOR_LAST_ENTRY = False

# How many connectors' firewall rules ``egress-guard sweep`` writes at once in enforce mode. Each
# connector's rules are its own (no two connectors write one rule), and a sweep of 5,000 connectors
# without managed rules makes 10,000 inserts, each waited for: one at a time, that is Google's
# operation latency 10,000 times over. Compute's write quota per project is counted per minute and
# its figure for firewall writes is not published for our case (UNCONFIRMED); eight writers keep a
# sweep under a few hundred writes a minute at about a second per operation. A 429 fails that
# connector's finding (transient: the next sweep does it), never the sweep.
SWEEP_FIREWALL_WRITERS = 8
