"""Compute's per-minute rate quota: localcloud's emulation and the sweep writers' wait for refills."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc

from egress_guard import api
from egress_guard.errors import TransientError, is_rate_limited
from localcloud.errors import ApiError
from localcloud.quotas import DEFAULT_GLOBAL_MUTATIONS_PER_MINUTE, RateQuotas

GLOBAL = "/compute/v1/projects/p1/global/firewalls"
REGIONAL = "/compute/v1/projects/p1/regions/r1/routers/x"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def refused() -> gexc.Forbidden:
    """What google-api-core raises for Compute's 403 rateLimitExceeded."""
    return gexc.Forbidden("Quota exceeded for quota metric 'Queries'",
                          errors=[{"reason": "rateLimitExceeded", "domain": "usageLimits"}])


def test_localcloud_quota_is_off_by_default_and_counts_global_mutations_per_project_and_window():
    clock = Clock(120.0)
    quotas = RateQuotas(clock)
    for _ in range(5):
        quotas.before_call("compute.firewalls.insert", GLOBAL, True)  # off: never refused
    quotas.set(per_window=2, window_s=60)
    quotas.before_call("compute.firewalls.insert", GLOBAL, True)
    quotas.before_call("compute.firewalls.patch", GLOBAL, True)
    quotas.before_call("compute.routers.patch", REGIONAL, True)  # regional: another group
    quotas.before_call("compute.firewalls.list", GLOBAL, False)  # a read: another group
    quotas.before_call("compute.firewalls.insert", "/compute/v1/projects/p2/global/firewalls", True)  # per project
    with pytest.raises(ApiError) as raised:
        quotas.before_call("compute.firewalls.insert", GLOBAL, True)
    body = raised.value.body(family="compute")["error"]
    assert body["code"] == 403 and body["errors"][0]["reason"] == "rateLimitExceeded"
    clock.now = 180.0  # the next synchronized window: refilled
    quotas.before_call("compute.firewalls.insert", GLOBAL, True)
    assert quotas.state()["rejected"] == 1
    quotas.reset()
    assert quotas.state()["enabled"] is False and DEFAULT_GLOBAL_MUTATIONS_PER_MINUTE == 1500


def test_a_rate_quota_refusal_is_recognised_and_a_permission_denial_is_not():
    assert is_rate_limited(refused())
    assert is_rate_limited(gexc.TooManyRequests("slow down"))
    assert not is_rate_limited(gexc.Forbidden("denied", errors=[{"reason": "forbidden"}]))
    assert not is_rate_limited(gexc.Forbidden("quota", errors=[{"reason": "quotaExceeded"}]))


def test_a_refused_write_waits_for_the_next_window_and_is_sent_again():
    clock = Clock(1000.0)  # 16 s into the window [960, 1020)
    wait = api.RateQuotaWait(window_s=60, clock=clock, sleep=clock.sleep)
    answers = [refused(), "done"]

    def attempt() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with wait.waiting():
        assert wait.send("p1", "compute.firewalls.insert x", attempt) == "done"
    assert 1020.0 <= clock.now <= 1021.0  # the window boundary, plus the skew margin
    assert wait.refusals == 1


def test_a_write_refused_window_after_window_gives_up_after_the_bound():
    clock = Clock(0.0)
    wait = api.RateQuotaWait(window_s=60, max_wait_s=200, clock=clock, sleep=clock.sleep)
    tries = []

    def attempt() -> None:
        tries.append(clock.now)
        raise refused()

    with wait.waiting(), pytest.raises(TransientError, match="rate quota stayed exhausted"):
        wait.send("p1", "compute.firewalls.insert x", attempt)
    assert len(tries) == 4 and clock.now <= 200  # once per window, never past the bound


def test_outside_a_sweep_a_refused_write_is_not_waited_for():
    wait = api.RateQuotaWait(window_s=60)

    def attempt() -> None:
        raise refused()

    with pytest.raises(gexc.Forbidden):
        wait.send("p1", "compute.firewalls.insert x", attempt)
