"""notify_slack: post each egress-guard finding from the findings topic to Slack.

Trigger: google.cloud.pubsub.topic.v1.messagePublished on the findings topic. Retries on, with a
dead-letter topic: raising here is how a finding Slack could not take is kept for later.
Imports stay light (no google-cloud-* client): this function is cold-started often.

Each finding goes to every destination the policy's ``notify.routes`` choose for it (the default
destination, ``SLACK_WEBHOOK_URL``, when none matches), once per destination: each webhook has its
own delivery, which remembers what it posted, so a redelivery after one destination failed posts
only to the destinations that did not get it yet.
"""

from __future__ import annotations

import logging
import os
import time

import functions_framework
from cloudevents.http import CloudEvent

from egress_guard.errors import TransientError
from egress_guard.log import setup_logging
from egress_guard.notify.deliver import SlackDelivery
from egress_guard.notify.message import NotAFinding, finding_from_pubsub
from egress_guard.notify.settings import NotifySettings

setup_logging()  # JSON lines on stdout, as Cloud Logging reads them
logger = logging.getLogger("egress_guard.notify_slack")

# Read once per instance; a bad setting fails the cold start with a message naming it.
SETTINGS = NotifySettings.from_env(os.environ)
# One delivery per webhook: two destinations that share a webhook share what it posted.
_BY_URL: dict[str, SlackDelivery] = {}
DELIVERIES = {
    destination: _BY_URL.setdefault(url, SlackDelivery(url, max_retries=SETTINGS.max_retries,
                                                       timeout_s=SETTINGS.timeout_s,
                                                       console_base=SETTINGS.console_base))
    for destination, url in SETTINGS.webhooks.items()
}


@functions_framework.cloud_event
def notify_slack(cloud_event: CloudEvent) -> None:
    try:
        finding = finding_from_pubsub(cloud_event.data)
    except NotAFinding as error:
        # Permanent: acknowledge, or Pub/Sub would redeliver it until the dead-letter topic.
        logger.error("ignoring CloudEvent %s: %s", cloud_event["id"], error)
        return
    destinations = SETTINGS.destinations_for(finding)
    if not destinations:
        logger.info("finding %s is %s; policy posts it nowhere", finding.id, finding.outcome.value)
        return
    # One budget for every destination: the whole invocation ends before the push's ack deadline.
    deadline = time.monotonic() + SETTINGS.budget_s
    failed: list[TransientError] = []
    for destination in destinations:
        try:
            DELIVERIES[destination].deliver(finding, deadline=deadline)
        except TransientError as error:  # try the other destinations first, then fail for a redelivery
            logger.warning("finding %s: destination %s failed: %s", finding.id, destination, error.reason)
            failed.append(error)
    if failed:
        # The invocation fails and Pub/Sub redelivers; the destinations that took it remember it.
        raise failed[0]
