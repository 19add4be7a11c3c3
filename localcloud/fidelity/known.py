"""Differences that are explained, each with its reason and evidence (one table, read top down).

A difference is *known* when it comes from the recording rather than from localcloud:

- **normalisation**: the recorder rewrote Google's answer before committing it (NOTES.md §0), so the
  recorded text is not what Google sent (deleted ``done: false``, compute/beta links, relative NAT
  links, deleted ``routingConfig``, sorted ``subnetworks``, deleted ``warnings``, beta-only fields);
- **environment**: the recorded project held things the test did not create and localcloud does not
  reproduce on purpose (the default network spans every region Google runs);
- **random**: values Google draws at random that the recorder left as they were (a revision suffix,
  a service URL hash); they are value differences, never structural.

Nothing else is explained: every other difference is listed as one to fix or to explain here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from localcloud import discovery
from localcloud.fidelity.compare import EXTRA, LINK, MISSING, ORDER, VALUE, Difference, ABSENT
from localcloud.fidelity.replay import Step

NORMALISATION, ENVIRONMENT, RANDOM = "normalisation", "environment", "random"
COMPUTE_V1 = "https://www.googleapis.com/compute/v1/"


@dataclass(frozen=True)
class Explanation:
    key: str
    category: str
    reason: str
    evidence: str
    applies: Callable[[Difference, Step], bool]


def _kind_of(step: Step) -> str:
    body = step.body if isinstance(step.body, dict) else {}
    return str(body.get("kind", ""))


def _pairs(d: Difference) -> list[tuple[Any, Any]]:
    """The differing (recorded, actual) values, element by element for lists of equal length."""
    if isinstance(d.recorded, list) and isinstance(d.actual, list):
        if len(d.recorded) != len(d.actual):
            return [(d.recorded, d.actual)]
        return [(r, a) for r, a in zip(d.recorded, d.actual) if r != a]
    return [(d.recorded, d.actual)]


# ---- the rules ---------------------------------------------------------------------------------------
def _lro_done_false(d: Difference, step: Step) -> bool:
    return d.kind == EXTRA and d.path == "body.done" and d.actual is False


def _lro_cancel_requested(d: Difference, step: Step) -> bool:
    return d.kind == EXTRA and d.path.endswith(".metadata.cancelRequested") and d.actual is False


def _beta_links(d: Difference, step: Step) -> bool:
    return d.kind == LINK and all(
        isinstance(r, str) and isinstance(a, str) and "/compute/beta/" in r
        and r.replace("/compute/beta/", "/compute/v1/") == a for r, a in _pairs(d))


_NAT_LINK_PATH = re.compile(
    r"\.nats\[\d+\]\.(?:subnetworks\[\d+\]\.name|rules\[\d+\]\.action\.sourceNat(?:Active|Drain)Ranges)$")


def _nat_relative_links(d: Difference, step: Step) -> bool:
    return d.kind == LINK and bool(_NAT_LINK_PATH.search(d.path)) and all(
        isinstance(r, str) and isinstance(a, str) and r.startswith("projects/") and a == COMPUTE_V1 + r
        for r, a in _pairs(d))


def _routing_config_deleted(d: Difference, step: Step) -> bool:
    return d.kind == EXTRA and d.path == "body.routingConfig" and _kind_of(step) == "compute#network"


def _subnetworks_sorted(d: Difference, step: Step) -> bool:
    return d.kind == ORDER and d.path == "body.subnetworks" and _kind_of(step) == "compute#network"


def _operation_warnings(d: Difference, step: Step) -> bool:
    return d.kind == EXTRA and d.path == "body.warnings" and _kind_of(step) == "compute#operation"


def _beta_only_field(d: Difference, step: Step) -> bool:
    """A field the recorded body has that compute v1 does not define: the recording called beta."""
    kind = _kind_of(step)
    if d.kind != MISSING or step.target.service != "compute" or not kind.startswith("compute#"):
        return False
    m = re.fullmatch(r"body\.(\w+)", d.path)
    if not m:
        return False
    schema = kind.split("#", 1)[1]
    schema = schema[0].upper() + schema[1:]
    try:
        properties = discovery.schema("compute.v1", schema).get("properties", {})
    except KeyError:
        return False
    return m.group(1) not in properties


def _default_network_regions(d: Difference, step: Step) -> bool:
    body = step.body if isinstance(step.body, dict) else {}
    return (d.path == "body.subnetworks" and d.kind in (LINK, VALUE, ORDER)
            and body.get("kind") == "compute#network" and body.get("autoCreateSubnetworks") is True)


_REVISION = re.compile(r"-\d{5}-[a-z0-9]{3}$")
_RUN_URI = re.compile(r"-[a-z0-9]{10}-[a-z]{2}\.a\.run\.app")


def _run_random_names(d: Difference, step: Step) -> bool:
    if d.kind != VALUE or step.target.service != "run":
        return False

    def masked(value: Any) -> Any:
        if isinstance(value, str):
            return _RUN_URI.sub("-<hash>-xx.a.run.app", _REVISION.sub("-NNNNN-<rnd>", value))
        if isinstance(value, list):
            return [masked(v) for v in value]
        return value

    return d.recorded is not ABSENT and masked(d.recorded) == masked(d.actual)


EXPLANATIONS: tuple[Explanation, ...] = (
    Explanation(
        "lro-done-false", NORMALISATION,
        "Google answers a running google.longrunning.Operation with \"done\": false; the recorder deleted it.",
        "NOTES.md §0 (normalizer: 'operations emit done: false and cancelRequested: false')", _lro_done_false),
    Explanation(
        "lro-cancel-requested-false", NORMALISATION,
        "metadata.cancelRequested: false was deleted from recorded LRO bodies.",
        "NOTES.md §0", _lro_cancel_requested),
    Explanation(
        "compute-beta-links", NORMALISATION,
        "The Terraform-based controller called compute/beta; the recorder rewrote request URLs to v1 but not "
        "the links inside bodies, which Google writes in the version called.",
        "NOTES.md §0; SOURCES.md (compute-computerouternat: NAT links come back as .../compute/beta/...)",
        _beta_links),
    Explanation(
        "nat-relative-links", NORMALISATION,
        "The recorder rewrote router NAT subnetworks[].name and rules[].action.sourceNatActive/DrainRanges to "
        "relative projects/... paths; Google returns full https://www.googleapis.com/compute/v1/ URLs.",
        "NOTES.md §0 (un-normalised natIps/sourceNatActiveIps in compute-computerouternat are full URLs)",
        _nat_relative_links),
    Explanation(
        "network-routing-config-deleted", NORMALISATION,
        "The recorder deleted routingConfig from compute#network bodies unless the test set it.",
        "NOTES.md §0", _routing_config_deleted),
    Explanation(
        "network-subnetworks-sorted", NORMALISATION,
        "The recorder sorted network.subnetworks[].", "NOTES.md §0", _subnetworks_sorted),
    Explanation(
        "compute-operation-warnings", NORMALISATION,
        "The recorder deleted warnings from compute operations.", "NOTES.md §0", _operation_warnings),
    Explanation(
        "compute-beta-only-field", NORMALISATION,
        "The field exists only in the compute/beta API the recording called (e.g. Firewall.enableLogging); "
        "localcloud serves compute v1, whose discovery document has no such field.",
        "NOTES.md §0 and §4 (enableLogging: 'beta-API field'); compute.v1 discovery schema", _beta_only_field),
    Explanation(
        "default-network-regions", ENVIRONMENT,
        "The recorded project's default network has a subnet in every region Google ran (internal-only ones "
        "included) plus an out-of-band us-central1-subnet; localcloud's auto-mode network creates subnets in "
        "the regions of AUTO_MODE_SUBNET_RANGES only, a deliberate reduction "
        "(localcloud/backends/compute/networks.py).",
        "compute-computefirewall, compute-computerouter [REAL] default-network GETs; SOURCES.md",
        _default_network_regions),
    Explanation(
        "run-random-names", RANDOM,
        "Cloud Run draws a revision suffix (-00001-rvm) and a service URL hash (-iqnfoshjhq-uc.a.run.app) at "
        "random; the recorder kept Google's, localcloud draws its own.",
        "compute-cloudruncomputeregionnetworkendpointgroup [REAL]", _run_random_names),
)


def explain(difference: Difference, step: Step) -> Explanation | None:
    for explanation in EXPLANATIONS:
        if explanation.applies(difference, step):
            return explanation
    return None
