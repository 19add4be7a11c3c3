"""How the deployment redelivers an event its function did not acknowledge, read from infra/.

The guardrail functions are triggered by ``google_cloudfunctions2_function.event_trigger`` (module
``infra/modules/guardrail-function``); Eventarc creates the push subscription itself. The
redelivery backoff is the subscription's ``retry_policy``: infra/ sets one only if it declares a
``google_pubsub_subscription`` with a ``retry_policy`` block for the trigger (it does not today: the
provider cannot configure the subscription Eventarc makes, and the gcloud step in ``deadletter.tf``
sets the dead-letter policy only), so with ``retry_policy = "RETRY_POLICY_RETRY"`` the backoff is
Eventarc's default, which Google documents as "a minimum of 10 seconds ... up to a maximum of 600
seconds" (Eventarc, "Retry events"). Without RETRY_POLICY_RETRY there is no redelivery at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTION_MODULE = ROOT / "infra" / "modules" / "guardrail-function"

# Eventarc's default subscription backoff (cloud.google.com/eventarc/docs/retry-events).
EVENTARC_DEFAULT_BACKOFF_S = (10.0, 600.0)
PUBSUB_DEFAULT_MAX_DELIVERY_ATTEMPTS = 5  # Pub/Sub's own default when a dead-letter policy names none


@dataclass(frozen=True)
class Redelivery:
    retries: bool
    minimum_backoff_s: float
    maximum_backoff_s: float
    max_delivery_attempts: int
    source: str  # where each figure comes from, in one sentence

    def as_dict(self) -> dict[str, object]:
        return {"retries": self.retries, "minimum_backoff_s": self.minimum_backoff_s,
                "maximum_backoff_s": self.maximum_backoff_s, "max_delivery_attempts": self.max_delivery_attempts,
                "source": self.source}


def read(module: Path = FUNCTION_MODULE) -> Redelivery:
    """The redelivery settings a deployment of ``module`` gets (see the module docstring)."""
    texts = {path.name: path.read_text() for path in sorted(module.glob("*.tf"))}
    main = texts.get("main.tf", "")
    trigger = re.search(r'retry_policy\s*=\s*"([A-Z_]+)"', main)
    if trigger is None:
        raise ValueError(f"{module / 'main.tf'}: no event_trigger retry_policy")
    attempts = _max_delivery_attempts(texts.get("variables.tf", ""))
    explicit = _subscription_backoff(texts)
    if trigger.group(1) != "RETRY_POLICY_RETRY":
        return Redelivery(False, 0.0, 0.0, 1, f"event_trigger.retry_policy = {trigger.group(1)}: no redelivery")
    if explicit is not None:
        return Redelivery(True, explicit[0], explicit[1], attempts,
                          "RETRY_POLICY_RETRY; backoff from the subscription's retry_policy in infra/")
    minimum, maximum = EVENTARC_DEFAULT_BACKOFF_S
    return Redelivery(True, minimum, maximum, attempts,
                      "RETRY_POLICY_RETRY (infra/modules/guardrail-function/main.tf); infra/ sets no subscription "
                      "backoff, so Eventarc's default applies (10 s to 600 s, Eventarc 'Retry events'); "
                      f"{attempts} deliveries before the dead-letter topic (variables.tf)")


def _max_delivery_attempts(variables: str) -> int:
    found = re.search(r"max_delivery_attempts\s*=\s*optional\(number,\s*(\d+)\)", variables)
    return int(found.group(1)) if found else PUBSUB_DEFAULT_MAX_DELIVERY_ATTEMPTS


def _subscription_backoff(texts: dict[str, str]) -> tuple[float, float] | None:
    """(minimum, maximum) seconds of a ``google_pubsub_subscription``'s retry_policy block, if infra/ has one."""
    for text in texts.values():
        if 'resource "google_pubsub_subscription"' not in text:
            continue
        block = re.search(r"retry_policy\s*\{([^}]*)\}", text)
        if block is None:
            continue
        low = re.search(r'minimum_backoff\s*=\s*"(\d+(?:\.\d+)?)s"', block.group(1))
        high = re.search(r'maximum_backoff\s*=\s*"(\d+(?:\.\d+)?)s"', block.group(1))
        return (float(low.group(1)) if low else EVENTARC_DEFAULT_BACKOFF_S[0],
                float(high.group(1)) if high else EVENTARC_DEFAULT_BACKOFF_S[1])
    return None
