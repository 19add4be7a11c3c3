"""What notify_slack reads once, at cold start: the webhook, retry settings and which outcomes to post."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from egress_guard.findings import Outcome
from egress_guard.notify.summary import DEFAULT_CONSOLE_BASE
from egress_guard.policy import DEFAULT_NOTIFIED_OUTCOMES, POLICY_ENV, load_policy

WEBHOOK_ENV = "SLACK_WEBHOOK_URL"  # filled from Secret Manager by the deployment
MAX_RETRIES_ENV = "EGRESS_GUARD_SLACK_MAX_RETRIES"
TIMEOUT_ENV = "EGRESS_GUARD_SLACK_TIMEOUT_S"

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


@dataclass(frozen=True)
class NotifySettings:
    webhook_url: str = field(repr=False)  # a secret: never in a repr, a log line or an error
    outcomes: frozenset[Outcome] = DEFAULT_OUTCOMES
    max_retries: int = 3
    timeout_s: float = 10.0
    console_base: str = DEFAULT_CONSOLE_BASE

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "NotifySettings":
        url = environ.get(WEBHOOK_ENV, "").strip()
        if not url:
            raise SettingsError(f"{WEBHOOK_ENV} is not set: the deployment fills it from Secret Manager")
        if not url.startswith(("https://", "http://")):
            raise SettingsError(f"{WEBHOOK_ENV} is not an http(s) URL")
        return cls(
            webhook_url=url,
            outcomes=notify_outcomes(environ),
            max_retries=int(_number(environ, MAX_RETRIES_ENV, 3, minimum=0)),
            timeout_s=_number(environ, TIMEOUT_ENV, 10.0, minimum=0.1),
        )
