"""Settings from the environment: parsed once, errors name the variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from egress_guard.config import Settings
from egress_guard.errors import ConfigError
from egress_guard.policy import Policy


def test_settings_defaults_from_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.findings_topic == "" and settings.localcloud_url is None and not settings.uses_localcloud
    assert settings.max_event_age(Policy()) == timedelta(seconds=600)


def test_settings_reads_every_variable() -> None:
    settings = Settings.from_env({
        "GOOGLE_CLOUD_PROJECT": "eg-demo-project",
        "EGRESS_GUARD_FINDINGS_TOPIC": "egress-guard-findings",
        "EGRESS_GUARD_SELF_PRINCIPALS": " ensure-nat@eg-demo-project.iam.gserviceaccount.com ,"
                                        "serviceAccount:FW@eg-demo-project.iam.gserviceaccount.com,",
        "EGRESS_GUARD_POLICY": "/etc/policy.yaml",
        "EGRESS_GUARD_EVENT_MAX_AGE_SECONDS": "120",
        "EGRESS_GUARD_PUBLISH_TIMEOUT_SECONDS": "5",
        "EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS": "2.5",
        "LOCALCLOUD_URL": "http://127.0.0.1:8790/",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
    })
    assert settings.project == "eg-demo-project"
    assert settings.findings_topic == "projects/eg-demo-project/topics/egress-guard-findings"
    assert settings.self_principals == {"ensure-nat@eg-demo-project.iam.gserviceaccount.com",
                                        "fw@eg-demo-project.iam.gserviceaccount.com"}
    assert settings.is_self("FW@eg-demo-project.iam.gserviceaccount.com")
    assert not settings.is_self("alice@example.com") and not settings.is_self("")
    assert settings.policy_path == "/etc/policy.yaml"
    assert settings.max_event_age(Policy()) == timedelta(seconds=120)
    assert settings.publish_timeout_seconds == 5.0 and settings.operation_timeout_seconds == 2.5
    assert settings.localcloud_url == "http://127.0.0.1:8790" and settings.uses_localcloud
    assert settings.pubsub_emulator_host == "127.0.0.1:8085"


def test_settings_project_precedence() -> None:
    env = {"EGRESS_GUARD_PROJECT": "first-project", "GOOGLE_CLOUD_PROJECT": "second-project",
           "CLOUDSDK_CORE_PROJECT": "fourth-project"}
    assert Settings.from_env(env).project == "first-project"
    assert Settings.from_env({"CLOUDSDK_CORE_PROJECT": "fourth-project"}).project == "fourth-project"


@pytest.mark.parametrize("env,message", [
    ({"GOOGLE_CLOUD_PROJECT": "Bad Project"}, "GOOGLE_CLOUD_PROJECT"),
    ({"EGRESS_GUARD_FINDINGS_TOPIC": "findings"}, "EGRESS_GUARD_FINDINGS_TOPIC: 'findings' is a bare topic id"),
    ({"EGRESS_GUARD_FINDINGS_TOPIC": "projects/p/x/topics/t"}, "is not projects/PROJECT/topics/TOPIC"),
    ({"EGRESS_GUARD_FINDINGS_TOPIC": "projects/eg-demo-project/topics/goog-x"}, "not a valid topic id"),
    ({"EGRESS_GUARD_SELF_PRINCIPALS": "not-an-email"}, "EGRESS_GUARD_SELF_PRINCIPALS"),
    ({"EGRESS_GUARD_EVENT_MAX_AGE_SECONDS": "ten"}, "EGRESS_GUARD_EVENT_MAX_AGE_SECONDS"),
    ({"EGRESS_GUARD_EVENT_MAX_AGE_SECONDS": "0"}, "EGRESS_GUARD_EVENT_MAX_AGE_SECONDS"),
    ({"EGRESS_GUARD_PUBLISH_TIMEOUT_SECONDS": "-1"}, "EGRESS_GUARD_PUBLISH_TIMEOUT_SECONDS"),
    ({"LOCALCLOUD_URL": "127.0.0.1:8790"}, "LOCALCLOUD_URL"),
    ({"LOCALCLOUD_URL": "http://127.0.0.1:8790/compute"}, "LOCALCLOUD_URL"),
])
def test_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_settings_full_topic_path_needs_no_project() -> None:
    settings = Settings.from_env({"EGRESS_GUARD_FINDINGS_TOPIC": "projects/other-project/topics/findings"})
    assert settings.findings_topic == "projects/other-project/topics/findings"
