"""Who is who on the local stack, written once: its project, region and service accounts.

``make up``, ``make demo``, the tests and the benchmarks all act in this project and as these
identities. The functions' account ids are those of ``infra/examples/single-project``
(``tests/infra/test_identities.py`` checks it), so the sink filter rendered from ``infra/`` excludes
the functions' own writes on the local stack exactly as it would in Google Cloud.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

PROJECT = "eg-demo-project"
REGION = "europe-west2"


def service_account(account_id: str, project: str = PROJECT) -> str:
    """The e-mail Google gives the service account ``account_id`` of ``project``."""
    return f"{account_id}@{project}.iam.gserviceaccount.com"


# Each function's identity: what the loop guard and localcloud's audit entries see as the principal.
NAT_SA = service_account("egress-guard-nat")
FIREWALLS_SA = service_account("egress-guard-firewalls")
SLACK_SA = service_account("egress-guard-slack")
FUNCTION_ACCOUNTS: Mapping[str, str] = MappingProxyType({
    "ensure_nat": NAT_SA,
    "replace_connector_firewalls": FIREWALLS_SA,
    "notify_slack": SLACK_SA,
})

# Identities the command line runs under in tests and benchmarks (a person or a CI job in production).
SWEEP_SA = service_account("egress-guard-sweep")
BACKFILL_SA = service_account("egress-guard-backfill")
REPLAY_SA = service_account("egress-guard-replay")
