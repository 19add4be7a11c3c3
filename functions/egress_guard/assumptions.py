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

# Whether a 2nd gen Cloud Functions deploy also writes a ``run.googleapis.com`` audit entry for the
# function's underlying Cloud Run service (docs/gcp-facts.md §12.3: UNCONFIRMED; Google says only that
# its service agent performs administrative actions during the deploy, and no sample was found).
# Chosen: no. The Functions entry (confirmed) is what ensure_nat acts on; a Cloud Run entry for a
# service labelled ``goog-managed-by: cloudfunctions`` is acknowledged without acting whatever this
# says, so if Google does write one nothing is decided twice. localcloud follows the choice (it writes
# no such entry); tests/contract/test_functions_guardrail.py covers the other case with a labelled service.
FUNCTIONS_V2_WRITE_RUN_ENTRY = False
# The label Cloud Functions puts on a 2nd gen function's Cloud Run service ([3P], docs/gcp-facts.md §12.3).
FUNCTIONS_MANAGED_LABEL = ("goog-managed-by", "cloudfunctions")
