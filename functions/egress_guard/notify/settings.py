"""What notify_slack reads once, at cold start: each destination's webhook, retry settings, and
the policy's ``notify`` section (which outcomes are posted, and where: ``notify.routes``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from egress_guard.findings import Finding, Outcome
from egress_guard.notify.summary import DEFAULT_CONSOLE_BASE
from egress_guard.policy import (
    DEFAULT_NOTIFIED_OUTCOMES,
    POLICY_ENV,
    NotifyPolicy,
    load_policy,
    webhook_variable,
)

WEBHOOK_ENV = "SLACK_WEBHOOK_URL"  # the default destination's webhook, filled from Secret Manager
MAX_RETRIES_ENV = "EGRESS_GUARD_SLACK_MAX_RETRIES"
TIMEOUT_ENV = "EGRESS_GUARD_SLACK_TIMEOUT_S"
BUDGET_ENV = "EGRESS_GUARD_SLACK_BUDGET_S"
# How long one invocation may spend on Slack, every destination and retry included. It must end
# before the push subscription's ack deadline and the function's timeout (infra: notify_slack's
# timeout_seconds, 60): past either, Pub/Sub redelivers the message to another instance while this
# one is still retrying, and both post it when Slack recovers (a duplicate across instances).
# Within the budget a retry starts only if its wait and a whole request still fit; otherwise the
# invocation fails and Pub/Sub redelivers the finding later, to one instance.
DEFAULT_BUDGET_S = 45.0

# Which outcomes are posted is policy (design §3); without a policy file, the policy's default.
DEFAULT_OUTCOMES = frozenset(DEFAULT_NOTIFIED_OUTCOMES)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def notify_outcomes(environ: Mapping[str, str]) -> frozenset[Outcome]:
    """Which outcomes are posted: the policy's ``notify.outcomes`` (design §3: it is policy)."""
    return frozenset(load_policy(environ.get(POLICY_ENV) or None).notify.outcomes)


def _number(environ: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}: {raw} is below the minimum {minimum:g}")
    return value


def _webhooks(environ: Mapping[str, str], destinations: tuple[str, ...]) -> dict[str, str]:
    """destination -> webhook URL, for every destination the policy can send to."""
    webhooks = {}
    for destination in destinations:
        variable = webhook_variable(destination)
        url = environ.get(variable, "").strip()
        if not url:
            raise SettingsError(f"{variable} is not set: the policy's notify section sends findings to destination "
                                f"{destination!r}, and the deployment fills its webhook from Secret Manager")
        if not url.startswith(("https://", "http://")):
            raise SettingsError(f"{variable} is not an http(s) URL")
        webhooks[destination] = url
    return webhooks


@dataclass(frozen=True)
class NotifySettings:
    webhooks: Mapping[str, str] = field(repr=False)  # destination -> URL; secrets: never in a repr or a log
    notify: NotifyPolicy = field(default_factory=NotifyPolicy)
    max_retries: int = 3
    timeout_s: float = 10.0
    budget_s: float = DEFAULT_BUDGET_S
    console_base: str = DEFAULT_CONSOLE_BASE

    @property
    def outcomes(self) -> frozenset[Outcome]:
        return frozenset(self.notify.outcomes)

    @property
    def webhook_url(self) -> str:
        """The default destination's webhook (the one every deployment has)."""
        return self.webhooks[self.notify.default or ""]

    def destinations_for(self, finding: Finding) -> tuple[str, ...]:
        """Where a finding goes (the policy's ``notify`` decides; see ``NotifyPolicy.destinations_for``)."""
        return self.notify.destinations_for(finding)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "NotifySettings":
        notify = load_policy(environ.get(POLICY_ENV) or None).notify
        timeout_s = _number(environ, TIMEOUT_ENV, 10.0, minimum=0.1)
        return cls(
            webhooks=_webhooks(environ, notify.destinations),
            notify=notify,
            max_retries=int(_number(environ, MAX_RETRIES_ENV, 3, minimum=0)),
            timeout_s=timeout_s,
            # At least one whole request fits in it.
            budget_s=_number(environ, BUDGET_ENV, max(DEFAULT_BUDGET_S, timeout_s), minimum=timeout_s),
        )
