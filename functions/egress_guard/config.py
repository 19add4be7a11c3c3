"""Deployment settings, read once from the environment into a frozen ``Settings``.

| Variable                                | Meaning                                                                 | Default |
|-----------------------------------------|-------------------------------------------------------------------------|---------|
| ``EGRESS_GUARD_PROJECT``                | Project the functions run in (also ``GOOGLE_CLOUD_PROJECT``, ``GCP_PROJECT``, ``CLOUDSDK_CORE_PROJECT``, in that order) | from the credentials |
| ``EGRESS_GUARD_FINDINGS_TOPIC``         | Topic the guardrails publish findings to: ``projects/P/topics/T`` or ``T`` (in the project above) | none (publishing fails with a clear error) |
| ``EGRESS_GUARD_SELF_PRINCIPALS``        | Comma-separated service-account emails of egress-guard itself; their writes are ignored (loop guard) | empty |
| ``EGRESS_GUARD_POLICY``                 | Path of the policy YAML file (see ``policy.py``)                        | built-in defaults |
| ``EGRESS_GUARD_EVENT_MAX_AGE_SECONDS``  | Overrides the policy's ``event_max_age_seconds``                        | the policy's value (600) |
| ``EGRESS_GUARD_PUBLISH_TIMEOUT_SECONDS``| How long to wait for Pub/Sub to accept a finding                        | 30 |
| ``EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS`` | How long a guardrail waits for one Compute/VPC Access/Run operation before raising a transient error | 60 |
| ``LOCALCLOUD_URL``                      | Base URL of localcloud (``http://127.0.0.1:8790``); when set, every client uses it with anonymous credentials | unset (Google Cloud) |
| ``EGRESS_GUARD_PRINCIPAL``              | Locally only: the service account this function stands for; sent to localcloud so audit entries and the loop guard see it, as Google sees the function's identity | unset (localcloud's default user) |
| ``PUBSUB_EMULATOR_HOST``                | Read by google-cloud-pubsub itself: publish to the Pub/Sub emulator      | unset |

Functions read these once at cold start (``Settings.from_env()``); an invalid value raises
``ConfigError`` naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from .errors import ConfigError, InvalidName
from .names import validate_project

if TYPE_CHECKING:
    from .policy import Policy

_PROJECT_VARS = ("EGRESS_GUARD_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "CLOUDSDK_CORE_PROJECT")
_TOPIC_ID_RE = re.compile(r"[A-Za-z][-A-Za-z0-9._~+]{2,254}")
_URL_RE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?")
_EMAIL_RE = re.compile(r"[^@\s,]+@[^@\s,]+")


@dataclass(frozen=True)
class Settings:
    project: str = ""
    findings_topic: str = ""  # full topic path, or "" when not configured
    self_principals: frozenset[str] = frozenset()  # lower-case emails
    policy_path: str | None = None
    event_max_age_seconds: int | None = None  # overrides the policy when set
    publish_timeout_seconds: float = 30.0
    operation_timeout_seconds: float = 60.0
    localcloud_url: str | None = None  # no trailing slash
    pubsub_emulator_host: str | None = None  # informational: the pubsub library reads it itself
    principal: str | None = None  # localcloud only: who this function's calls are made as
    # The window of Google's per-minute rate quotas a sweep's refused writes wait for (api.RateQuotaWait):
    # 60 at Google; a test sets localcloud's short window here.
    rate_quota_window_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        project = ""
        for name in _PROJECT_VARS:
            value = env.get(name, "").strip()
            if value:
                project = _project(value, name)
                break
        return cls(
            project=project,
            findings_topic=_topic(env.get("EGRESS_GUARD_FINDINGS_TOPIC", "").strip(), project),
            self_principals=_principals(env.get("EGRESS_GUARD_SELF_PRINCIPALS", "")),
            policy_path=env.get("EGRESS_GUARD_POLICY", "").strip() or None,
            event_max_age_seconds=_positive_int(env, "EGRESS_GUARD_EVENT_MAX_AGE_SECONDS"),
            publish_timeout_seconds=_positive_float(env, "EGRESS_GUARD_PUBLISH_TIMEOUT_SECONDS", 30.0),
            operation_timeout_seconds=_positive_float(env, "EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS", 60.0),
            localcloud_url=_url(env.get("LOCALCLOUD_URL", "").strip()),
            pubsub_emulator_host=env.get("PUBSUB_EMULATOR_HOST", "").strip() or None,
            principal=_principal(env.get("EGRESS_GUARD_PRINCIPAL", "").strip()),
            rate_quota_window_seconds=_positive_float(env, "EGRESS_GUARD_RATE_QUOTA_WINDOW_SECONDS", 60.0),
        )

    def is_self(self, principal: str) -> bool:
        """True when ``principal`` is one of egress-guard's own service accounts."""
        return bool(principal) and principal.strip().lower() in self.self_principals

    def max_event_age(self, policy: "Policy") -> timedelta:
        """The environment override if set, else the policy's ``event_max_age_seconds``."""
        seconds = self.event_max_age_seconds if self.event_max_age_seconds is not None else policy.event_max_age_seconds
        return timedelta(seconds=seconds)

    @property
    def uses_localcloud(self) -> bool:
        return self.localcloud_url is not None


