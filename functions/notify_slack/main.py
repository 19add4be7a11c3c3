"""notify_slack: post each egress-guard finding from the findings topic to Slack.

Trigger: google.cloud.pubsub.topic.v1.messagePublished on the findings topic. Retries on, with a
dead-letter topic: raising here is how a finding Slack could not take is kept for later.
Imports stay light (no google-cloud-* client): this function is cold-started often.
"""

from __future__ import annotations

import logging
import os

import functions_framework
from cloudevents.http import CloudEvent

from egress_guard.log import setup_logging
from egress_guard.notify.deliver import SlackDelivery
from egress_guard.notify.message import NotAFinding, finding_from_pubsub
from egress_guard.notify.settings import NotifySettings

setup_logging()  # JSON lines on stdout, as Cloud Logging reads them
logger = logging.getLogger("egress_guard.notify_slack")

# Read once per instance; a bad setting fails the cold start with a message naming it.
SETTINGS = NotifySettings.from_env(os.environ)
DELIVERY = SlackDelivery(
    SETTINGS.webhook_url,
    max_retries=SETTINGS.max_retries,
    timeout_s=SETTINGS.timeout_s,
    console_base=SETTINGS.console_base,
)


@functions_framework.cloud_event
def notify_slack(cloud_event: CloudEvent) -> None:
    try:
        finding = finding_from_pubsub(cloud_event.data)
    except NotAFinding as error:
        # Permanent: acknowledge, or Pub/Sub would redeliver it until the dead-letter topic.
        logger.error("ignoring CloudEvent %s: %s", cloud_event["id"], error)
        return
    if finding.outcome not in SETTINGS.outcomes:
        logger.info("finding %s is %s; policy does not post that outcome", finding.id, finding.outcome.value)
        return
    # Raises TransientError when Slack keeps failing: the invocation fails and Pub/Sub redelivers.
    DELIVERY.deliver(finding)