def _project(value: str, variable: str) -> str:
    try:
        return validate_project(value, variable)
    except InvalidName as exc:
        raise ConfigError(str(exc)) from None


def _topic(value: str, project: str) -> str:
    if not value:
        return ""
    variable = "EGRESS_GUARD_FINDINGS_TOPIC"
    match = re.fullmatch(r"projects/([^/]+)/topics/([^/]+)", value)
    if match:
        topic_project, topic_id = _project(match.group(1), f"{variable} (project)"), match.group(2)
    elif "/" not in value:
        if not project:
            raise ConfigError(f"{variable}: {value!r} is a bare topic id but no project is configured "
                              f"(set {_PROJECT_VARS[0]} or GOOGLE_CLOUD_PROJECT, or give projects/P/topics/T)")
        topic_project, topic_id = project, value
    else:
        raise ConfigError(f"{variable}: {value!r} is not projects/PROJECT/topics/TOPIC or a topic id")
    if not _TOPIC_ID_RE.fullmatch(topic_id) or topic_id.startswith("goog"):
        raise ConfigError(f"{variable}: {topic_id!r} is not a valid topic id (3-255 characters, starting with a "
                          "letter, not with 'goog')")
    return f"projects/{topic_project}/topics/{topic_id}"


def _principals(value: str) -> frozenset[str]:
    result = set()
    for item in value.split(","):
        email = item.strip().lower()
        if email.startswith("serviceaccount:"):
            email = email.split(":", 1)[1]
        if not email:
            continue
        if not _EMAIL_RE.fullmatch(email):
            raise ConfigError(f"EGRESS_GUARD_SELF_PRINCIPALS: {item.strip()!r} is not a service-account email")
        result.add(email)
    return frozenset(result)


def _positive_int(env: Mapping[str, str], variable: str) -> int | None:
    raw = env.get(variable, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{variable}: {raw!r} is not a positive whole number of seconds")
    return int(raw)


def _positive_float(env: Mapping[str, str], variable: str, default: float) -> float:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{variable}: {raw!r} is not a number of seconds") from None
    if not 0 < value < 3600:
        raise ConfigError(f"{variable}: {raw!r} must be between 0 and 3600 seconds")
    return value


def _url(value: str) -> str | None:
    if not value:
        return None
    url = value.rstrip("/")
    if not _URL_RE.fullmatch(url):
        raise ConfigError(f"LOCALCLOUD_URL: {value!r} is not a base URL like http://127.0.0.1:8790 (no path)")
    return url


def _principal(value: str) -> str | None:
    if not value:
        return None
    if not _EMAIL_RE.fullmatch(value):
        raise ConfigError(f"EGRESS_GUARD_PRINCIPAL: {value!r} is not a service-account email")
    return value.lower()
